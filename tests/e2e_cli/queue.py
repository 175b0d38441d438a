#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Queue rules from the live capture: a listener's accept queue fills, then empties.

A listener with backlog 8 that does not accept, and a client that keeps
connecting (20 non-blocking connects: the queue holds backlog + 1 = 9, the
kernel drops the rest), a rule {state: LISTEN, queue_above: 50%, for: 1s}:
  1. it fires, with queue and backlog equal to `ss -ltn`'s Recv-Q and Send-Q
     for that port (9 and 8), and drops > 0 (the listener's drop count,
     sk_drops, which counts the same drops as TcpExtListenDrops);
  2. a second listener on another port, also full, but no rule names it: no
     alert for it;
  3. the listener then accepts everything: the alert resolves;
  4. a listener made then, when the passes know how many listeners the
     namespace holds and end at the last (bpf/tsguard_listen.bpf.h), fills:
     its own rule fires all the same.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsgtest import check, log, run, wait_until  # noqa: E402

PORT, OTHER, LATE = 18101, 18102, 18103
N = 20

RULES = """
rules:
  - name: accept-queue
    match: {lport: %d}
    when: {state: LISTEN, queue_above: 50%%, for: 1s}
  - name: late-queue
    match: {lport: %d}
    when: {state: LISTEN, queue_above: 50%%, for: 1s}
""" % (PORT, LATE)


def ss_listen(port):
    """(Recv-Q, Send-Q) of the listener on port, from ss -ltn."""
    out = subprocess.run(["ss", "-Hltn", "sport", "= :%d" % port], capture_output=True,
                         text=True, check=True).stdout.split()
    return (int(out[1]), int(out[2])) if len(out) >= 3 else None


def test(env, tsguard):
    t = env.tsguard(tsguard, ["-r", env.rules_dir({"q.yaml": RULES}), "-o", "json"])
    srv, cli = env.agent("qsrv"), env.agent("qcli")
    lst = srv.cmd("listen", port=PORT, backlog=8)
    srv.cmd("listen", port=OTHER, backlog=8)
    for port in (PORT, OTHER):
        for _ in range(N):
            cli.cmd("connect", port=port, block=False)
    full = wait_until(lambda: ss_listen(PORT) == (9, 8), 5)
    check(full, "the accept queue did not fill: ss -ltn says %s" % (ss_listen(PORT),))
    got = t.wait_alerts(rule="accept-queue", status="firing", timeout=6)
    check(got, "no firing alert for the full queue: " + t.stderr()[-2000:])
    a = got[0]
    recvq, sendq = ss_listen(PORT)
    log("firing: queue %s backlog %s drops %s; ss -ltn: Recv-Q %d Send-Q %d" %
        (a.get("queue"), a.get("backlog"), a.get("drops"), recvq, sendq))
    env.soft(a.get("lport") == PORT, "the alert's lport is %s" % a.get("lport"))
    # the listener was made after tsguard started: its owner comes from listen()
    env.soft(a.get("comm") == srv.name and a.get("pid") == srv.pid,
             "the alert names %s (%s), the listener is %s (%s)" %
             (a.get("comm"), a.get("pid"), srv.name, srv.pid))
    env.soft(a.get("queue") == recvq and a.get("backlog") == sendq,
             "alert queue/backlog %s/%s, ss Recv-Q/Send-Q %d/%d" %
             (a.get("queue"), a.get("backlog"), recvq, sendq))
    env.soft((a.get("drops") or 0) > 0,
             "%d connects to a queue of 9: the alert says %s drops" % (N, a.get("drops")))
    env.soft(len(t.alerts(rule="accept-queue", status="firing")) == 1,
             "more than one firing alert: %s" % t.alerts(rule="accept-queue"))
    # accept everything, also what the clients' SYN retransmissions bring later
    srv.cmd("serve", id=lst["id"], mode="hold")
    res = t.wait_alerts(rule="accept-queue", status="resolved", timeout=5)
    check(res, "the alert did not resolve after the listener accepted: ss says %s" %
          (ss_listen(PORT),))
    log("resolved: queue %s drops %s" % (res[0].get("queue"), res[0].get("drops")))
    env.soft(res[0].get("queue", 99) <= 4, "resolved with queue %s" % res[0].get("queue"))
    # a new listener: the namespace's listener count changes under the passes
    srv.cmd("listen", port=LATE, backlog=8)
    for _ in range(N):
        cli.cmd("connect", port=LATE, block=False)
    check(wait_until(lambda: ss_listen(LATE) == (9, 8), 5),
          "the late accept queue did not fill: ss -ltn says %s" % (ss_listen(LATE),))
    late = t.wait_alerts(rule="late-queue", status="firing", timeout=6)
    check(late, "no firing alert for the late listener's full queue: " + t.stderr()[-2000:])
    env.soft(late[0].get("lport") == LATE, "the late alert's lport is %s" % late[0].get("lport"))
    check(t.stop() == 0, "tsguard exited %s: %s" % (t.rc, t.stderr()[-2000:]))


if __name__ == "__main__":
    run(test)

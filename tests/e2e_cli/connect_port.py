#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A connect held in SYN_SENT carries its real local port.

CLOSE->SYN_SENT is reported before the kernel chooses the local port; tsguard
learns it at connect()'s return (syscalls:sys_exit_connect). A listener with
backlog 0 that never accepts holds all but the first of three non-blocking
connects in SYN_SENT. A time-in-state rule (SYN_SENT longer than 300 ms) must
fire for each held socket with the port getsockname() and `ss -tan` show,
resolve with the same key when the sockets are closed, and the --record file
must bring the port before the firing time, so that a replay of it gives the
same keys.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsgtest import TCP_SYN_SENT, check, log, run, rules_yaml  # noqa: E402


def ss_syn_sent_ports(ns):
    r = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htan", "state", "syn-sent"],
                       capture_output=True, text=True, check=True)
    # Recv-Q Send-Q Local:Port Peer:Port
    return {int(ln.split()[2].rsplit(":", 1)[1]) for ln in r.stdout.splitlines() if ln.strip()}


def test(env, tsguard):
    ns = env.make_netns()
    hold = env.agent("cph")
    rules = env.rules_dir({"cp.yaml": rules_yaml(
        ("cp-held", hold.name, "state: SYN_SENT, longer_than: 300ms"),
    )})
    rec = os.path.join(env.tmp, "record.jsonl")
    t = env.tsguard(tsguard, ["-r", rules, "-o", "json", "--record", rec], tag="live")
    ls = hold.cmd("listen", backlog=0)
    conns = [hold.cmd("connect", port=ls["port"], block=False) for _ in range(3)]
    held = {c["lport"]: c["id"] for c in conns
            if hold.cmd("state", id=c["id"])["state"] == TCP_SYN_SENT}
    check(held, "no socket held in SYN_SENT")
    check(set(held) <= ss_syn_sent_ports(ns), "ss does not show the held ports %s: %s"
          % (sorted(held), sorted(ss_syn_sent_ports(ns))))
    fired = t.wait_alerts(rule="cp-held", status="firing", n=len(held), timeout=5)
    check(len(fired) == len(held), "%d firing alerts for %d held sockets" %
          (len(fired), len(held)))
    log("held (getsockname): %s; alerts: %s" % (sorted(held),
                                                [(a.get("lport"), a["key"]) for a in fired]))
    check(sorted(a.get("lport") for a in fired) == sorted(held),
          "alert lports %s, the sockets' ports %s" % ([a.get("lport") for a in fired],
                                                      sorted(held)))
    for a in fired:
        check(":%d-" % a["lport"] in a["key"]["sock"], "key without the port: %s" % a["key"])
    hold.cmd("close", ids=[c["id"] for c in conns] + [ls["id"]])
    resolved = t.wait_alerts(rule="cp-held", status="resolved", n=len(held), timeout=5)
    check(sorted(json.dumps(a["key"]) for a in resolved) ==
          sorted(json.dumps(a["key"]) for a in fired),
          "resolved keys %s differ from firing keys %s" % ([a["key"] for a in resolved],
                                                           [a["key"] for a in fired]))
    check(t.stop() == 0, "tsguard did not exit 0")

    # the record: the port comes on a line before the firing time
    first_fire = min(a["ts"] for a in fired)
    known = set()
    with open(rec) as f:
        for line in f:
            ev = json.loads(line)
            if ev["ts"] <= first_fire and ev.get("lport") in held:
                known.add(ev["lport"])
    check(known == set(held), "the record brings the ports %s before %.3f, held %s"
          % (sorted(known), first_fire, sorted(held)))
    r = subprocess.run([tsguard, "-r", rules, "--replay", rec, "-o", "json", "--until",
                        "%.6f" % (max(a["ts"] for a in resolved) + 0.1)],
                       capture_output=True, text=True, timeout=60, cwd=env.tmp)
    check(r.returncode == 0, "replay exited %d: %s" % (r.returncode, r.stderr))
    replay = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    live = fired + resolved
    check(sorted((a["status"], json.dumps(a["key"])) for a in replay) ==
          sorted((a["status"], json.dumps(a["key"])) for a in live),
          "replay keys %s, live %s" % ([a["key"] for a in replay], [a["key"] for a in live]))


if __name__ == "__main__":
    run(test)

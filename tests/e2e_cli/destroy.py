#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The destroy action closes exactly the alert's socket, in its own namespace.

A server that leaks CLOSE_WAIT (it never closes what it accepted; each client
shuts its side down and keeps its fd, FIN_WAIT2) and rules
{state: CLOSE_WAIT, longer_than: 300ms} with a `type: destroy` action:
  1. host namespace: after the alert fires `ss -tan` no longer lists the
     socket; the server's next send on it fails with ECONNABORTED (103); the
     client's recv fails with ECONNRESET (104); a second leaking server on a
     port no rule names keeps its CLOSE_WAIT socket (nothing else touched);
  2. the same in another network namespace (tsg-d1, server and client in it,
     tsguard in the host's, watching every namespace);
  3. the bound: max_per_minute 2 and 5 leaked sockets: exactly 2 closed, 3
     skipped (tsguard_action_results_total{...,result="skipped"} 3);
  4. a dry run (-n): the dry-run line is printed and the socket stays.
Namespaces and processes are removed at the end, also when the test fails.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsgtest import Agent, check, log, metrics_text, run, wait_until  # noqa: E402

P_HOST, P_OTHER, P_NS, P_BOUND, P_DRY = 18091, 18092, 18093, 18094, 18095
METRICS = 19391
NS = "tsg-d1"
ECONNABORTED, ECONNRESET = 103, 104

RULES = """
actions:
  - name: reap
    type: destroy
  - name: reap2
    type: destroy
    max_per_minute: 2
rules:
""" + "".join("""  - name: %s
    match: {lport: %%d}
    when: {state: CLOSE_WAIT, longer_than: 300ms}
    actions: [%s]
""" % rule for rule in (("reap-host", "reap"), ("reap-ns", "reap"), ("reap-bound", "reap2"),
                        ("reap-dry", "reap")))


def close_wait(port, ns=None):
    """The CLOSE_WAIT sockets of local port `port` that ss lists (their peers)."""
    cmd = ["ss", "-Htan", "state", "close-wait", "sport", "= :%d" % port]
    if ns:
        cmd = ["ip", "netns", "exec", ns] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [ln.split()[-1] for ln in out.splitlines() if ln.strip()]


def leak(server, client, port, n):
    """n CLOSE_WAIT sockets on the server: [(server id, client id)]."""
    lst = server.cmd("listen", port=port)
    server.cmd("serve", id=lst["id"], mode="hold")
    cids = [client.cmd("connect", port=port)["id"] for _ in range(n)]
    check(wait_until(lambda: server.cmd("served", id=lst["id"])["n"] == n, 5),
          "port %d: the server did not accept %d connections" % (port, n))
    for c in cids:
        client.cmd("shutdown", id=c)
    sids = server.cmd("served", id=lst["id"])["ids"]
    return list(zip(sids, cids))


def check_destroyed(env, t, rule, server, client, pairs, port, ns=None):
    where = "netns %s" % ns if ns else "host"
    got = t.wait_alerts(rule=rule, status="firing", n=len(pairs), timeout=10)
    check(len(got) >= len(pairs), "%s: %d firing alerts, expected %d" % (where, len(got),
                                                                     len(pairs)))
    gone = wait_until(lambda: not close_wait(port, ns), 5)
    env.soft(gone, "%s: ss still lists CLOSE_WAIT on port %d: %s" % (where, port,
                                                                  close_wait(port, ns)))
    for sid, cid in pairs:
        s = server.cmd("io", id=sid, dir="send")
        env.soft(s["errno"] == ECONNABORTED,
                 "%s: the server's send on its destroyed socket: errno %d, expected "
                 "ECONNABORTED (103)" % (where, s["errno"]))
        c = client.cmd("io", id=cid, dir="recv")
        env.soft(c["errno"] == ECONNRESET,
                 "%s: the client's recv after the destroy: errno %d (n %d), expected "
                 "ECONNRESET (104)" % (where, c["errno"], c["n"]))
    log("%s: %d socket(s) destroyed: ss lists none, server ECONNABORTED, client ECONNRESET"
        % (where, len(pairs)))


def metric(name, labels):
    for line in metrics_text(METRICS).splitlines():
        if line.startswith(name + "{") and all(lb in line for lb in labels):
            return int(float(line.split()[-1]))
    return None


def make_ns(env):
    subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    env.cleanups.append(lambda: subprocess.run(["ip", "netns", "del", NS]))
    subprocess.run(["ip", "-n", NS, "link", "set", "lo", "up"], check=True)


def agent_in(env, prefix, ns):
    a = Agent(env, env.name(prefix), ns)
    env.cleanups.append(a.stop)
    return a


def live(env, tsguard, rules):
    make_ns(env)
    srv, cli = env.agent("dsrv"), env.agent("dcli")
    nsrv, ncli = agent_in(env, "dnsrv", NS), agent_in(env, "dncli", NS)
    t = env.tsguard(tsguard, ["-r", rules, "-o", "json", "--metrics",
                              "127.0.0.1:%d" % METRICS])
    # 1. host, and a leak no rule names beside it
    other = leak(srv, cli, P_OTHER, 1)
    host = leak(srv, cli, P_HOST, 1)
    check_destroyed(env, t, "reap-host", srv, cli, host, P_HOST)
    env.soft(len(close_wait(P_OTHER)) == 1,
             "the CLOSE_WAIT socket of port %d (no rule) was touched: ss lists %s" %
             (P_OTHER, close_wait(P_OTHER)))
    env.soft(srv.cmd("io", id=other[0][0], dir="send")["errno"] == 0,
             "the socket no rule names cannot send any more")
    # 2. another namespace
    check_destroyed(env, t, "reap-ns", nsrv, ncli, leak(nsrv, ncli, P_NS, 1), P_NS, NS)
    # 3. the bound: 2 of 5
    leak(srv, cli, P_BOUND, 5)
    got = t.wait_alerts(rule="reap-bound", status="firing", n=5, timeout=10)
    check(len(got) == 5, "reap-bound: %d firing alerts, expected 5" % len(got))
    left = wait_until(lambda: len(close_wait(P_BOUND)) == 3 and close_wait(P_BOUND), 5)
    env.soft(len(left or close_wait(P_BOUND)) == 3,
             "max_per_minute 2 with 5 sockets: ss lists %d CLOSE_WAIT, expected 3" %
             len(close_wait(P_BOUND)))
    def results():
        return {r: metric("tsguard_action_results_total", ['action="reap2"', 'result="%s"' % r])
                for r in ("sent", "skipped", "failed")}
    # the metrics snapshot is taken periodically: wait for it to count the five
    res = wait_until(lambda: (lambda r: r if (r["sent"] or 0) + (r["skipped"] or 0) >= 5
                              else None)(results()), 10) or results()
    log("reap2 results: %s" % res)
    env.soft(res["sent"] == 2 and res["skipped"] == 3,
             "reap2: sent %s skipped %s, expected 2 and 3" % (res["sent"], res["skipped"]))
    env.soft("not closed: more than 2 a minute" in t.stderr(),
             "no line about the skipped sockets: " + t.stderr()[-2000:])
    check(t.stop() == 0, "tsguard exited %s: %s" % (t.rc, t.stderr()[-2000:]))


def dry(env, tsguard, rules):
    srv, cli = env.agent("dysrv"), env.agent("dycli")
    t = env.tsguard(tsguard, ["-n", "-r", rules, "-o", "json"], tag="tsguard-dry")
    leak(srv, cli, P_DRY, 1)
    got = t.wait_alerts(rule="reap-dry", status="firing", timeout=10)
    check(got, "dry run: no firing alert: " + t.stderr()[-2000:])
    line = wait_until(lambda: [ln for ln in t.stdout().splitlines()
                               if '"dry_run":{' in ln and '"destroy"' in ln and
                               ":%d-" % P_DRY in ln], 5)
    env.soft(line, "dry run: no dry-run line for the destroy action: " + t.stdout()[-2000:])
    log("dry run: %s" % (line[0] if line else None))
    wait_until(lambda: False, 1.0)  # what a live run would have closed by now
    env.soft(len(close_wait(P_DRY)) == 1, "dry run: the socket is gone from ss")
    check(t.stop() == 0, "tsguard -n exited %s" % t.rc)


def test(env, tsguard):
    rules = env.rules_dir({"d.yaml": RULES % (P_HOST, P_NS, P_BOUND, P_DRY)})
    live(env, tsguard, rules)
    dry(env, tsguard, rules)


if __name__ == "__main__":
    run(test)

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Each `when` kind fires on real traffic (tsguard live, -o json, --record).

  transition: a refused connect (SYN_SENT -> CLOSE) names the connecting process
  time in state: SYN_SENT held by a full backlog fires 300 ms after the SYN_SENT
                 entry (within 50 ms), while the socket is still in SYN_SENT;
                 resolves when the socket leaves
  count: more than 30 TIME_WAIT sockets of one command (the client closes first)
  rate: more than 20 refused connects in 10 s to one port

Traffic runs in a private network namespace, each kind from its own process
(own comm); the rules match those names, so nothing else on the machine counts.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsgtest import TCP_SYN_SENT, Fail, check, log, run, rules_yaml  # noqa: E402

TW_N = 30
RATE_N = 20


def test(env, tsguard):
    env.make_netns()
    # transition, time in state, count (TIME_WAIT), the TIME_WAIT client's server, rate
    cli, hold, twc, tws, rate = env.agents("tkc", "tkh", "tkw", "tks", "tkr")

    rules = env.rules_dir({"kinds.yaml": rules_yaml(
        ("k-refused", cli.name, "from: SYN_SENT, to: CLOSE"),
        ("k-held", hold.name, "state: SYN_SENT, longer_than: 300ms"),
        ("k-timewait", twc.name, f"state: TIME_WAIT, count_above: {TW_N}, by: comm"),
        ("k-rate", rate.name,
         f"from: SYN_SENT, to: CLOSE, rate_above: {RATE_N}, per: 10s, by: rport"),
    )})
    rec = os.path.join(env.tmp, "record.jsonl")
    t = env.tsguard(tsguard, ["-r", rules, "-o", "json", "--record", rec])

    # ---- transition -----------------------------------------------------------
    port = cli.cmd("closed_port")["port"]
    check(cli.cmd("refuse", port=port, n=1)["refused"] == 1, "the connect was not refused")
    got = t.wait_alerts(rule="k-refused", n=1)
    check(len(got) == 1, "transition: expected 1 alert, got %d: %s" % (len(got), got))
    a = got[0]
    log("transition alert: %s" % json.dumps(a))
    check(a["status"] == "firing", "transition: status %s" % a["status"])
    check(a.get("comm") == cli.name and a.get("pid") == cli.pid,
          "transition: alert names %s/%s, the connecting process is %s/%s" %
          (a.get("comm"), a.get("pid"), cli.name, cli.pid))
    check(a.get("from") == "SYN_SENT" and a.get("to") == "CLOSE",
          "transition: from/to %s/%s" % (a.get("from"), a.get("to")))
    check(a.get("rport") == port and a.get("raddr") == "127.0.0.1",
          "transition: peer %s:%s, expected 127.0.0.1:%d" % (a.get("raddr"), a.get("rport"), port))

    # ---- time in state --------------------------------------------------------
    ls = hold.cmd("listen", backlog=0)
    ids = [hold.cmd("connect", port=ls["port"], block=False)["id"] for _ in range(3)]
    # the accept queue holds one connection; the other SYNs are dropped
    held = [i for i in ids if hold.cmd("state", id=i)["state"] == TCP_SYN_SENT]
    check(len(held) >= 1, "time: no socket is held in SYN_SENT")
    log("time: %d of 3 connects held in SYN_SENT" % len(held))
    fired = t.wait_alerts(rule="k-held", status="firing", n=len(held), timeout=5)
    for i in held:  # the alert came while the socket is still there
        check(hold.cmd("state", id=i)["state"] == TCP_SYN_SENT,
              "time: socket %d left SYN_SENT before the check" % i)
    check(len(fired) == len(held), "time: %d sockets held in SYN_SENT, %d firing alerts: %s" %
          (len(held), len(fired), fired))
    check(not t.alerts(rule="k-held", status="resolved"),
          "time: resolved while the sockets are still in SYN_SENT")
    keys = {json.dumps(a["key"], sort_keys=True) for a in fired}
    # "Key: the socket": two sockets are two alerts with two keys (the local port
    # of a socket still in SYN_SENT is unknown to tsguard: its CLOSE->SYN_SENT
    # transition comes before connect() picks the port)
    env.soft(len(keys) == len(fired), "time: %d alerts of %d different sockets share the key(s) "
             "%s" % (len(fired), len(fired), sorted(keys)))
    hold.cmd("close", ids=held)
    res = t.wait_alerts(rule="k-held", status="resolved", n=len(held), timeout=5)
    check(len(res) == len(held), "time: %d resolved after closing %d held sockets" %
          (len(res), len(held)))
    check(keys == {json.dumps(a["key"], sort_keys=True) for a in res},
          "time: resolved keys differ from firing keys")
    for a in res:
        check(a.get("ts") >= max(f["ts"] for f in fired), "time: resolved before firing")
    hold.cmd("close", ids=[i for i in ids if i not in held] + [ls["id"]])

    # ---- count ----------------------------------------------------------------
    ls = tws.cmd("listen", backlog=128)
    tws.cmd("serve", id=ls["id"], mode="close")
    n = TW_N + 20
    check(twc.cmd("churn", port=ls["port"], n=n)["done"] == n, "count: connects failed")
    got = t.wait_alerts(rule="k-timewait", status="firing", n=1, timeout=10)
    check(len(got) == 1, "count: expected 1 firing alert, got %s" % got)
    a = got[0]
    log("count alert: %s" % json.dumps(a))
    check(a.get("key") == {"comm": twc.name}, "count: key %s, expected comm %s" %
          (a.get("key"), twc.name))
    check(a.get("count", 0) > TW_N, "count: count %s" % a.get("count"))
    tws.cmd("close", ids=[ls["id"]])

    # ---- rate -----------------------------------------------------------------
    port = rate.cmd("closed_port")["port"]
    n = RATE_N + 5
    check(rate.cmd("refuse", port=port, n=n)["refused"] == n, "rate: connects not refused")
    got = t.wait_alerts(rule="k-rate", status="firing", n=1, timeout=5)
    check(len(got) == 1, "rate: expected 1 firing alert, got %s" % got)
    a = got[0]
    log("rate alert: %s" % json.dumps(a))
    check(a.get("key") == {"rport": port}, "rate: key %s, expected rport %d" %
          (a.get("key"), port))
    check(a.get("count") == RATE_N + 1, "rate: count %s, expected %d (fires on the %dth)" %
          (a.get("count"), RATE_N + 1, RATE_N + 1))

    rc = t.stop()
    check(rc == 0, "tsguard exited %d" % rc)
    check("stopping:" in t.stderr(), "no stop line")
    entries = []
    with open(rec) as f:
        for line in f:
            e = json.loads(line)
            if e.get("comm") == hold.name and e.get("to") == "SYN_SENT":
                entries.append(e)
    for a in fired:  # --record is written at exit (block buffered)
        log("time alert: ts %.6f duration_ms %s key %s" % (a["ts"], a.get("duration_ms"),
                                                         a["key"]))
        check(a.get("state") == "SYN_SENT", "time: alert state %s" % a.get("state"))
        check(a.get("comm") == hold.name and a.get("pid") == hold.pid,
              "time: alert names %s/%s" % (a.get("comm"), a.get("pid")))
        check(abs(a.get("duration_ms", -1) - 300) <= 50,
              "time: duration_ms %s, expected 300" % a.get("duration_ms"))
        near = [e for e in entries if abs(a["ts"] - (e["ts"] + 0.300)) <= 0.050]
        check(near, "time: alert at ts %.6f is not 300 ms (+-50) after a recorded SYN_SENT "
              "entry (entries: %s)" % (a["ts"], [e["ts"] for e in entries]))
        e = min(near, key=lambda e: abs(a["ts"] - (e["ts"] + 0.300)))
        entries.remove(e)  # one entry per alert
        log("time: SYN_SENT entry %.6f, alert %.3f: %+.1f ms from entry + 300 ms" %
            (e["ts"], a["ts"], (a["ts"] - e["ts"] - 0.3) * 1000))
    # nothing matched twice
    check(len(t.alerts(rule="k-refused")) == 1, "transition fired more than once")
    check(len(t.alerts(rule="k-timewait", status="firing")) == 1, "count fired twice")
    check(len(t.alerts(rule="k-rate", status="firing")) == 1, "rate fired twice")


if __name__ == "__main__":
    run(test)

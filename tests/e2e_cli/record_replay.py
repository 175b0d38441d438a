#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A live run recorded with --record replays to the same notifications.

Live: tsguard -o json --record FILE on traffic that fires and resolves alerts of
every kind (a refused connect; SYN_SENT held past 300 ms, then closed; three
CLOSE_WAIT sockets of one server, then closed; a burst of refused connects
above a rate, which then resolves). Replay: tsguard --replay FILE -o json with
the same rules and --until the moment the live run was stopped (CLOCK_MONOTONIC,
the clock of live `ts`). Every notification must come out again: same rule,
status, key and count, `ts` within 1 ms, in the same order.

What may legitimately differ (logged, not compared): `time` (wall clock at
which the notification was made; a replay prints it for the events' clock).
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsgtest import TCP_SYN_SENT, check, log, run, wait_until, rules_yaml  # noqa: E402

IGNORED = {"time"}


def ident(a):
    return (a["rule"], a["status"], json.dumps(a.get("key"), sort_keys=True), a.get("count"))


def test(env, tsguard):
    env.make_netns()
    cli, hold, srv, cwc, rate = env.agents("trc", "trh", "trs", "trw", "trr")
    rules = env.rules_dir({"rr.yaml": rules_yaml(
        ("rr-refused", cli.name, "from: SYN_SENT, to: CLOSE"),
        ("rr-held", hold.name, "state: SYN_SENT, longer_than: 300ms"),
        ("rr-close-wait", srv.name, "state: CLOSE_WAIT, count_above: 2, by: comm"),
        ("rr-rate", rate.name, "from: SYN_SENT, to: CLOSE, rate_above: 5, per: 2s, by: rport"),
    )})
    rec = os.path.join(env.tmp, "record.jsonl")
    t = env.tsguard(tsguard, ["-r", rules, "-o", "json", "--record", rec], tag="live")

    # transition
    port = cli.cmd("closed_port")["port"]
    check(cli.cmd("refuse", port=port, n=2)["refused"] == 2, "connects not refused")
    # time in state: fire, then resolve
    ls = hold.cmd("listen", backlog=0)
    ids = [hold.cmd("connect", port=ls["port"], block=False)["id"] for _ in range(3)]
    held = [i for i in ids if hold.cmd("state", id=i)["state"] == TCP_SYN_SENT]
    check(held, "no socket held in SYN_SENT")
    check(len(t.wait_alerts(rule="rr-held", status="firing", n=len(held), timeout=5)) ==
          len(held), "rr-held did not fire")
    hold.cmd("close", ids=ids + [ls["id"]])
    # count: three CLOSE_WAIT sockets of the server, then closed
    ls = srv.cmd("listen", backlog=16)
    srv.cmd("serve", id=ls["id"], mode="hold")
    cids = [cwc.cmd("connect", port=ls["port"])["id"] for _ in range(3)]
    check(wait_until(lambda: srv.cmd("served", id=ls["id"])["n"] == 3, 5), "not accepted")
    cwc.cmd("close", ids=cids)
    check(t.wait_alerts(rule="rr-close-wait", status="firing", timeout=5),
          "rr-close-wait did not fire")
    srv.cmd("close", ids=srv.cmd("served", id=ls["id"])["ids"] + [ls["id"]])
    check(t.wait_alerts(rule="rr-close-wait", status="resolved", timeout=5),
          "rr-close-wait did not resolve")
    # rate: fire, then resolve when the 2 s window empties
    port = rate.cmd("closed_port")["port"]
    check(rate.cmd("refuse", port=port, n=8)["refused"] == 8, "connects not refused")
    check(t.wait_alerts(rule="rr-rate", status="resolved", timeout=6),
          "rr-rate did not fire and resolve")
    time.sleep(1.0)  # nothing is due near the stop
    t_stop = time.monotonic()
    rc = t.stop()
    check(rc == 0, "live tsguard exited %d" % rc)
    live = t.alerts()
    check(os.path.getsize(rec) > 0, "the record is empty")

    r = subprocess.run([tsguard, "-r", rules, "--replay", rec, "-o", "json",
                        "--until", "%.6f" % t_stop], capture_output=True, text=True,
                       timeout=120, cwd=env.tmp)
    with open(os.path.join(env.tmp, "replay.err"), "w") as f:
        f.write(r.stderr)
    with open(os.path.join(env.tmp, "replay.out"), "w") as f:
        f.write(r.stdout)
    check(r.returncode == 0, "replay exited %d: %s" % (r.returncode, r.stderr))
    replay = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]

    kinds = {a["rule"] for a in live}
    check(kinds == {"rr-refused", "rr-held", "rr-close-wait", "rr-rate"},
          "live fired only %s" % sorted(kinds))
    log("live: %d notifications, replay: %d" % (len(live), len(replay)))
    for a in live:
        log("  live   %.3f %s %s %s count=%s" % (a["ts"], *ident(a)))
    for a in replay:
        log("  replay %.3f %s %s %s count=%s" % (a["ts"], *ident(a)))
    check(len(live) == len(replay), "live made %d notifications, replay %d" %
          (len(live), len(replay)))
    other = set()
    for i, (a, b) in enumerate(zip(live, replay)):
        check(ident(a) == ident(b), "notification %d: live %s, replay %s" %
              (i, ident(a), ident(b)))
        check(abs(a["ts"] - b["ts"]) <= 0.0011, "notification %d %s: live ts %.3f, replay %.3f"
              % (i, ident(a), a["ts"], b["ts"]))
        for k in set(a) | set(b):
            if k not in IGNORED and k != "ts" and a.get(k) != b.get(k):
                other.add(k)
                log("differs: %s %s: live %r replay %r" % (ident(a), k, a.get(k), b.get(k)))
    env.soft(not other, "fields other than %s differ between live and replay: %s" %
             (sorted(IGNORED), sorted(other)))


if __name__ == "__main__":
    run(test)

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SIGHUP reloads the rules live; a rule set with errors is rejected.

Start with a count rule that fires (more than 2 CLOSE_WAIT sockets of one
server: the client closes three connections, the server keeps them) and a
transition rule (refused connects of one client).
  (a) add an invalid rule file, SIGHUP: stderr names FILE:LINE:COL and says
      "reload rejected"; tsguard keeps running and the old rules still fire on
      new traffic.
  (b) replace it by a valid file that adds rules, leaving the count rule as it
      was, SIGHUP: a new rule fires on new traffic, another one at once on the
      sockets that existed before the reload; the count alert keeps its state
      (no second firing notification) and resolves when the server closes its
      sockets.
"""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsgtest import check, log, run, wait_until, rules_yaml  # noqa: E402


def test(env, tsguard):
    env.make_netns()
    srv, cwc, cli, cli2 = env.agents("tls", "tlw", "tlc", "tln")
    base = rules_yaml(
        ("rl-close-wait", srv.name, "state: CLOSE_WAIT, count_above: 2, by: comm"),
        ("rl-refused", cli.name, "from: SYN_SENT, to: CLOSE"),
    )
    rules = env.rules_dir({"10-base.yaml": base})
    t = env.tsguard(tsguard, ["-r", rules, "-o", "json"])

    ls = srv.cmd("listen", backlog=16)
    srv.cmd("serve", id=ls["id"], mode="hold")
    cids = [cwc.cmd("connect", port=ls["port"])["id"] for _ in range(3)]
    check(wait_until(lambda: srv.cmd("served", id=ls["id"])["n"] == 3, 5), "not accepted")
    cwc.cmd("close", ids=cids)
    fired = t.wait_alerts(rule="rl-close-wait", status="firing", timeout=5)
    check(len(fired) == 1, "rl-close-wait: %d firing notifications, expected 1" % len(fired))
    check(fired[0].get("key") == {"comm": srv.name} and fired[0].get("count") == 3,
          "rl-close-wait: key %s count %s" % (fired[0].get("key"), fired[0].get("count")))

    # (a) an invalid file: rejected whole, the old rules keep running
    bad = env.write_rule(rules, "20-new.yaml", """
rules:
  - name: rl-new
    match: {comm: x}
    when: {from: SYN_SENT, to: CLOSE}
  - name: rl-broken
    when: {state: SYN_SNET, longer_than: 1s}
""")
    t.send(signal.SIGHUP)
    check(wait_until(lambda: "reload rejected" in t.stderr(), 10),
          "(a) no 'reload rejected' after SIGHUP with an invalid file:\n" + t.stderr())
    err = t.stderr()
    m = re.search(r"^(\S*20-new\.yaml):(\d+):(\d+): error: (.*)$", err, re.M)
    check(m, "(a) no FILE:LINE:COL error naming %s:\n%s" % (bad, err))
    log("(a) %s" % m.group(0))
    check(m.group(1) == bad and m.group(2) == "7",
          "(a) the error names %s line %s, the bad state is at %s line 7" %
          (m.group(1), m.group(2), bad))
    check("SYN_SNET" in m.group(4), "(a) the error does not name the bad word: " + m.group(4))
    time.sleep(0.5)
    check(t.alive(), "(a) tsguard exited after a rejected reload (rc %s)" % t.p.poll())
    port = cli.cmd("closed_port")["port"]
    check(cli.cmd("refuse", port=port, n=1)["refused"] == 1, "not refused")
    check(t.wait_alerts(lambda a: a.get("rport") == port, rule="rl-refused", timeout=5),
          "(a) the old transition rule does not fire after a rejected reload")
    port2 = cli2.cmd("closed_port")["port"]
    check(cli2.cmd("refuse", port=port2, n=1)["refused"] == 1, "not refused")

    # (b) a valid set: the count rule unchanged, a new rule
    env.write_rule(rules, "20-new.yaml", f"""
rules:
  - name: rl-new
    match: {{comm: {cli2.name}}}
    when: {{from: SYN_SENT, to: CLOSE}}
  # a new rule about sockets that exist before the reload: the snapshot is
  # taken again, so it sees the server's 3 CLOSE_WAIT sockets at once
  - name: rl-existing
    match: {{comm: {srv.name}}}
    when: {{state: CLOSE_WAIT, count_above: 2, by: comm}}
""")
    n_reloaded = t.stderr().count("reloaded:")
    t.send(signal.SIGHUP)
    check(wait_until(lambda: t.stderr().count("reloaded:") > n_reloaded, 10),
          "(b) no 'reloaded:' after SIGHUP with a valid set:\n" + t.stderr())
    check(re.search(r"reloaded: 4 rules", t.stderr()), "(b) not 4 rules: " + t.stderr())
    ex = t.wait_alerts(rule="rl-existing", status="firing", timeout=5)
    check(len(ex) == 1 and ex[0].get("count") == 3 and ex[0].get("key") == {"comm": srv.name},
          "(b) the new count rule does not see the 3 CLOSE_WAIT sockets that existed before "
          "the reload: %s" % ex)
    check(not t.alerts(rule="rl-new"), "(b) rl-new fired for traffic before it was loaded")
    port3 = cli2.cmd("closed_port")["port"]
    check(cli2.cmd("refuse", port=port3, n=1)["refused"] == 1, "not refused")
    got = t.wait_alerts(rule="rl-new", timeout=5)
    check(got, "(b) the new rule does not fire after the reload")
    check(got[0].get("comm") == cli2.name and got[0].get("rport") == port3,
          "(b) rl-new alert: %s" % got[0])
    # the unchanged count alert kept its state
    time.sleep(0.5)
    n = len(t.alerts(rule="rl-close-wait", status="firing"))
    check(n == 1, "(b) rl-close-wait fired %d times across the reloads, expected once" % n)
    srv.cmd("close", ids=srv.cmd("served", id=ls["id"])["ids"])
    res = t.wait_alerts(rule="rl-close-wait", status="resolved", timeout=5)
    check(len(res) == 1, "(b) rl-close-wait: %d resolved notifications after the server closed "
          "its sockets, expected 1" % len(res))
    check(res[0].get("key") == {"comm": srv.name}, "(b) resolved key %s" % res[0].get("key"))
    srv.cmd("close", ids=[ls["id"]])

    rc = t.stop()
    check(rc == 0, "tsguard exited %d" % rc)
    check(len(t.alerts(rule="rl-close-wait", status="firing")) == 1, "fired twice in all")


if __name__ == "__main__":
    run(test)

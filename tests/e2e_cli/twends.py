#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Timewait sockets that end before their time, seen as they end.

No state tracepoint reports a timewait socket's end. tsguard follows the
kernel's own reports (docs/kernel.md, "TIME_WAIT"), and a scan lists timewait
sockets only every 10 s. Two early ends, in a network namespace of the test:
  - taken over: 20 connections closed by the client leave 20 TIME_WAIT
    sockets on the client's ports; 20 new connects from the same ports
    (SO_REUSEADDR, net.ipv4.tcp_tw_reuse=1, after 1 s) take those 4-tuples over, which
    ends the timewait sockets. tsguard's TIME_WAIT count must follow ss to 0
    within 2 s, and tsguard_capture_time_wait_taken_over_total count 20;
  - killed by a reset: 20 orphans wait in FIN_WAIT2 (the client closed, the
    server holds); the server closes its side with a reset (SO_LINGER 0),
    which kills the client's timewait sockets at once. tsguard's FIN_WAIT2
    count must follow ss to 0 within 2 s, and
    tsguard_capture_time_wait_kernel_ends_total grow by 20.
Both within 2 s, far below the 10 s of the scan: the kernel's reports did it.
"""
import os
import random
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsgtest import check, log, metrics_text, run, wait_until  # noqa: E402

METRICS_PORT = 19473
N = 20
DEADLINE = 2.0  # s; the scan that lists timewait sockets runs every 10 s


def ss_count(ns, state):
    """ss's count of `state` in the namespace, the metrics scrapes left out."""
    r = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htan", "state", state,
                        "( sport != :%d and dport != :%d )" % (METRICS_PORT, METRICS_PORT)],
                       capture_output=True, text=True, check=True)
    return len([ln for ln in r.stdout.splitlines() if ln.strip()])


def gauges(ns):
    text = metrics_text(METRICS_PORT, ns)
    by_state = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^tsguard_engine_sockets_by_state\{state="(\w+)"\} (\d+)$', text, re.M)}
    counters = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^tsguard_capture_time_wait_(\w+)_total (\d+)$', text, re.M)}
    return by_state, counters


def equal_to_ss(ns, state, ss_state, want):
    """True once ss and tsguard both count `want` sockets in `state`."""
    by_state, _ = gauges(ns)
    return ss_count(ns, ss_state) == want and by_state.get(state, 0) == want


def reach(ns, state, ss_state, least, timeout):
    """Waits until ss counts N sockets in `state` (at least `least` once a second
    has passed) and tsguard as many; how many, or a failure."""
    t0 = time.monotonic()

    def settled():
        n = ss_count(ns, ss_state)
        want = N if time.monotonic() - t0 < 1 else max(least, min(n, N))
        return n == want and equal_to_ss(ns, state, ss_state, n) and n

    n = wait_until(settled, timeout)
    check(n, "%s: ss %d, tsguard %s, want %d (at least %d)" %
          (state, ss_count(ns, ss_state), gauges(ns)[0].get(state), N, least))
    return n


def ends_seen(ns, state, ss_state, counter, what, act, n):
    """Runs act(), which ends the n sockets in `state`: tsguard must follow ss to 0
    within DEADLINE, and the capture counter `counter` grow by n."""
    _, c0 = gauges(ns)
    t0 = time.monotonic()
    act()
    ok = wait_until(lambda: equal_to_ss(ns, state, ss_state, 0), DEADLINE)
    by_state, c1 = gauges(ns)
    log("%s: %s ss %d, tsguard %s after %.2f s; %s %s -> %s" %
        (what, state, ss_count(ns, ss_state), by_state.get(state), time.monotonic() - t0,
         counter, c0.get(counter), c1.get(counter)))
    check(ok, "%s: %s sockets still counted after %.1f s" % (what, state, DEADLINE))
    check(c1.get(counter, 0) - c0.get(counter, 0) == n,
          "%s: %s %s -> %s, want +%d" % (what, counter, c0.get(counter), c1.get(counter), n))


def test(env, tsguard):
    ns = env.make_netns("net.ipv4.tcp_tw_reuse=1", "net.ipv4.tcp_fin_timeout=60")
    cli, srv = env.agents("twe", "twes")
    rules = env.rules_dir({"tw.yaml": "rules:\n" + "".join(
        f"  - name: n-{st.lower().replace('_', '-')}\n"
        f"    match: {{comm: {cli.name}}}\n"
        f"    when: {{state: {st}, count_above: 1000000, by: comm}}\n"
        for st in ("ESTABLISHED", "TIME_WAIT", "FIN_WAIT2"))})
    env.tsguard(tsguard, ["-r", rules, "-o", "json", "--netns", "host",
                          "--metrics", "127.0.0.1:%d" % METRICS_PORT])

    # 1. taken over: TIME_WAIT on the client's ports, then new connects from them
    closer = srv.cmd("listen", backlog=128)
    srv.cmd("serve", id=closer["id"], mode="close")
    base = random.randint(20000, 30000)
    # SO_REUSEADDR on both: a timewait socket lets a bind share its port only then
    ids = [cli.cmd("connect", port=closer["port"], lport=base + i, reuse=True)["id"]
           for i in range(N)]
    cli.cmd("close", ids=ids)
    # now and then one of the loopback connections does not end in TIME_WAIT
    # (ss agrees with tsguard): at least N - 2 do
    n = reach(ns, "TIME_WAIT", "time-wait", N - 2, 10)
    time.sleep(1.5)  # the kernel lets a connect reuse a timewait socket 1 s old
    again = []

    def reconnect():
        again.extend(cli.cmd("connect", port=closer["port"], lport=base + i, reuse=True)
                     for i in range(N))
        check(all(a["result"] == "ok" for a in again),
              "connects from the TIME_WAIT ports: %s" % [a["result"] for a in again])

    ends_seen(ns, "TIME_WAIT", "time-wait", "taken_over", "taken over", reconnect, n)
    cli.cmd("close", ids=[a["id"] for a in again])

    # 2. killed by a reset: orphans in FIN_WAIT2, the server resets its side
    holder = srv.cmd("listen", backlog=128)
    srv.cmd("serve", id=holder["id"], mode="hold")
    ids = [cli.cmd("connect", port=holder["port"])["id"] for _ in range(N)]
    check(wait_until(lambda: srv.cmd("served", id=holder["id"])["n"] == N, 5), "not accepted")
    cli.cmd("close", ids=ids)  # orphans: FIN_WAIT2 as timewait sockets
    n = reach(ns, "FIN_WAIT2", "fin-wait-2", N - 2, 10)
    ends_seen(ns, "FIN_WAIT2", "fin-wait-2", "kernel_ends", "reset",
              lambda: srv.cmd("close", ids=srv.cmd("served", id=holder["id"])["ids"],
                              rst=True), n)


if __name__ == "__main__":
    run(test)

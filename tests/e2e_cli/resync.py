#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""After a loss, tsguard's sockets are made equal to the kernel's (resync).

tsguard runs with a ring buffer of 4 KiB (TSG_RINGBUF_BYTES, a test and
tuning knob) and a count rule on every state, so that a burst of a few
thousand connections (held open; then half of them closed by the client:
orphaned FIN_WAIT2 on its side, CLOSE_WAIT on the server's) overflows it:
  - the loss is counted (tsguard_capture_events_lost_total > 0) and logged;
  - a resync is counted (tsguard_capture_resyncs_total > 0) and logged once
    per resync, not per event;
  - within 2.5 s of the end of each burst (2 s, plus the metrics
    publication period) tsguard's count of every state equals `ss -tan`'s.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from states_vs_ss import DEADLINE, compare, rules_yaml, tsguard_counts  # noqa: E402
from tsgtest import check, log, run  # noqa: E402

METRICS_PORT = 19473
N = 3000


def metric(text, name):
    m = re.search(r"^%s (\d+)$" % name, text, re.M)
    return int(m.group(1)) if m else None


def until_equal(ns, what):
    t0 = time.monotonic()
    while True:
        ok, s, folded, raw = compare(ns, METRICS_PORT)
        if ok:
            log("%s: equal after %.2f s: %s" % (what, time.monotonic() - t0, folded))
            return
        if time.monotonic() - t0 > DEADLINE:
            check(False, "%s: after %.1f s tsguard %s, ss %s" % (what, DEADLINE, folded, s))
        time.sleep(0.1)


def test(env, tsguard):
    ns = env.make_netns("net.ipv4.tcp_fin_timeout=60")
    cli, srv = env.agents("rsc", "rss")
    rules = env.rules_dir({"states.yaml": rules_yaml(METRICS_PORT)})
    # ss lists one namespace: tsguard watches that one only (its own)
    t = env.tsguard(tsguard, ["-r", rules, "-o", "json", "--control", "none", "--netns", "host",
                              "--metrics", "127.0.0.1:%d" % METRICS_PORT],
                    prefix=["env", "TSG_RINGBUF_BYTES=4096"])
    ls = srv.cmd("listen", backlog=4096)
    srv.cmd("serve", id=ls["id"], mode="hold")

    ids = cli.cmd("connect_many", port=ls["port"], n=N, timeout=120)["ids"]
    check(len(ids) == N, "connects failed")
    until_equal(ns, "%d connections held open" % N)

    cli.cmd("close", ids=ids[: N // 2])
    until_equal(ns, "%d of them closed by the client" % (N // 2))

    _, text = tsguard_counts(ns, METRICS_PORT)
    lost = metric(text, "tsguard_capture_events_lost_total")
    resyncs = metric(text, "tsguard_capture_resyncs_total")
    log("lost %s, resyncs %s" % (lost, resyncs))
    check(lost is not None and lost > 0, "no loss counted: the test did not force one")
    check(resyncs is not None and resyncs > 0, "no resync counted")
    err = t.stderr()
    n_lost_logs = err.count("ring buffer full")
    n_resync_logs = err.count("capture: resync after a loss")
    log("log lines: %d 'ring buffer full', %d resync" % (n_lost_logs, n_resync_logs))
    check(0 < n_resync_logs <= resyncs, "resync logged %d times for %d resyncs" %
          (n_resync_logs, resyncs))
    check(n_lost_logs < 100, "the loss is logged per event (%d lines)" % n_lost_logs)


if __name__ == "__main__":
    run(test)

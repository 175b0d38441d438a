#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""TIME_WAIT as a real state, counted per key by the live binary.

A client process closes 5,000 loopback connections first, so each leaves a
TIME_WAIT socket (reuse off in the test's namespace). tsguard runs a count
rule on TIME_WAIT by comm:
  - its count of TIME_WAIT sockets (the engine's gauge on /metrics) is within
    1 % of `ss -tan state time-wait` in the namespace, all of them the
    client's (the server closed second, so it has none);
  - the count rule fires with the client's comm as key;
  - as the sockets expire (60 s) the count falls and the alert resolves, and
    tsguard's count follows ss down to 0;
  - those ends were reported by the kernel (each timewait socket's timer,
    tsguard_capture_time_wait_kernel_ends_total), not found by a scan.
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsgtest import check, log, metrics_text, run, wait_until, rules_yaml  # noqa: E402

N = 5000
METRICS_PORT = 19465


def ss_time_wait(ns):
    r = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htan", "state", "time-wait"],
                       capture_output=True, text=True, check=True)
    return len([ln for ln in r.stdout.splitlines() if ln.strip()])


def tracked_time_wait(ns):
    """tsguard's own figure: TIME_WAIT sockets the engine holds (/metrics)."""
    m = re.search(r'^tsguard_engine_sockets_by_state\{state="TIME_WAIT"\} (\d+)$',
                  metrics_text(METRICS_PORT, ns), re.M)
    return int(m.group(1)) if m else None


def test(env, tsguard):
    ns = env.make_netns("net.ipv4.tcp_tw_reuse=0")
    cli, srv = env.agents("twc", "tws")
    rules = env.rules_dir({"tw.yaml": rules_yaml(
        ("tw-pileup", cli.name,
         f"state: TIME_WAIT, count_above: {N - 100}, resolve_below: 1000, by: comm"),
    )})
    t = env.tsguard(tsguard, ["-r", rules, "-o", "json", "--metrics",
                              "127.0.0.1:%d" % METRICS_PORT])
    ls = srv.cmd("listen", backlog=1024)
    srv.cmd("serve", id=ls["id"], mode="close")
    t0 = time.monotonic()
    check(cli.cmd("churn", port=ls["port"], n=N, timeout=120)["done"] == N,
          "connects failed")
    log("churn of %d connections took %.1f s" % (N, time.monotonic() - t0))

    fired = t.wait_alerts(rule="tw-pileup", status="firing", timeout=15)
    check(len(fired) == 1, "expected 1 firing alert, got %s" % fired)
    check(fired[0].get("key") == {"comm": cli.name}, "key %s" % fired[0].get("key"))

    # settle (metrics are published twice a second), then compare with ss
    time.sleep(2)
    ss_n, ts_n = ss_time_wait(ns), tracked_time_wait(ns)
    log("TIME_WAIT: ss %d, tsguard %s" % (ss_n, ts_n))
    check(ts_n is not None, "no TIME_WAIT gauge on /metrics")
    check(ss_n >= N * 0.95, "ss shows only %d TIME_WAIT sockets of %d" % (ss_n, N))
    check(abs(ts_n - ss_n) <= ss_n * 0.01,
          "tsguard counts %d TIME_WAIT sockets, ss %d: more than 1%% apart" % (ts_n, ss_n))

    # they expire after 60 s: the count falls with them, the alert resolves
    res = t.wait_alerts(rule="tw-pileup", status="resolved", timeout=90)
    check(len(res) == 1, "no resolved notification as the sockets expired")
    log("resolved %.1f s after the churn began, count %s" %
        (time.monotonic() - t0, res[0].get("count")))
    check(res[0].get("count", N) <= 1000, "resolved with count %s" % res[0].get("count"))
    check(wait_until(lambda: ss_time_wait(ns) == 0, 30), "TIME_WAIT sockets left in ss")
    time.sleep(2.5)  # one exit scan (1 s) and a metrics publish
    ts_end = tracked_time_wait(ns)
    log("after expiry: ss 0, tsguard %s" % ts_end)
    check(ts_end == 0, "tsguard still counts %s TIME_WAIT sockets after they expired" % ts_end)
    # the ends came from the kernel (each socket's timer), not from the scan;
    # every TIME_WAIT socket followed counts (the metrics scrapes leave some)
    text = metrics_text(METRICS_PORT, ns)
    got = {name: int(v) for name, v in re.findall(
        r'^tsguard_capture_time_wait_(kernel_ends|entered)_total (\d+)$', text, re.M)}
    log("ends reported by the kernel: %s, TIME_WAIT entered %s, ss saw %d" %
        (got.get("kernel_ends"), got.get("entered"), ss_n))
    check("kernel_ends" in got and "entered" in got, "no timewait counters on /metrics")
    check(ss_n * 0.99 <= got["kernel_ends"] <= got["entered"],
          "the kernel reported %s ends of %d TIME_WAIT sockets (%s entered)" %
          (got["kernel_ends"], ss_n, got["entered"]))
    srv.cmd("close", ids=[ls["id"]])
    check(t.stop() == 0, "tsguard did not stop cleanly")


if __name__ == "__main__":
    run(test)

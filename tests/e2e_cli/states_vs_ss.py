#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every state as the kernel holds it: tsguard's per-state counts equal `ss -tan`'s.

In a network namespace of its own, with sockets made before tsguard starts
and after:
  - orphaned FIN_WAIT2 (the client closes, the server never reads nor closes:
    the client's socket waits for the peer's FIN as a timewait socket whose
    substate is FIN_WAIT2; the server's is CLOSE_WAIT);
  - half-open connections (an nftables rule drops the client's final ACK:
    the server holds request sockets, NEW_SYN_RECV; ss says SYN-RECV);
  - TIME_WAIT (connections the client closes first, the server reading);
  - LISTEN, ESTABLISHED, and a SYN_SENT held by a full backlog (listen(fd, 0)
    and two connects).
tsguard runs a count rule on every state (so its engine holds every socket)
and its gauge tsguard_engine_sockets_by_state must equal ss's count of every
state (SYN-RECV = SYN_RECV + NEW_SYN_RECV) within 2.5 s of the last socket
made (the scan period, 1 s, plus the metrics publication period, 0.5 s).
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsgtest import Skip, check, drop_final_acks, log, metrics_text, run  # noqa: E402

METRICS_PORT = 19471
N = 20           # sockets of each kind, half before tsguard starts, half after
DEADLINE = 2.5   # s

STATES = ["ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
          "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV"]
SS_NAMES = {"ESTAB": "ESTABLISHED", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECV",
            "FIN-WAIT-1": "FIN_WAIT1", "FIN-WAIT-2": "FIN_WAIT2", "TIME-WAIT": "TIME_WAIT",
            "CLOSE-WAIT": "CLOSE_WAIT", "LAST-ACK": "LAST_ACK", "LISTEN": "LISTEN",
            "CLOSING": "CLOSING"}


def rules_yaml(port):
    out = ["rules:"]
    for st in STATES:
        out.append(f"""  - name: n-{st.lower().replace('_', '-')}
    match: {{lport: "!{port}", rport: "!{port}"}}
    when: {{state: {st}, count_above: 1000000, by: family}}""")
    return "\n".join(out) + "\n"


def ss_counts(ns, port):
    """ss -tan in the namespace, per state (SYN-RECV under SYN_RECV), the metrics port left out."""
    r = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htan", "state", "all",
                        "( sport != :%d and dport != :%d )" % (port, port)],
                       capture_output=True, text=True, check=True)
    res = {}
    for ln in r.stdout.splitlines():
        w = ln.split()
        if not w:
            continue
        st = SS_NAMES.get(w[0], w[0])
        res[st] = res.get(st, 0) + 1
    return res


def tsguard_counts(ns, port):
    text = metrics_text(port, ns)
    res = {}
    for m in re.finditer(r'^tsguard_engine_sockets_by_state\{state="(\w+)"\} (\d+)$',
                         text, re.M):
        res[m.group(1)] = int(m.group(2))
    return res, text


def compare(ns, port):
    """(equal, ss view, tsguard view folded like ss)."""
    t, _ = tsguard_counts(ns, port)
    s = ss_counts(ns, port)
    folded = dict(t)
    folded["SYN_RECV"] = t.get("SYN_RECV", 0) + t.get("NEW_SYN_RECV", 0)
    folded.pop("NEW_SYN_RECV", None)
    keys = set(SS_NAMES.values()) | set(s)
    ok = bool(t) and all(folded.get(k, 0) == s.get(k, 0) for k in keys)
    return ok, s, {k: folded.get(k, 0) for k in sorted(keys) if folded.get(k, 0) or s.get(k)}, t


def until_equal(ns, port, what):
    t0 = time.monotonic()
    while True:
        ok, s, folded, raw = compare(ns, port)
        if ok:
            log("%s: equal after %.2f s: %s (tsguard NEW_SYN_RECV %d)" %
                (what, time.monotonic() - t0, folded, raw.get("NEW_SYN_RECV", 0)))
            return s, raw
        if time.monotonic() - t0 > DEADLINE:
            raise AssertionError
        time.sleep(0.1)


def make_sockets(env, cli, srv, ports, n):
    # orphaned FIN_WAIT2 on the client, CLOSE_WAIT on the server (server holds, never reads)
    ids = [cli.cmd("connect", port=ports["hold"])["id"] for _ in range(n)]
    cli.cmd("close", ids=ids)
    # TIME_WAIT on the client (client closes first, the server reads to EOF and closes)
    check(cli.cmd("churn", port=ports["close"], n=n)["done"] == n, "churn failed")
    # half-open: the client's final ACK is dropped (client ESTABLISHED, server NEW_SYN_RECV)
    for _ in range(n):
        check(cli.cmd("connect", port=ports["half"])["result"] == "ok", "half-open connect")
    # a SYN_SENT held by a full backlog: a fresh listen(fd, 0) and two connects
    ls = srv.cmd("listen", backlog=0)
    cli.cmd("connect", port=ls["port"], block=False)
    cli.cmd("connect", port=ls["port"], block=False)


def test(env, tsguard):
    if not subprocess.run(["which", "nft"], capture_output=True).returncode == 0:
        raise Skip("needs nft (Debian nftables) for half-open connections")
    # the orphans' FIN_WAIT2 lasts tcp_fin_timeout; TIME_WAIT is 60 s
    ns = env.make_netns("net.ipv4.tcp_fin_timeout=60")
    cli, srv = env.agents("svc", "svs")
    ports = {}
    for mode in ("hold", "close", "half"):
        ls = srv.cmd("listen", backlog=1024)
        ports[mode] = ls["port"]
        if mode != "half":
            srv.cmd("serve", id=ls["id"], mode=mode)
    drop_final_acks(env, ns, ports["half"])

    make_sockets(env, cli, srv, ports, N // 2)
    time.sleep(0.3)  # let the orphans reach FIN_WAIT2
    before = ss_counts(ns, METRICS_PORT)
    log("before tsguard, ss: %s" % before)
    check(before.get("FIN_WAIT2", 0) >= N // 2, "no orphaned FIN_WAIT2 sockets: %s" % before)
    check(before.get("SYN_RECV", 0) >= N // 2, "no half-open connections: %s" % before)

    rules = env.rules_dir({"states.yaml": rules_yaml(METRICS_PORT)})
    # ss lists one namespace: tsguard watches that one only (its own)
    env.tsguard(tsguard, ["-r", rules, "-o", "json", "--control", "none", "--netns", "host",
                          "--metrics", "127.0.0.1:%d" % METRICS_PORT])
    try:
        until_equal(ns, METRICS_PORT, "sockets made before tsguard")
    except AssertionError:
        _, s, f, raw = compare(ns, METRICS_PORT)
        check(False, "before: after %.1f s tsguard %s, ss %s (raw %s)" % (DEADLINE, f, s, raw))

    make_sockets(env, cli, srv, ports, N - N // 2)
    try:
        s, raw = until_equal(ns, METRICS_PORT, "sockets made before and after tsguard")
    except AssertionError:
        _, s, f, raw = compare(ns, METRICS_PORT)
        check(False, "after: after %.1f s tsguard %s, ss %s (raw %s)" % (DEADLINE, f, s, raw))
    check(raw.get("NEW_SYN_RECV", 0) >= N, "NEW_SYN_RECV %s, expected >= %d" %
          (raw.get("NEW_SYN_RECV"), N))
    check(raw.get("FIN_WAIT2", 0) >= N, "FIN_WAIT2 %s, expected >= %d" % (raw.get("FIN_WAIT2"), N))
    for st in ("TIME_WAIT", "CLOSE_WAIT", "LISTEN", "SYN_SENT", "ESTABLISHED"):
        check(raw.get(st, 0) > 0, "no %s socket counted: %s" % (st, raw))


if __name__ == "__main__":
    run(test)

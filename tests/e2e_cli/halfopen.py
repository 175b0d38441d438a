#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Half-open connections (request sockets, NEW_SYN_RECV) come and go as ss shows them.

No tracepoint reports request sockets: the reconcile scan finds them, and a
pass that needs no timewait sockets ends as soon as it has seen as many
request sockets as the namespace's listeners hold (their qlen), or at the
namespace's last listener when none holds one (bpf/tsguard_listen.bpf.h). The
second half-open batch goes to a new listener, made after the first was
counted: its requests must be found all the same. In a network
namespace of the test, with an nftables rule that drops the client's final
ACK (the server's side stays half-open):
  - 10 half-open connections: tsguard's NEW_SYN_RECV gauge equals ss's
    SYN-RECV count within 2.5 s;
  - the rule removed and data sent, the handshakes complete: both fall to 0
    within 2.5 s, and tsguard_capture_syn_recv_exited_total grows by 10;
  - 10 more with net.ipv4.tcp_synack_retries=1: the server gives up after
    its retries (about 3 s); tsguard follows ss to 0 within 2.5 s of ss.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsgtest import (Skip, check, drop_final_acks, log, metrics_text, netns_sysctl,  # noqa: E402
                     run, wait_until)

METRICS_PORT = 19475
N = 10
DEADLINE = 2.5  # s: the scan period (1 s) and the metrics publication (0.5 s)


def ss_syn_recv(ns, port):
    r = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htan", "state", "syn-recv",
                        "( sport = :%d )" % port], capture_output=True, text=True, check=True)
    return len([ln for ln in r.stdout.splitlines() if ln.strip()])


def tracked(ns):
    """tsguard's NEW_SYN_RECV gauge and its syn_recv exits counter."""
    text = metrics_text(METRICS_PORT, ns)
    g = re.search(r'^tsguard_engine_sockets_by_state\{state="NEW_SYN_RECV"\} (\d+)$', text, re.M)
    x = re.search(r'^tsguard_capture_syn_recv_exited_total (\d+)$', text, re.M)
    return (int(g.group(1)) if g else 0), (int(x.group(1)) if x else None)


def both(ns, port, n, timeout, what):
    """Waits until ss and tsguard both count n half-open connections on port."""
    ok = wait_until(lambda: ss_syn_recv(ns, port) == n and tracked(ns)[0] == n, timeout)
    log("%s: ss %d, tsguard %d" % (what, ss_syn_recv(ns, port), tracked(ns)[0]))
    check(ok, "%s: ss %d, tsguard %d, want %d within %.1f s" %
          (what, ss_syn_recv(ns, port), tracked(ns)[0], n, timeout))


def half_open(env, ns, cli, srv):
    """A listener whose clients' final ACKs are dropped, and N connects to it."""
    ls = srv.cmd("listen", backlog=128)
    undrop = drop_final_acks(env, ns, ls["port"])
    ids = [cli.cmd("connect", port=ls["port"])["id"] for _ in range(N)]
    both(ns, ls["port"], N, DEADLINE, "half-open")
    return ls["port"], ids, undrop


def test(env, tsguard):
    if subprocess.run(["which", "nft"], capture_output=True).returncode != 0:
        raise Skip("needs nft (Debian nftables) for half-open connections")
    ns = env.make_netns()
    cli, srv = env.agents("hoc", "hos")
    rules = env.rules_dir({"h.yaml": """rules:
  - name: half-open
    match: {lport: "!%d"}
    when: {state: NEW_SYN_RECV, count_above: 1000000, by: lport}
""" % METRICS_PORT})
    env.tsguard(tsguard, ["-r", rules, "-o", "json", "--netns", "host",
                          "--metrics", "127.0.0.1:%d" % METRICS_PORT])

    # completed: the final ACK goes through again, with the client's data
    port, ids, undrop = half_open(env, ns, cli, srv)
    _, x0 = tracked(ns)
    undrop()
    for i in ids:
        cli.cmd("io", id=i, dir="send")
    both(ns, port, 0, DEADLINE, "completed")
    _, x1 = tracked(ns)
    check(x0 is not None and x1 - x0 == N, "syn_recv exits %s -> %s, want +%d" % (x0, x1, N))

    # dropped: the server's SYN-ACK retries run out
    netns_sysctl(ns, "net.ipv4.tcp_synack_retries=1")
    port, _, _ = half_open(env, ns, cli, srv)
    check(wait_until(lambda: ss_syn_recv(ns, port) == 0, 15), "the kernel kept them")
    both(ns, port, 0, DEADLINE, "dropped")


if __name__ == "__main__":
    run(test)

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""No transition is lost: a known workload, counted transition by transition.

In a private network namespace (tcp_tw_reuse 0), one process makes N
connections of each kind, one kind per server port, one connection at a time:
  client-first  127.0.0.1: the client closes, the server reads EOF and closes
  server-first  127.0.0.1: the server closes at once, the client reads EOF and closes
  reset         127.0.0.1: the client aborts (SO_LINGER 0): a reset
  refused       127.0.0.1: connect to a port nobody listens on
  ipv6          ::1, as client-first
tsguard runs beside it with `--record FILE` (every transition recorded, no rule
needed). Every record line is counted by (kind, from, to), the kind found by
the socket's server port (lport of the server side, rport of the client
side), and every count must be exactly what TCP makes of the workload:
EXPECTED below, checked against libbpf-tools tcpstates on a small run (which
prints the same pairs, FIN_WAIT2 -> CLOSE where tsguard derives TIME_WAIT). A
pair not listed there must not appear at all, except a half-open connection
the reconcile scan happens to find mid-handshake (CLOSE -> NEW_SYN_RECV ->
CLOSE, as `ss` would show it; rare, counted apart). TIME_WAIT is entered
(derived) but not left: the test ends long before the 60 s expiry.

When libbpf-tools `tcpstates` is installed, it traces the same workload and
its count is printed (informational: it skips nested invocations).
"""
import collections
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsgtest import check, log, run, wait_until  # noqa: E402

N = 300
# outside the ephemeral range (32768-60999): a connect to a closed port never meets itself
PORTS = {"client-first": 62101, "server-first": 62102, "reset": 62103, "refused": 62104,
         "ipv6": 62105}

# per connection, and once per listener
CLIENT_FIRST = {
    ("CLOSE", "SYN_SENT"): N, ("SYN_SENT", "ESTABLISHED"): N,      # client
    ("LISTEN", "SYN_RECV"): N, ("SYN_RECV", "ESTABLISHED"): N,     # server child
    ("ESTABLISHED", "FIN_WAIT1"): N, ("FIN_WAIT1", "FIN_WAIT2"): N,
    ("FIN_WAIT2", "TIME_WAIT"): N,                                 # the closer (derived)
    ("ESTABLISHED", "CLOSE_WAIT"): N, ("CLOSE_WAIT", "LAST_ACK"): N,
    ("LAST_ACK", "CLOSE"): N,                                      # the other side
    ("CLOSE", "LISTEN"): 1, ("LISTEN", "CLOSE"): 1,                # the listener
}
EXPECTED = {
    "client-first": CLIENT_FIRST,
    "server-first": CLIENT_FIRST,  # the same transitions, the roles swapped
    "ipv6": CLIENT_FIRST,
    "reset": {
        ("CLOSE", "SYN_SENT"): N, ("SYN_SENT", "ESTABLISHED"): N,
        ("LISTEN", "SYN_RECV"): N, ("SYN_RECV", "ESTABLISHED"): N,
        ("ESTABLISHED", "CLOSE"): 2 * N,  # the aborting client and the reset server
        ("CLOSE", "LISTEN"): 1, ("LISTEN", "CLOSE"): 1,
    },
    "refused": {("CLOSE", "SYN_SENT"): N, ("SYN_SENT", "CLOSE"): N},
}


# ---- the workload (runs in the namespace: `transitions.py --workload`) ----------

def conn_pair(ls, fam, addr, port):
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.connect((addr, port))
    s, _ = ls.accept()
    return c, s


def workload():
    for kind, port in PORTS.items():
        fam, addr = (socket.AF_INET6, "::1") if kind == "ipv6" else (socket.AF_INET,
                                                                     "127.0.0.1")
        if kind == "refused":
            for _ in range(N):
                c = socket.socket(fam, socket.SOCK_STREAM)
                try:
                    c.connect((addr, port))
                    raise SystemExit("connect to %d was not refused" % port)
                except ConnectionRefusedError:
                    pass
                c.close()
            continue
        ls = socket.socket(fam, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((addr, port))
        ls.listen(64)
        for _ in range(N):
            c, s = conn_pair(ls, fam, addr, port)
            if kind in ("client-first", "ipv6"):
                c.close()
                if s.recv(1) != b"":
                    raise SystemExit("no EOF")
                s.close()
            elif kind == "server-first":
                s.close()
                if c.recv(1) != b"":
                    raise SystemExit("no EOF")
                c.close()
            else:  # reset
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
                try:
                    s.recv(1)
                except ConnectionResetError:
                    pass
                s.close()
        time.sleep(0.2)  # the last connection's final ACKs
        ls.close()
    print("done", flush=True)


# ---- the test -------------------------------------------------------------------

def kind_of(info):
    by_port = {p: k for k, p in PORTS.items()}
    for f in ("lport", "rport"):
        if info.get(f) in by_port:
            return by_port[info[f]]
    return None


def count_record(path):
    socks = {}
    counts = collections.Counter()
    with open(path) as f:
        for line in f:
            ev = json.loads(line)
            info = socks.setdefault(ev["sk"], {})
            info.update({k: v for k, v in ev.items() if k in ("lport", "rport", "family")})
            counts[(kind_of(info), ev.get("from"), ev["to"])] += 1
    return counts


def start_tcpstates(env):
    tool = shutil.which("tcpstates") or ("/usr/sbin/tcpstates"
                                         if os.path.exists("/usr/sbin/tcpstates") else None)
    if not tool:
        log("libbpf-tools tcpstates is not installed: no comparison")
        return None
    ports = ",".join(str(p) for p in PORTS.values())
    out = open(os.path.join(env.tmp, "tcpstates.txt"), "w")
    # -L and -D select separately; one instance each, the union is the workload
    ps = [subprocess.Popen([tool, "-w", opt, ports], stdout=out, stderr=subprocess.STDOUT)
          for opt in ("-L", "-D")]

    def stop():
        for p in ps:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        out.close()
    env.cleanups.append(stop)
    time.sleep(2.0)  # loaded and attached
    return stop


def tcpstates_count(env):
    # SKADDR PID COMM IP LADDR LPORT RADDR RPORT OLDSTATE -> NEWSTATE MS; a server
    # socket's lines come from the -L instance, a client's from the -D one
    with open(os.path.join(env.tmp, "tcpstates.txt")) as f:
        return sum(1 for line in f if len(line.split()) >= 11 and line.split()[9] == "->")


def test(env, tsguard):
    ns = env.make_netns("net.ipv4.tcp_tw_reuse=0")
    rules = env.rules_dir({})
    rec = os.path.join(env.tmp, "record.jsonl")
    t = env.tsguard(tsguard, ["-r", rules, "--record", rec], tag="live")
    stop_tcpstates = start_tcpstates(env)
    w = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                        "--workload"], capture_output=True, text=True, timeout=240)
    check(w.returncode == 0 and "done" in w.stdout,
          "workload failed (%d): %s" % (w.returncode, w.stderr))
    time.sleep(1.0)  # tsguard reads at least every 10 ms; margin for a loaded machine
    check(t.stop() == 0, "tsguard did not exit 0")
    lost = t.stop_stats()["lost"]
    check(lost == 0, "tsguard lost %d events in the ring buffer" % lost)
    counts = count_record(rec)

    # The reconcile scan (once a second, with --record) may find a connection
    # in the middle of its handshake, as `ss` would: a request socket, reported
    # CLOSE -> NEW_SYN_RECV, then NEW_SYN_RECV -> CLOSE when the next pass finds
    # it gone (docs/kernel.md). Those are real observations beside the
    # workload's own transitions: allowed as pairs, rare, and not counted.
    for kind in EXPECTED:
        enter = counts.pop((kind, "CLOSE", "NEW_SYN_RECV"), 0)
        leave = counts.pop((kind, "NEW_SYN_RECV", "CLOSE"), 0)
        if enter or leave:
            log("  %s: %d half-open connection(s) found by the scan mid-handshake" %
                (kind, enter))
            env.soft(enter == leave and enter <= N // 20,
                     "%s: CLOSE -> NEW_SYN_RECV %d times, NEW_SYN_RECV -> CLOSE %d times "
                     "(want equal pairs, at most %d)" % (kind, enter, leave, N // 20))
    total = sum(v for (k, _, _), v in counts.items() if k)
    log("tsguard recorded %d transitions of the workload" % total)
    for (kind, frm, to), v in sorted(counts.items(), key=str):
        if kind:
            log("  %-12s %s -> %s: %d" % (kind, frm, to, v))
    for kind, exp in EXPECTED.items():
        for (frm, to), n in sorted(exp.items()):
            got = counts.get((kind, frm, to), 0)
            env.soft(got == n, "%s: %s -> %s %d times, expected %d" % (kind, frm, to, got, n))
        for (k, frm, to), got in sorted(counts.items(), key=str):
            if k == kind and (frm, to) not in exp:
                env.soft(False, "%s: unexpected %s -> %s, %d times" % (kind, frm, to, got))
    want = sum(sum(e.values()) for e in EXPECTED.values())
    env.soft(total == want, "%d transitions recorded, the workload makes %d" % (total, want))
    if stop_tcpstates:
        stop_tcpstates()
        # tcpstates does not know TIME_WAIT: it prints FIN_WAIT2 -> CLOSE instead
        n = tcpstates_count(env)
        log("libbpf-tools tcpstates saw %d of %d transitions (%d missed; informational)"
            % (n, want, want - n))


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--workload":
        workload()
    else:
        run(test)

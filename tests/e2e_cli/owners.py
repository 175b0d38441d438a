#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The owner of an accepted socket is the process that accepted it.

A server whose parent process listens and whose forked worker accepts (nginx,
Apache prefork, gunicorn): the worker leaks the connections it accepted in
CLOSE_WAIT (the client closes, the worker never does). A time-in-state rule
(CLOSE_WAIT longer than 300 ms) must fire for each with the worker's comm and
pid, as `ss -tpn state close-wait` shows the holder. Cases:
  fork     the parent listens after tsguard started, the worker accepts
  before   the parent listens before tsguard starts, the worker accepts after
  late     the client closes before the worker accepts (the socket is already
           in CLOSE_WAIT, known to tsguard with the listener's owner)
  single   one process listens and accepts: its own comm and pid
  classic  as fork, with the classic tracepoint fallback (TSG_CAPTURE_FORCE_CLASSIC)
"""
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsgtest import Fail, check, log, run, stop_child  # noqa: E402

N = 4


def set_comm(name):
    with open("/proc/self/comm", "w") as f:
        f.write(name)


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve(mode):
    """The server, driven by lines on stdin: listen, accept N, exit."""
    set_comm("tsg-single" if mode == "single" else "tsg-parent")
    ls = None
    held = []
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "listen":
            ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            ls.bind(("127.0.0.1", 0))
            ls.listen(64)
            out({"port": ls.getsockname()[1], "pid": os.getpid()})
        elif cmd[0] == "accept":
            n = int(cmd[1])
            if mode == "single":
                held += [ls.accept()[0] for _ in range(n)]
                out({"pid": os.getpid(), "n": len(held)})
                continue
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                set_comm("tsg-worker")
                conns = [ls.accept()[0] for _ in range(n)]
                os.write(w, json.dumps({"pid": os.getpid(), "n": len(conns)}).encode())
                os.close(w)
                time.sleep(3600)  # holds the sockets: CLOSE_WAIT leaks
                os._exit(0)
            os.close(w)
            with os.fdopen(r) as f:
                out(json.loads(f.read()))
            held.append(pid)
        elif cmd[0] == "exit":
            break
    for p in held:
        if isinstance(p, int):
            os.kill(p, 9)
            os.waitpid(p, 0)


class Server:
    def __init__(self, env, mode):
        self.p = subprocess.Popen(["ip", "netns", "exec", env.netns, sys.executable,
                                   os.path.abspath(__file__), "--serve", mode],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        env.cleanups.append(self.stop)

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        ans = self.p.stdout.readline()
        if not ans:
            raise Fail("server exited (rc %s) during %s" % (self.p.poll(), line))
        return json.loads(ans)

    def stop(self):
        stop_child(self.p, "exit\n", 10, close=True)


def client(ns, port, n, close_first):
    """Connects n times; closes when told (or at once: close_first)."""
    code = ("import socket,sys\n"
            "c=[socket.create_connection(('127.0.0.1',%d)) for _ in range(%d)]\n"
            "print('up',flush=True)\n"
            "%s"
            "[s.close() for s in c]\n"
            "print('closed',flush=True)\n") % (port, n, "" if close_first else "sys.stdin.readline()\n")
    p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    check(p.stdout.readline().strip() == "up", "client did not connect")
    return p


def client_close(p):
    p.stdin.write("go\n")
    p.stdin.flush()
    check(p.stdout.readline().strip() == "closed", "client did not close")
    p.wait(10)


def ss_close_wait(ns, port):
    """(comm, pid) of each CLOSE_WAIT socket on port, as ss -tpn shows its holder."""
    r = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htpn", "state", "close-wait",
                        "sport", "= :%d" % port], capture_output=True, text=True, check=True)
    res = []
    for ln in r.stdout.splitlines():
        m = re.search(r'users:\(\("([^"]+)",pid=(\d+)', ln)
        res.append((m.group(1), int(m.group(2))) if m else (None, None))
    return res


RULES = """
rules:
  - name: cw-leak
    when: {state: CLOSE_WAIT, longer_than: 300ms}
"""


def start_tsguard(env, tsguard, mode, rules):
    if mode == "classic":
        os.environ["TSG_CAPTURE_FORCE_CLASSIC"] = "1"
    try:
        t = env.tsguard(tsguard, ["-r", rules, "-o", "json"], tag="tsguard-" + mode)
    finally:
        os.environ.pop("TSG_CAPTURE_FORCE_CLASSIC", None)
    if mode == "classic":
        check("attached (classic tracepoint" in t.stderr(),
              "classic: not the fallback: " + t.stderr())
    return t


def one_case(env, tsguard, mode, rules):
    before = mode == "before"
    srv = Server(env, "single" if mode == "single" else "fork")
    t = None
    if not before:
        t = start_tsguard(env, tsguard, mode, rules)
    ls = srv.cmd("listen")
    port = ls["port"]
    if before:
        t = start_tsguard(env, tsguard, mode, rules)
    if mode == "late":
        c = client(env.netns, port, N, close_first=True)
        c.wait(10)
        time.sleep(0.1)  # in CLOSE_WAIT (accept queue) before the worker accepts
        acc = srv.cmd("accept %d" % N)
    else:
        c = client(env.netns, port, N, close_first=False)
        acc = srv.cmd("accept %d" % N)
        client_close(c)
    want = ("tsg-single" if mode == "single" else "tsg-worker", acc["pid"])
    check(acc["n"] == N, "%s: accepted %d of %d" % (mode, acc["n"], N))
    holders = ss_close_wait(env.netns, port)
    log("%s: ss holders %s" % (mode, holders))
    check(holders == [want] * N, "%s: ss shows %s, expected %d x %s" % (mode, holders, N, want))
    fired = t.wait_alerts(lambda a: a.get("lport") == port, rule="cw-leak", status="firing",
                          n=N, timeout=10)
    got = [(a.get("comm"), a.get("pid")) for a in fired]
    log("%s: alerts %s" % (mode, got))
    env.soft(got == [want] * N, "%s: alerts name %s, ss names %s (listener pid %d)" %
             (mode, got, want, ls["pid"]))
    srv.stop()
    t.stop()


def test(env, tsguard):
    env.make_netns()
    rules = env.rules_dir({"owners.yaml": RULES})
    for mode in ("fork", "before", "late", "single", "classic"):
        one_case(env, tsguard, mode, rules)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        run(test)

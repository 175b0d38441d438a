#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Traffic agent for the tsguard end-to-end CLI tests.

Run as `python3 agent.py NAME`: the process renames itself NAME (its comm,
what tsguard attributes sockets to) with prctl(PR_SET_NAME) before it opens
any socket, then reads one JSON command per line on standard input and
answers one JSON object per line on standard output:

  {"op": "hello"}                                   -> {"pid": P, "comm": NAME}
  {"op": "listen", "backlog": B}                    -> {"id": I, "port": P}
  {"op": "closed_port"}                             -> {"port": P} (bound, then closed)
  {"op": "serve", "id": L, "mode": M}               -> {} and a thread accepts on L:
        mode "close": read to EOF, then close (the peer closes first)
        mode "hold": keep every accepted socket open (CLOSE_WAIT when the peer closes)
        mode "first": close at once, without reading (this side closes first)
  {"op": "served", "id": L}                         -> {"n": accepted so far, "ids": [...]}
  {"op": "connect", "port": P, "block": true}       -> {"id": I, "result": "ok|refused|inprogress|ERR",
                                                        "lport": the local port (getsockname)}
        optional "lport": bind this local port first (the same 4-tuple in two namespaces)
  {"op": "refuse", "port": P, "n": N}               -> {"refused": K} (N blocking connects)
  {"op": "churn", "port": P, "n": N}                -> {"done": K} (connect, close; with "close" mode server)
  {"op": "connect_many", "port": P, "n": N}         -> {"ids": [...]} (N blocking connects, held open)
  {"op": "state", "id": I}                          -> {"state": TCP state number (tcpi_state)}
  {"op": "read_eof", "id": I, "timeout": S}         -> {"eof": bool} (waits for the peer's FIN)
  {"op": "close", "ids": [...], "rst": false}       -> {} (rst: SO_LINGER 0, an abort)
  {"op": "io", "id": I, "dir": "send|recv"}         -> {"errno": 0 or the call's errno, "n": bytes}
        (recv waits up to "timeout" s, default 2, for the socket to be readable)
  {"op": "shutdown", "id": I}                      -> {} (shutdown(SHUT_WR): our FIN, the fd stays)
  {"op": "accept_all", "id": L}                     -> {"n": K} (accepts what waits, non-blocking)
  {"op": "exit"}                                    -> exits
"""
import ctypes
import errno
import json
import select
import socket
import struct
import sys
import threading
import time

PR_SET_NAME = 15
TCP_INFO = 11


def set_comm(name):
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(name.encode()[:15])
    if libc.prctl(PR_SET_NAME, buf, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")
    with open("/proc/self/comm") as f:
        if f.read().strip() != name[:15]:
            raise RuntimeError("comm not set")


class Agent:
    def __init__(self, name):
        self.name = name
        self.socks = {}
        self.next_id = 1
        self.lock = threading.Lock()
        self.served = {}

    def add(self, s):
        with self.lock:
            i = self.next_id
            self.next_id += 1
            self.socks[i] = s
            return i

    def serve_loop(self, lid, mode):
        ls = self.socks[lid]
        ls.settimeout(0.2)
        while True:
            try:
                c, _ = ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            i = self.add(c)
            with self.lock:
                self.served.setdefault(lid, []).append(i)
            if mode == "close":
                threading.Thread(target=self.close_on_eof, args=(i, c), daemon=True).start()
            elif mode == "first":
                c.close()

    @staticmethod
    def close_on_eof(i, c):
        try:
            c.settimeout(30)
            while c.recv(4096):
                pass
        except OSError:
            pass
        c.close()

    def connect(self, port, block=True, lport=0, reuse=False):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if reuse:  # bind a port a TIME_WAIT socket of ours holds
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if lport:
            s.bind(("127.0.0.1", lport))
        if not block:
            s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
            res = "ok"
        except BlockingIOError:
            res = "inprogress"
        except ConnectionRefusedError:
            res = "refused"
        except OSError as e:
            res = errno.errorcode.get(e.errno, str(e))
        if res == "refused":
            s.close()
            return None, res
        return self.add(s), res

    @staticmethod
    def io(s, direction, timeout):
        try:
            if direction == "send":
                return {"errno": 0, "n": s.send(b"x")}
            select.select([s], [], [], timeout)
            return {"errno": 0, "n": len(s.recv(4096))}
        except OSError as e:
            return {"errno": e.errno, "n": -1}

    def do(self, cmd):
        op = cmd["op"]
        if op == "hello":
            import os
            return {"pid": os.getpid(), "comm": self.name}
        if op == "listen":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", cmd.get("port", 0)))
            s.listen(cmd.get("backlog", 128))
            return {"id": self.add(s), "port": s.getsockname()[1]}
        if op == "closed_port":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
            s.close()
            return {"port": p}
        if op == "serve":
            t = threading.Thread(target=self.serve_loop, args=(cmd["id"], cmd["mode"]),
                                 daemon=True)
            t.start()
            return {}
        if op == "served":
            with self.lock:
                ids = list(self.served.get(cmd["id"], []))
            return {"n": len(ids), "ids": ids}
        if op == "connect":
            i, res = self.connect(cmd["port"], cmd.get("block", True), cmd.get("lport", 0),
                                  cmd.get("reuse", False))
            lport = self.socks[i].getsockname()[1] if i is not None else None
            return {"id": i, "result": res, "lport": lport}
        if op == "refuse":
            k = 0
            for _ in range(cmd["n"]):
                _, res = self.connect(cmd["port"])
                k += res == "refused"
                if cmd.get("gap"):
                    time.sleep(cmd["gap"])
            return {"refused": k}
        if op == "churn":
            k = 0
            for _ in range(cmd["n"]):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.connect(("127.0.0.1", cmd["port"]))
                    k += 1
                except OSError:
                    pass
                s.close()
            return {"done": k}
        if op == "connect_many":
            ids = []
            for _ in range(cmd["n"]):
                i, res = self.connect(cmd["port"])
                if res != "ok":
                    raise OSError("connect: " + res)
                ids.append(i)
            return {"ids": ids}
        if op == "state":
            s = self.socks[cmd["id"]]
            info = s.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 8)
            return {"state": info[0]}
        if op == "read_eof":
            s = self.socks[cmd["id"]]
            r, _, _ = select.select([s], [], [], cmd.get("timeout", 5))
            if not r:
                return {"eof": False}
            try:
                return {"eof": s.recv(4096) == b""}
            except OSError:
                return {"eof": True}
        if op == "close":
            for i in cmd["ids"]:
                with self.lock:
                    s = self.socks.pop(i, None)
                if s is None:
                    continue
                if cmd.get("rst"):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            return {}
        if op == "io":
            return self.io(self.socks[cmd["id"]], cmd["dir"], cmd.get("timeout", 2))
        if op == "shutdown":
            self.socks[cmd["id"]].shutdown(socket.SHUT_WR)
            return {}
        if op == "accept_all":
            s = self.socks[cmd["id"]]
            s.setblocking(False)
            k = 0
            while True:
                try:
                    c, _ = s.accept()
                except BlockingIOError:
                    break
                self.add(c)
                k += 1
            s.setblocking(True)
            return {"n": k}
        if op == "exit":
            sys.exit(0)
        raise ValueError("unknown op %r" % op)


def main():
    name = sys.argv[1]
    set_comm(name)
    a = Agent(name)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            out = a.do(json.loads(line))
        except SystemExit:
            raise
        except Exception as e:  # report, keep serving
            out = {"error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

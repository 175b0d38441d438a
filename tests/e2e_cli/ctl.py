#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tsguard ctl against a running tsguard (docs/ctl.md).

tsguard runs in --replay mode reading a pipe that the test writes, so it keeps
running (and needs no privileges) while the test asks it questions:
  - no daemon: exit 1; the socket is mode 0600, owned by the user running it
  - status (text, and -o json that parses), alerts (a firing alert with its key)
  - reload accepted (`reloaded: N rules`); rejected (exit 2, FILE:LINE:COL,
    the old rules still fire afterwards), also with -o json
  - a silent client blocks neither events nor a second client; it is closed
    after the timeout and counted; an over-long request gets an error;
    clients beyond the limit get an error
  - a stale socket file of a SIGKILLed run does not stop a new start; a second
    tsguard on a socket that answers exits 1
"""
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsgtest import check, log, run, wait_until  # noqa: E402

RULES = """
rules:
  - name: ct-slow
    match: {rport: 443}
    when: {state: SYN_SENT, longer_than: 500ms}
  - name: ct-cw
    when: {state: CLOSE_WAIT, count_above: 1, by: comm}
"""


class Daemon:
    """tsguard --replay - on a pipe: alive until the pipe closes."""

    def __init__(self, env, tsguard, rules, sock, tag):
        self.err_path = os.path.join(env.tmp, tag + ".err")
        self.out_path = os.path.join(env.tmp, tag + ".out")
        self.out = open(self.out_path, "w")
        self.err = open(self.err_path, "w")
        self.p = subprocess.Popen([tsguard, "--replay", "-", "-r", rules, "-o", "json",
                                   "--control", sock],
                                  stdin=subprocess.PIPE, stdout=self.out, stderr=self.err,
                                  cwd=env.tmp)
        self.ts = 0.0
        env.cleanups.append(self.kill)

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def alerts(self):
        with open(self.out_path) as f:
            return [json.loads(ln) for ln in f if ln.startswith("{") and ln.endswith("}\n")]

    def wait_listening(self):
        ok = wait_until(lambda: "control: listening" in self.stderr() or
                        self.p.poll() is not None, 15)
        check(ok and self.p.poll() is None,
              "tsguard is not listening (rc %s): %s" % (self.p.poll(), self.stderr()))

    def feed(self, **ev):
        self.p.stdin.write((json.dumps(ev) + "\n").encode())
        self.p.stdin.flush()

    def stop(self):
        self.p.stdin.close()
        rc = self.p.wait(30)
        self.out.close()
        self.err.close()
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        for f in (self.p.stdin, self.out, self.err):
            try:
                f.close()
            except OSError:
                pass


def ctl(tsguard, sock, *args):
    r = subprocess.run([tsguard, "ctl", "--control", sock] + list(args),
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def raw(sock, data):
    """Sends data on a connection of its own; returns the whole reply."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock)
    if data:  # a refused client may be closed already: sending nothing is no write
        s.sendall(data)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    return out.decode()


def syn(d, sk, ts, rport=443):
    d.feed(ts=ts, sk=sk, family="ipv4", laddr="10.0.0.2", lport=40000 + len(sk),
           raddr="10.0.0.9", rport=rport, comm="curl", **{"from": "CLOSE", "to": "SYN_SENT"})


def tick(d, ts):
    """An event on an unrelated socket: runs the virtual clock on to ts."""
    d.feed(ts=ts, sk="clk%s" % ts, comm="clock", **{"from": "CLOSE", "to": "LISTEN"})


def test_no_daemon(env, tsguard):
    rc, out, err = ctl(tsguard, os.path.join(env.tmp, "nobody"), "status")
    check(rc == 1, "ctl with no daemon: exit %d, expected 1 (%s)" % (rc, err))
    check("no tsguard answers" in err, "ctl with no daemon says: " + err)
    rc, _, err = ctl(tsguard, os.path.join(env.tmp, "nobody"), "frobnicate")
    check(rc == 2, "ctl with an unknown command: exit %d, expected 2" % rc)


def test_status_alerts(env, tsguard, d, sock):
    st = os.stat(sock)
    check(stat.S_ISSOCK(st.st_mode), "%s is not a socket" % sock)
    check(stat.S_IMODE(st.st_mode) == 0o600, "socket mode %o, expected 600" %
          stat.S_IMODE(st.st_mode))
    check(st.st_uid == os.geteuid(), "socket owned by %d, not by %d" % (st.st_uid, os.geteuid()))

    syn(d, "s1", 0.0)
    d.feed(ts=1.0, sk="w1", comm="app", **{"from": "ESTABLISHED", "to": "CLOSE_WAIT"})
    d.feed(ts=1.0, sk="w2", comm="app", **{"from": "ESTABLISHED", "to": "CLOSE_WAIT"})
    tick(d, 2.0)
    check(wait_until(lambda: len(d.alerts()) >= 2, 10), "no alerts: " + d.stderr())

    rc, out, err = ctl(tsguard, sock, "status")
    log("status:\n" + out)
    check(rc == 0, "status: exit %d: %s" % (rc, err))
    for want in (r"^version:\s+tsguard \d", r"^rules:\s+2$", r"^events:\s+seen 4, filtered 0, "
                 r"sent 4, lost 0$", r"^namespaces:\s+1 \(host\)$", r"^uptime:", r"^sockets:\s+4 "
                 r"tracked", r"^rule files:\s+1$", r"^action queues:$", r"^\s+syslog\s+syslog\s+0"):
        check(re.search(want, out, re.M), "status: no line like %r" % want)
    rc, out, err = ctl(tsguard, sock, "-o", "json", "status")
    check(rc == 0, "status -o json: exit %d: %s" % (rc, err))
    j = json.loads(out)
    check(j["rules"] == 2 and j["events"]["seen"] == 4 and j["events"]["lost"] == 0,
          "status json: %s" % j)
    check(j["namespaces"] == {"watched": 1, "names": ["host"]}, "namespaces: %s" % j)
    check(j["sockets"]["by_state"].get("CLOSE_WAIT") == 2, "by_state: %s" % j["sockets"])
    check(j["action_queues"][0]["name"] == "syslog", "action queues: %s" % j["action_queues"])
    check(len(j["rule_files"]) == 1 and j["rule_files"][0].endswith("10-ct.yaml"),
          "rule files: %s" % j["rule_files"])

    rc, out, err = ctl(tsguard, sock, "alerts")
    log("alerts:\n" + out)
    check(rc == 0, "alerts: exit %d: %s" % (rc, err))
    check(re.search(r"^RULE\s+STATUS\s+KEY\s+SINCE\s+COUNT\s+SUPPRESSED$", out, re.M),
          "alerts: no header line")
    check(re.search(r"^ct-slow\s+firing\s+10\.0\.0\.2:40002-10\.0\.0\.9:443\s+ts 0\.500", out,
                    re.M), "alerts: no ct-slow line with its key and since")
    check(re.search(r"^ct-cw\s+firing\s+comm=app\s+ts 1\.000 .*\s2\s+0$", out, re.M),
          "alerts: no ct-cw line with its key, since and count")
    rc, out, err = ctl(tsguard, sock, "-o", "json", "alerts")
    check(rc == 0, "alerts -o json: exit %d" % rc)
    j = json.loads(out)
    by = {a["rule"]: a for a in j["alerts"]}
    check(j["total"] == 2 and not j["truncated"], "alerts json: %s" % j)
    check(by["ct-slow"]["key"] == {"sock": "10.0.0.2:40002-10.0.0.9:443"} and
          by["ct-slow"]["status"] == "firing" and by["ct-slow"]["since"] == 0.5,
          "ct-slow: %s" % by["ct-slow"])
    check(by["ct-cw"]["key"] == {"comm": "app"} and by["ct-cw"]["count"] == 2,
          "ct-cw: %s" % by["ct-cw"])


def test_clients(env, tsguard, d, sock):
    # a client that says nothing: the next one is answered while it waits
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(sock)
    rc, out, _ = ctl(tsguard, sock, "status")
    check(rc == 0 and "rules:" in out, "status with a silent client connected: exit %d" % rc)
    silent.setblocking(False)
    try:
        gone = silent.recv(1) == b""
    except BlockingIOError:
        gone = False
    check(not gone, "the silent client was closed before the second client was served")
    # events go on meanwhile
    syn(d, "s9", 3.0, rport=80)
    check(wait_until(lambda: "seen 5," in ctl(tsguard, sock, "status")[1], 10),
          "events are not read while a client is silent")
    # ... and it is closed after the timeout, counted
    silent.setblocking(True)
    silent.settimeout(15)
    check(silent.recv(1) == b"", "the silent client is not closed")
    silent.close()
    rc, out, _ = ctl(tsguard, sock, "-o", "json", "status")
    check(json.loads(out)["control"]["timed_out"] >= 1, "the timeout is not counted: " + out)

    # an over-long request line: an error, and the connection closed
    reply = raw(sock, b"s" * 300)
    check(reply.startswith("error\n") and "longer than 256" in reply,
          "a 300-byte request: %r" % reply[:200])
    reply = raw(sock, b"status " + b"x" * 290 + b"\n")
    check(reply.startswith("error\n"), "a 300-byte request line: %r" % reply[:200])
    check(raw(sock, b"status\n").startswith("ok\n"), "a plain request after the long ones")
    check(raw(sock, b"bogus\n").startswith("error\n"), "an unknown command is not an error")

    # more clients at once than the limit (16): the others are refused
    many = []
    for _ in range(16):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock)
        many.append(s)
    reply = raw(sock, b"")  # it is answered at once, before it says anything
    for s in many:
        s.close()
    check(reply.startswith("error\n") and "too many" in reply,
          "a 17th client at once: %r" % reply[:200])


def test_reload(env, tsguard, d, sock, rules):
    env.write_rule(rules, "20-more.yaml", """
rules:
  - name: ct-refused
    when: {from: SYN_SENT, to: CLOSE}
""")
    rc, out, err = ctl(tsguard, sock, "reload")
    check(rc == 0 and out.strip() == "reloaded: 3 rules",
          "reload: exit %d, %r %r" % (rc, out, err))

    bad = env.write_rule(rules, "30-bad.yaml", """
rules:
  - name: ct-new
    when: {from: SYN_SENT, to: CLOSE}
  - name: ct-broken
    when: {state: SYN_SNET, longer_than: 1s}
""")
    rc, out, err = ctl(tsguard, sock, "reload")
    log("rejected reload:\n" + err)
    check(rc == 2, "a rejected reload: exit %d, expected 2" % rc)
    m = re.search(r"^(\S*30-bad\.yaml):(\d+):(\d+): error: (.*)$", err, re.M)
    check(m and m.group(1) == bad and m.group(2) == "6" and "SYN_SNET" in m.group(4),
          "a rejected reload does not name %s:6:COL: %r" % (bad, err))
    rc, out, err = ctl(tsguard, sock, "-o", "json", "reload")
    check(rc == 2, "a rejected reload -o json: exit %d" % rc)
    j = json.loads(out)
    check(j["reloaded"] is False and any("30-bad.yaml:6:" in e for e in j["errors"]),
          "rejected reload json: %s" % j)
    check(d.p.poll() is None, "tsguard exited after a rejected reload")

    # the old rules (3 of them) still run: ct-slow fires on a new socket
    rc, out, _ = ctl(tsguard, sock, "-o", "json", "status")
    check(json.loads(out)["rules"] == 3, "rules after a rejected reload: " + out)
    syn(d, "s20", 10.0)
    tick(d, 11.0)
    check(wait_until(lambda: [a for a in d.alerts() if a["rule"] == "ct-slow" and
                              a["key"]["sock"].endswith(":443") and a["ts"] == 10.5], 10),
          "ct-slow does not fire after a rejected reload: %s" % d.alerts())
    os.unlink(bad)


def test_stale_and_busy(env, tsguard, rules):
    sock = os.path.join(env.tmp, "b.sock")
    a = Daemon(env, tsguard, rules, sock, "killed")
    a.wait_listening()
    a.p.send_signal(signal.SIGKILL)
    a.p.wait()
    check(os.path.exists(sock), "no socket file left by the killed run")
    b = Daemon(env, tsguard, rules, sock, "after-kill")
    b.wait_listening()
    rc, out, err = ctl(tsguard, sock, "status")
    check(rc == 0, "status after a stale socket: exit %d: %s" % (rc, err))
    check("stale" in b.stderr(), "the stale socket is not mentioned: " + b.stderr())

    c = Daemon(env, tsguard, rules, sock, "second")
    rc = c.p.wait(15)
    check(rc == 1 and "another tsguard answers" in c.stderr(),
          "a second tsguard on an answering socket: rc %s: %s" % (rc, c.stderr()))
    rc, out, err = ctl(tsguard, sock, "status")
    check(rc == 0, "the first one no longer answers after the second failed: " + err)
    check(b.stop() == 0, "tsguard did not stop cleanly at the end of its input")
    check(not os.path.exists(sock), "the socket file is left after a clean stop")


def test(env, tsguard):
    test_no_daemon(env, tsguard)
    rules = env.rules_dir({"10-ct.yaml": RULES})
    sock = os.path.join(env.tmp, "control")
    d = Daemon(env, tsguard, rules, sock, "main")
    d.wait_listening()
    test_status_alerts(env, tsguard, d, sock)
    test_clients(env, tsguard, d, sock)
    test_reload(env, tsguard, d, sock, rules)
    check(d.stop() == 0, "tsguard exit status at the end of its input: %s" % d.stderr())
    test_stale_and_busy(env, tsguard, rules)


if __name__ == "__main__":
    run(test, root=False)

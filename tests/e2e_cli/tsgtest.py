# SPDX-License-Identifier: MIT
"""Shared helpers of the tsguard end-to-end CLI tests (standard library only).

A test script calls run(test_fn): test_fn(env, tsguard_path) runs with an Env
that owns everything the test starts (tsguard processes, agents, a network
namespace, a temporary directory) and cleans it all up whatever happens.
Exit status: 0 pass, 1 fail (with a message), 77 skip (not root, no BPF).
"""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT = os.path.join(HERE, "agent.py")

# tcpi_state numbers (include/net/tcp_states.h)
TCP_ESTABLISHED, TCP_SYN_SENT, TCP_CLOSE_WAIT = 1, 2, 8


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def log(msg):
    sys.stderr.write("# %s\n" % msg)
    sys.stderr.flush()


def metrics_text(port, netns=None):
    """The /metrics page of a tsguard serving it on 127.0.0.1:PORT, from inside
    network namespace `netns` when given ("" if it cannot be read there)."""
    if netns is None:
        return urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                      timeout=5).read().decode()
    code = ("import urllib.request;"
            "print(urllib.request.urlopen('http://127.0.0.1:%d/metrics', timeout=5)"
            ".read().decode())" % port)
    return subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", code],
                          capture_output=True, text=True).stdout


def wait_until(pred, timeout, step=0.05):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            return v
        time.sleep(step)


def rules_yaml(*rules):
    """A rules file of (name, comm, when) rules: rule `name` matches the sockets
    of process `comm` and fires on `when` (the inside of its {...})."""
    return "\nrules:\n" + "".join(
        f"  - name: {name}\n    match: {{comm: {comm}}}\n    when: {{{when}}}\n"
        for name, comm, when in rules)


def drop_final_acks(env, ns, port):
    """An nftables table in namespace ns that drops the client's final ACK of
    handshakes to `port`: the server's side stays half-open (request sockets,
    NEW_SYN_RECV; ss says SYN-RECV). Removed at cleanup; returns a function
    that removes it earlier (the handshakes then complete)."""
    nft = ["ip", "netns", "exec", ns, "nft"]
    subprocess.run(nft + ["add", "table", "inet", "tsgt"], check=True)
    env.cleanups.append(lambda: subprocess.run(nft + ["delete", "table", "inet", "tsgt"],
                                               capture_output=True))
    subprocess.run(nft + ["add", "chain", "inet", "tsgt", "out",
                          "{ type filter hook output priority 0; }"], check=True)
    subprocess.run(nft + ["add", "rule", "inet", "tsgt", "out", "tcp", "dport", str(port),
                          "tcp flags & (syn|ack) == ack", "drop"], check=True)
    return lambda: subprocess.run(nft + ["delete", "table", "inet", "tsgt"], check=True)


def netns_sysctl(ns, setting):
    """sysctl -w `setting` ("name=value") inside network namespace ns."""
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", setting], check=True)


def stop_child(p, exit_line, timeout, close=False):
    """Asks child p to leave (exit_line on its standard input, which `close`
    closes, else flushes), and kills it if it has not left within timeout s."""
    if p.poll() is not None:
        return
    try:
        p.stdin.write(exit_line)
        if close:
            p.stdin.close()
        else:
            p.stdin.flush()
    except OSError:
        pass
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


class Agent:
    """A traffic process with its own comm, driven line by line (agent.py)."""

    def __init__(self, env, name, netns=None):
        self.name = name
        cmd = [sys.executable, AGENT, name]
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        self.err = open(os.path.join(env.tmp, "agent-%s.err" % name), "w")
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err)
        self.buf = b""
        hello = self.cmd("hello")
        self.pid = hello["pid"]
        check(hello["comm"] == name, "agent %s did not take its name" % name)

    def cmd(self, op, timeout=60, **kw):
        kw["op"] = op
        self.p.stdin.write((json.dumps(kw) + "\n").encode())
        self.p.stdin.flush()
        end = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise Fail("agent %s: no answer to %s within %ss" % (self.name, op, timeout))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise Fail("agent %s exited (rc %s) during %s" %
                               (self.name, self.p.poll(), op))
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        out = json.loads(line)
        if "error" in out:
            raise Fail("agent %s: %s failed: %s" % (self.name, op, out["error"]))
        return out

    def stop(self):
        stop_child(self.p, b'{"op": "exit"}\n', 5)
        for f in (self.p.stdin, self.p.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.err.close()


class Tsguard:
    """One tsguard process; stdout (alerts) and stderr (log) go to files."""

    def __init__(self, env, binary, args, tag="tsguard", wait_ready=True, prefix=None,
                 netns=True):
        self.out_path = os.path.join(env.tmp, tag + ".out")
        self.err_path = os.path.join(env.tmp, tag + ".err")
        # a control socket of the test's own: never the system's /run/tsguard
        if args and args[0] not in ("test", "ctl") and "--check" not in args \
                and "--control" not in args:
            args = args + ["--control", os.path.join(env.tmp, tag + ".control")]
        self.args = (prefix or []) + [binary] + args
        # tsguard watches the network namespace it runs in (docs/kernel.md): run it
        # in the test's namespace, beside the traffic
        if netns and env.netns:
            self.args = ["ip", "netns", "exec", env.netns] + self.args
        self.out = open(self.out_path, "w")
        self.err = open(self.err_path, "w")
        self.p = subprocess.Popen(self.args, stdout=self.out, stderr=self.err,
                                  stdin=subprocess.DEVNULL, cwd=env.tmp)
        self.rc = None
        if wait_ready:
            ok = wait_until(lambda: "watching:" in self.stderr() or self.p.poll() is not None,
                            30)
            if self.p.poll() is not None:
                err = self.stderr()
                if "BTF" in err or "not supported" in err.lower():
                    raise Skip("BPF unavailable: " + err.strip())
                raise Fail("tsguard exited with %s at startup: %s" % (self.p.returncode, err))
            check(ok, "tsguard not ready after 30 s: " + self.stderr())

    def stdout(self):
        with open(self.out_path) as f:
            return f.read()

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def alerts(self, rule=None, status=None):
        res = []
        for line in self.stdout().splitlines():
            if not line.startswith("{"):
                continue
            try:
                a = json.loads(line)
            except ValueError:
                continue  # a line being written
            if rule is not None and a.get("rule") != rule:
                continue
            if status is not None and a.get("status") != status:
                continue
            res.append(a)
        return res

    def wait_alerts(self, pred=lambda a: True, n=1, timeout=15, rule=None, status=None):
        """Waits for at least n alerts that satisfy pred; returns them (maybe fewer)."""
        def get():
            return [a for a in self.alerts(rule, status) if pred(a)]
        wait_until(lambda: len(get()) >= n, timeout)
        return get()

    def alive(self):
        return self.p.poll() is None

    def send(self, sig):
        self.p.send_signal(sig)

    def stop(self, sig=signal.SIGINT, timeout=60):
        if self.rc is not None:
            return self.rc
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            self.rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            self.out.close()
            self.err.close()
            raise Fail("tsguard did not stop within %ss of signal %d" % (timeout, sig))
        self.out.close()
        self.err.close()
        return self.rc

    def stop_stats(self):
        """The numbers of the 'stopping:' line: seen, filtered, sent, lost."""
        for line in self.stderr().splitlines():
            if "stopping:" in line:
                w = line.split("stopping:", 1)[1].replace(",", " ").split()
                nums = [int(x) for x in w if x.isdigit()]
                check(len(nums) == 4, "cannot parse the stop line: " + line)
                return dict(zip(("seen", "filtered", "sent", "lost"), nums))
        raise Fail("no 'stopping:' line in stderr:\n" + self.stderr())


class Env:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="tsg-e2e-cli-")
        os.chmod(self.tmp, 0o700)
        self.cleanups = []
        self.netns = None
        self.tag = str(os.getpid())
        self.soft_failures = []

    def soft(self, cond, msg):
        """A check that does not stop the test: the test fails at its end with all of them."""
        if not cond:
            log("FAILED CHECK: " + msg)
            self.soft_failures.append(msg)
        return cond

    def name(self, prefix):
        """A process name (comm) unique to this run, at most 15 characters."""
        n = "%s%s" % (prefix, self.tag)
        check(len(n) <= 15, "name too long: " + n)
        return n

    def rules_dir(self, files, sub="rules"):
        d = os.path.join(self.tmp, sub)
        os.makedirs(d, mode=0o700, exist_ok=True)
        for fn, text in files.items():
            self.write_rule(d, fn, text)
        return d

    @staticmethod
    def write_rule(d, fn, text, mode=0o644):
        path = os.path.join(d, fn)
        tmp = path + ".tmp~"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.rename(tmp, path)  # atomic: a reload never sees half a file
        return path

    def make_netns(self, *sysctls):
        """The test's network namespace, loopback up, each sysctl ("name=value") set."""
        ns = "tsgtest-%d" % os.getpid()
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
        if r.returncode != 0:
            raise Skip("cannot create a network namespace: " + r.stderr.strip())
        self.cleanups.append(lambda: subprocess.run(["ip", "netns", "del", ns]))
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        for setting in sysctls:
            netns_sysctl(ns, setting)
        self.netns = ns
        return ns

    def agent(self, prefix):
        a = Agent(self, self.name(prefix), self.netns)
        self.cleanups.append(a.stop)
        return a

    def agents(self, *prefixes):
        """One agent per prefix, started in that order."""
        return [self.agent(p) for p in prefixes]

    def tsguard(self, binary, args, tag="tsguard", **kw):
        t = Tsguard(self, binary, args, tag, **kw)
        self.cleanups.append(lambda: t.stop() if t.rc is None else None)
        return t

    def close(self, dump=False):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # keep cleaning up
                log("cleanup: %s" % e)
        self.cleanups = []
        if dump:  # what the processes said, for the failure report
            for fn in sorted(os.listdir(self.tmp)):
                if fn.endswith((".out", ".err")):
                    with open(os.path.join(self.tmp, fn), errors="replace") as f:
                        data = f.read()
                    if not data:
                        continue
                    if len(data) > 6000:
                        data = "...\n" + data[-6000:]
                    sys.stdout.write("---- %s ----\n%s" % (fn, data))
        if os.environ.get("TSG_E2E_KEEP"):
            log("kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def require_root():
    if os.geteuid() != 0:
        raise Skip("needs root")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        raise Skip("no BTF (/sys/kernel/btf/vmlinux)")
    for tool in ("ip",):
        if not shutil.which(tool):
            raise Skip("needs %s" % tool)


def run(test_fn, root=True):
    """root=False: the test needs no privileges (replay) and runs as anyone."""
    if len(sys.argv) != 2:
        sys.stderr.write("usage: %s path/to/tsguard\n" % sys.argv[0])
        sys.exit(2)
    binary = os.path.abspath(sys.argv[1])
    env = None
    rc = 0
    try:
        if root:
            require_root()
        env = Env()
        test_fn(env, binary)
        if env.soft_failures:
            raise Fail("%d check(s) failed:\n  - %s" % (len(env.soft_failures),
                                                        "\n  - ".join(env.soft_failures)))
        print("PASS: %s" % os.path.basename(sys.argv[0]))
    except Skip as e:
        print("SKIP: %s" % e)
        rc = 77
    except Fail as e:
        print("FAIL: %s" % e)
        rc = 1
    except Exception:
        traceback.print_exc()
        print("FAIL: unexpected exception")
        rc = 1
    finally:
        if env is not None:
            env.close(dump=rc == 1)
    sys.stdout.flush()
    sys.exit(rc)

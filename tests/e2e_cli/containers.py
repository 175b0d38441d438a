#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Containers as runtimes make them: tsguard on the host sees every namespace.

Two "containers", each a network namespace (`ip netns add`) plus a cgroup v2
directory named as a runtime names it, with the test's processes moved into
both before they open a socket:
  - tsg-c1: .../tsgtest.slice/docker-<64 hex>.scope (Docker, systemd driver)
  - tsg-c2: .../kubepods.slice/kubepods-burstable.slice/
            kubepods-burstable-pod<uid with _>.slice/cri-containerd-<64 hex>.scope
            (containerd under Kubernetes, systemd driver)
tsguard runs in the host's namespace with no option about namespaces.
  1. a CLOSE_WAIT leak in tsg-c1 that predates tsguard (the snapshot enters
     tsg-c1) and the same 4-tuple leaking in tsg-c2 after start: two sockets,
     two alerts, each with its container, pod, netns and netns_name;
  2. `container:` and `netns:` matching: a rule naming container 1 fires for
     it only, a rule naming tsg-c2 for that namespace only;
  3. TIME_WAIT counted `by: container` equals `ss` run inside each namespace;
     a second tsguard whose only rule names tsg-c2 keeps tsg-c1's (and the
     host's) transitions in the kernel: it sees tsg-c2's only; a third whose
     only rule names container 1 keeps tsg-c2's cgroup's transitions in the
     kernel once its verdict is written (the cgroup gate), and after a reload
     that names container 2 instead, tsg-c1's;
  4. a namespace deleted while watched (processes killed, `ip netns del`):
     tsguard keeps running, frees it, logs it once, its TIME_WAIT count ends.
Everything is removed at the end, also when the test fails.
"""
import json
import os
import secrets
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsgtest import (TCP_CLOSE_WAIT, Agent, check, log, metrics_text, netns_sysctl, run,  # noqa: E402
                     wait_until)

LEAK_PORT, TW_PORT, CLIENT_PORT = 18081, 18082, 40001
METRICS_PORT = 19475
N_TW = {"c1": 300, "c2": 120}


def cgroup2_root():
    """The cgroup v2 mount (/sys/fs/cgroup/unified on these machines)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2" and left.split()[3] == "/":
                return left.split()[4]
    return None


class Container:
    """A network namespace and a runtime-named cgroup; agents moved into both."""

    def __init__(self, env, ns, cg_root, rel):
        self.env, self.ns, self.path = env, ns, os.path.join(cg_root, rel)
        self.cg_root = cg_root
        self.made = []
        self.agents = []
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "add", ns], check=True)
        env.cleanups.append(self.remove)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        netns_sysctl(ns, "net.ipv4.tcp_tw_reuse=0")
        d = cg_root
        for part in rel.split("/"):
            d = os.path.join(d, part)
            if not os.path.isdir(d):
                os.mkdir(d)
                self.made.append(d)
        self.inode = os.stat("/run/netns/" + ns).st_ino

    def agent(self, prefix):
        a = Agent(self.env, self.env.name(prefix), self.ns)
        self.agents.append(a)
        # into the container's cgroup before it opens any socket
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(a.pid))
        return a

    def kill(self):
        for a in self.agents:
            a.stop()
        self.agents = []

    def remove(self):
        self.kill()
        procs = os.path.join(self.path, "cgroup.procs")
        if os.path.exists(procs):  # anything left moves out first
            with open(procs) as f:
                left = f.read().split()
            for pid in left:
                try:
                    with open(os.path.join(self.cg_root, "cgroup.procs"), "w") as f:
                        f.write(pid)
                except OSError:
                    pass
        for d in reversed(self.made):
            try:
                os.rmdir(d)
            except OSError as e:
                log("cannot remove %s: %s" % (d, e))
        self.made = []
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL)


def ss_time_wait(ns):
    # the sockets tw-by-container counts (rport TW_PORT), not the gate's (another port)
    r = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htan", "state", "time-wait",
                        "dport", "=", ":%d" % TW_PORT],
                       capture_output=True, text=True, check=True)
    return len([ln for ln in r.stdout.splitlines() if ln.strip()])


def ctl_alerts(tsguard, control):
    r = subprocess.run([tsguard, "ctl", "--control", control, "-o", "json", "alerts"],
                       capture_output=True, text=True, timeout=10)
    check(r.returncode == 0, "tsguard ctl alerts: %s" % r.stderr)
    return json.loads(r.stdout)["alerts"]


def tw_count(tsguard, control, cid):
    for a in ctl_alerts(tsguard, control):
        if a["rule"] == "tw-by-container" and a.get("key") == {"container": cid}:
            return a.get("count")
    return None


def leak(c, srv, cli):
    """A CLOSE_WAIT socket on the server side of LEAK_PORT, same 4-tuple everywhere."""
    ls = srv.cmd("listen", port=LEAK_PORT)
    srv.cmd("serve", id=ls["id"], mode="hold")
    conn = cli.cmd("connect", port=LEAK_PORT, lport=CLIENT_PORT)
    check(conn["result"] == "ok", "%s: connect %s" % (c.ns, conn))
    check(wait_until(lambda: srv.cmd("served", id=ls["id"])["n"] == 1, 5), c.ns + ": accept")
    cli.cmd("close", ids=[conn["id"]])
    sid = srv.cmd("served", id=ls["id"])["ids"][0]
    check(wait_until(lambda: srv.cmd("state", id=sid)["state"] == TCP_CLOSE_WAIT, 5),
          c.ns + ": the server socket is not in CLOSE_WAIT")


def churn(c, srv, cli, n, listen=True):
    if listen:
        ls = srv.cmd("listen", port=TW_PORT, backlog=1024)
        srv.cmd("serve", id=ls["id"], mode="close")
    check(cli.cmd("churn", port=TW_PORT, n=n, timeout=120)["done"] == n, c.ns + ": churn")


def check_identity(env, a, c, cid, pod):
    what = "%s alert %s" % (c.ns, a.get("rule"))
    env.soft(a.get("netns") == c.inode, "%s: netns %s, want %d" % (what, a.get("netns"), c.inode))
    env.soft(a.get("netns_name") == c.ns, "%s: netns_name %s" % (what, a.get("netns_name")))
    env.soft(a.get("container") == cid, "%s: container %s, want %s" %
             (what, a.get("container"), cid))
    env.soft(a.get("pod") == pod, "%s: pod %s, want %s" % (what, a.get("pod"), pod))
    env.soft(a.get("lport") == LEAK_PORT and a.get("rport") == CLIENT_PORT,
             "%s: ports %s/%s" % (what, a.get("lport"), a.get("rport")))


def rules(id1, tag):
    return f"""
rules:
  - name: close-wait-leak
    match: {{lport: {LEAK_PORT}}}
    when: {{state: CLOSE_WAIT, longer_than: 1s}}
  - name: leak-in-container-1
    match: {{lport: {LEAK_PORT}, container: {id1[:12]}}}
    when: {{state: CLOSE_WAIT, longer_than: 1s}}
  - name: leak-in-netns-c2
    match: {{lport: {LEAK_PORT}, netns: tsg-c2-{tag}}}
    when: {{state: CLOSE_WAIT, longer_than: 1s}}
  - name: tw-by-container
    match: {{rport: {TW_PORT}}}
    when: {{state: TIME_WAIT, count_above: 10, by: container}}
"""


def metrics(port):
    out = {}
    for line in metrics_text(port).splitlines():
        if line.startswith("tsguard_capture_") and " " in line:
            out[line.split()[0]] = int(float(line.split()[-1]))
    return out


def cg_rules(cid):
    return f"""
rules:
  - name: only-container
    match: {{container: {cid[:12]}}}
    when: {{to: [CLOSE, LISTEN]}}
"""


def other_cg(m):
    return m.get("tsguard_capture_events_other_cgroup_total", 0)


def gate_phase(env, gate, cid, watched, kept, what, port):
    """Once both cgroups have their verdicts, 200 connections in `kept` stay in
    the kernel and 20 in `watched` are seen and fire. The 200 go to a listener
    of `kept` that was made before its verdict (its CLOSE -> LISTEN crossed):
    its children's storage, cloned from it, must not let them cross."""
    (cw, sw, kw), (ck, sk, kk) = watched, kept
    d0 = metrics(METRICS_PORT)
    ls = sk.cmd("listen", port=port, backlog=1024)
    sk.cmd("serve", id=ls["id"], mode="close")
    # one connection each: the kernel asks about both cgroups
    churn(cw, sw, kw, 1, listen=False)

    def decided():
        m = metrics(METRICS_PORT)
        return (m.get("tsguard_capture_cgroup_allowed_total", 0) >
                d0.get("tsguard_capture_cgroup_allowed_total", 0) and
                m.get("tsguard_capture_cgroup_denied_total", 0) >
                d0.get("tsguard_capture_cgroup_denied_total", 0))
    check(wait_until(decided, 10), "%s: no verdicts on the two cgroups: %s" %
          (what, metrics(METRICS_PORT)))
    before = metrics(METRICS_PORT)
    n_fired = len(gate.alerts(rule="only-container"))
    check(kk.cmd("churn", port=port, n=200, timeout=120)["done"] == 200, ck.ns + ": churn")
    churn(cw, sw, kw, 20, listen=False)
    time.sleep(2)  # the metrics snapshot is refreshed every second
    check(wait_until(lambda: other_cg(metrics(METRICS_PORT)) - other_cg(before) >= 200 * 6, 5),
          "%s: the gate kept %d of %s's transitions, want >= 1200" %
          (what, other_cg(metrics(METRICS_PORT)) - other_cg(before), ck.ns))
    after = metrics(METRICS_PORT)
    seen = after["tsguard_capture_events_seen_total"] - before["tsguard_capture_events_seen_total"]
    log("%s: %d transitions seen (%s made 20 connections), %d kept in the kernel (%s made "
        "200); verdicts %d allowed, %d denied, %d pending" % (
            what, seen, cw.ns, other_cg(after) - other_cg(before), ck.ns,
            after["tsguard_capture_cgroup_allowed_total"],
            after["tsguard_capture_cgroup_denied_total"], after["tsguard_capture_cgroup_pending"]))
    check(20 * 6 <= seen <= 20 * 12 + 50,
          "%s: saw %d transitions: want %s's only (about 200)" % (what, seen, cw.ns))
    fired = gate.alerts(rule="only-container")[n_fired:]
    sk.cmd("close", ids=[ls["id"]])
    check(len(fired) >= 20 and all(a.get("container") == cid for a in fired),
          "%s: only-container fired %d times for %s" %
          (what, len(fired), {a.get("container") for a in fired}))


def gate_cg(env, tsguard, id1, id2, one, two):
    d = env.rules_dir({"g.yaml": cg_rules(id1)}, sub="rules-cgate")
    gate = env.tsguard(tsguard, ["-r", d, "-o", "json", "--control", "none",
                                 "--metrics", "127.0.0.1:%d" % METRICS_PORT],
                       tag="tsguard-cgate", netns=False)
    gate_phase(env, gate, id1, one, two, "cgroup gate on container 1", TW_PORT + 10)
    # a reload that names the other container: every verdict is stale, both
    # cgroups are asked again and decided the other way round
    env.write_rule(d, "g.yaml", cg_rules(id2))
    n = gate.stderr().count("reloaded:")
    gate.send(signal.SIGHUP)
    check(wait_until(lambda: gate.stderr().count("reloaded:") > n, 10),
          "no 'reloaded:' after SIGHUP:\n" + gate.stderr())
    gate_phase(env, gate, id2, two, one, "after the reload, on container 2", TW_PORT + 11)
    check(gate.stop() == 0, "the cgroup-gated tsguard's exit status %s" % gate.rc)


def test(env, tsguard):
    root = cgroup2_root()
    if not root:
        from tsgtest import Skip
        raise Skip("no cgroup v2 mount")
    tag = str(os.getpid() % 100000)
    id1, id2 = secrets.token_hex(32), secrets.token_hex(32)
    uid = "%s-%s-%s-%s-%s" % (secrets.token_hex(4), secrets.token_hex(2), secrets.token_hex(2),
                              secrets.token_hex(2), secrets.token_hex(6))
    c1 = Container(env, "tsg-c1-" + tag, root, "tsgtest.slice/docker-%s.scope" % id1)
    c2 = Container(env, "tsg-c2-" + tag, root,
                   "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice/"
                   "cri-containerd-%s.scope" % (uid.replace("-", "_"), id2))
    log("c1 %s netns %d, c2 %s netns %d" % (c1.ns, c1.inode, c2.ns, c2.inode))

    # 1. the leak in c1 predates tsguard
    s1, k1 = c1.agent("srv1"), c1.agent("cli1")
    leak(c1, s1, k1)
    control = os.path.join(env.tmp, "ctl.sock")
    t = env.tsguard(tsguard, ["-r", env.rules_dir({"c.yaml": rules(id1, tag)}), "-o", "json",
                              "--control", control], netns=False)
    s2, k2 = c2.agent("srv2"), c2.agent("cli2")
    leak(c2, s2, k2)
    got = t.wait_alerts(rule="close-wait-leak", status="firing", n=2, timeout=15)
    check(len(got) == 2, "want 2 close-wait-leak alerts (one per container), got %s" % got)
    by_ns = {a.get("netns"): a for a in got}
    check(set(by_ns) == {c1.inode, c2.inode}, "alerts' netns %s" % list(by_ns))
    check_identity(env, by_ns[c1.inode], c1, id1, None)
    check_identity(env, by_ns[c2.inode], c2, id2, uid)
    env.soft(got[0].get("key") != got[1].get("key"), "the two sockets share a key: %s" %
             got[0].get("key"))

    # 2. container: and netns: matching
    one = t.wait_alerts(rule="leak-in-container-1", status="firing", timeout=5)
    two = t.wait_alerts(rule="leak-in-netns-c2", status="firing", timeout=5)
    check(len(one) == 1 and one[0].get("container") == id1,
          "leak-in-container-1 fired %s" % one)
    check(len(two) == 1 and two[0].get("netns") == c2.inode, "leak-in-netns-c2 fired %s" % two)

    # 3. TIME_WAIT by container == ss in its namespace
    churn(c1, s1, k1, N_TW["c1"])
    churn(c2, s2, k2, N_TW["c2"])
    time.sleep(1)
    for c, cid in ((c1, id1), (c2, id2)):
        ss_n, ts_n = ss_time_wait(c.ns), tw_count(tsguard, control, cid)
        log("%s TIME_WAIT: ss %d, tsguard %s" % (c.ns, ss_n, ts_n))
        check(ss_n >= N_TW["c1" if c is c1 else "c2"] * 0.95, "%s: ss shows %d" % (c.ns, ss_n))
        check(ts_n == ss_n, "%s: tsguard counts %s TIME_WAIT, ss %d" % (c.ns, ts_n, ss_n))

    # 3b. the kernel gate: rules that all name a namespace see only its traffic
    gate = env.tsguard(tsguard, ["-r", env.rules_dir({"g.yaml": f"""
rules:
  - name: only-c2
    match: {{netns: {c2.ns}}}
    when: {{from: SYN_SENT, to: CLOSE}}
"""}, sub="rules-gate"), "-o", "json", "--control", "none"], tag="tsguard-gate",
                       netns=False)
    churn(c1, s1, k1, 200, listen=False)
    churn(c2, s2, k2, 20, listen=False)
    time.sleep(1)
    check(gate.stop() == 0, "the gated tsguard's exit status %s" % gate.rc)
    st = gate.stop_stats()
    log("gated tsguard: %s (tsg-c1 made 200 connections, tsg-c2 20)" % st)
    check(20 * 6 <= st["seen"] <= 20 * 12,
          "the gated tsguard saw %d transitions: want tsg-c2's only (about 170)" % st["seen"])

    # 3c. the cgroup gate: rules that all name a container keep the other
    # containers' transitions in the kernel, once the verdict on each cgroup
    # is written (the first transitions of a cgroup pass and ask)
    gate_cg(env, tsguard, id1, id2, (c1, s1, k1), (c2, s2, k2))

    # 4. c2 disappears while watched
    c2.kill()
    subprocess.run(["ip", "netns", "del", c2.ns], check=True)
    gone = "network namespace %d (%s) is gone" % (c2.inode, c2.ns)
    check(wait_until(lambda: gone in t.stderr(), 15), "no '%s' in the log" % gone)
    check(wait_until(lambda: tw_count(tsguard, control, id2) is None, 10),
          "c2's TIME_WAIT count still held: %s" % tw_count(tsguard, control, id2))
    time.sleep(6)  # one more discovery: logged once only
    check(t.stderr().count(gone) == 1, "logged %d times" % t.stderr().count(gone))
    check(t.alive(), "tsguard exited")
    check(tw_count(tsguard, control, id1) == ss_time_wait(c1.ns), "c1's count changed")
    check(t.stop() == 0, "tsguard exit status %s" % t.rc)


if __name__ == "__main__":
    run(test)

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Process lifecycle of live tsguard.

  (a) as an unprivileged user, a live run exits 1 and names the missing privilege
  (b) SIGTERM: exit 0, and the BPF programs and maps tsguard held (read from
      /proc/PID/fdinfo while it runs) are gone from `bpftool prog/map show`
  (c) traffic no rule wants (rules on rport 1 only; 2000 loopback connections)
      stays in the kernel: the stop line says 0 sent, and many seen
  (d) as root, a rule file writable by group or others, or not owned by root,
      is refused with exit 2 and a message naming the file
  (e) -n: the alert and the "dry-run:" lines of an exec action are printed,
      and the exec action (which would create a file) does not run
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsgtest import Fail, check, log, run, wait_until  # noqa: E402

CHURN = 2000
NOBODY = 65534


def bpf_ids(pid):
    """The BPF program and map ids a process holds file descriptors of."""
    progs, maps = set(), set()
    d = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                text = f.read()
        except OSError:
            continue
        for m in re.finditer(r"^(prog_id|map_id):\s*(\d+)$", text, re.M):
            (progs if m.group(1) == "prog_id" else maps).add(int(m.group(2)))
    return progs, maps


def bpftool(kind):
    r = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True, text=True,
                       timeout=60)
    check(r.returncode == 0, "bpftool %s show: %s" % (kind, r.stderr))
    return {x["id"]: x.get("name", "") for x in json.loads(r.stdout or "[]")}


def part_a(env, tsguard):
    d = tempfile.mkdtemp(prefix="tsg-e2e-cli-nobody-")
    try:
        os.chmod(d, 0o755)
        env.write_rule(d, "r.yaml", "rules:\n  - name: any\n    when: {to: CLOSE}\n")
        if shutil.which("setpriv"):
            drop = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
        else:
            drop = ["runuser", "-u", "nobody", "--"]
        r = subprocess.run(drop + [tsguard, "-r", d], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        log("(a) rc %d, stderr: %s" % (r.returncode, r.stderr.strip()))
        if r.returncode in (126, 127):
            log("(a) SKIPPED: %s cannot be run as uid %d" % (tsguard, NOBODY))
            return
        check(r.returncode == 1, "(a) unprivileged live run exited %d, expected 1: %s" %
              (r.returncode, r.stderr))
        check(re.search(r"root|CAP_BPF|CAP_SYS_ADMIN", r.stderr),
              "(a) the message does not name the missing privilege: " + r.stderr)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def part_bc(env, tsguard):
    srv, cli = env.agents("tfs", "tfc")
    ls = srv.cmd("listen", backlog=512)
    srv.cmd("serve", id=ls["id"], mode="close")
    rules = env.rules_dir({"one.yaml": "rules:\n  - name: port-one\n    match: {rport: 1}\n"
                           "    when: {from: SYN_SENT, to: CLOSE}\n"}, sub="rules-bc")
    progs0, maps0 = bpftool("prog"), bpftool("map")
    t = env.tsguard(tsguard, ["-r", rules, "-o", "json"], tag="tsguard-bc")
    progs, maps = bpf_ids(t.p.pid)
    check(progs and maps, "(b) tsguard holds no BPF program or map fds: %s %s" % (progs, maps))
    progs1, maps1 = bpftool("prog"), bpftool("map")
    check(progs <= set(progs1) and maps <= set(maps1),
          "(b) bpftool does not list tsguard's programs/maps")
    log("(b) during: programs %s, maps %s" % (sorted({progs1[i] for i in progs}),
                                              sorted({maps1[i] for i in maps})))
    check(not (progs & set(progs0)), "(b) tsguard's programs existed before it started")

    t0 = time.monotonic()
    done = cli.cmd("churn", port=ls["port"], n=CHURN, timeout=240)["done"]
    check(done == CHURN, "(c) %d of %d connections made" % (done, CHURN))
    log("(c) %d connections in %.1fs" % (CHURN, time.monotonic() - t0))
    time.sleep(1.5)  # the server closes its side
    rc = t.stop(signal.SIGTERM)
    check(rc == 0, "(b) tsguard exited %d after SIGTERM" % rc)
    st = t.stop_stats()
    log("(c) stop line: %s" % st)
    check(not t.alerts(), "(c) alerts for traffic no rule wants: %s" % t.alerts()[:3])
    check(st["sent"] == 0, "(c) %d transitions sent to user space, no rule wants any" %
          st["sent"])
    check(st["seen"] >= CHURN * 8, "(c) only %d transitions seen for %d connections" %
          (st["seen"], CHURN))
    check(st["filtered"] == st["seen"], "(c) seen %d, filtered %d" % (st["seen"],
                                                                       st["filtered"]))
    check(st["lost"] == 0, "(c) %d lost" % st["lost"])
    srv.cmd("close", ids=[ls["id"]])

    # (b) the kernel frees programs after an RCU grace period: wait for it
    def gone():
        p, m = bpftool("prog"), bpftool("map")
        return not (progs & set(p)) and not (maps & set(m))
    if not wait_until(gone, 30, step=0.5):
        p, m = bpftool("prog"), bpftool("map")
        raise Fail("(b) after exit still listed: programs %s, maps %s" % (
            {i: p[i] for i in progs & set(p)}, {i: m[i] for i in maps & set(m)}))
    log("(b) after exit: none of %d programs and %d maps listed" % (len(progs), len(maps)))


def part_d(env, tsguard):
    d = os.path.join(env.tmp, "rules-d")
    os.makedirs(d, mode=0o700)
    text = "rules:\n  - name: any\n    when: {to: CLOSE}\n"
    for mode, owner, want in ((0o666, 0, "writable by group or others"),
                              (0o664, 0, "writable by group or others"),
                              (0o644, NOBODY, "owned by uid %d" % NOBODY)):
        for fn in os.listdir(d):
            os.unlink(os.path.join(d, fn))
        path = env.write_rule(d, "r.yaml", text, mode=mode)
        os.chown(path, owner, owner)
        for target in (path, d):
            r = subprocess.run([tsguard, "-r", target], capture_output=True, text=True,
                               timeout=60, stdin=subprocess.DEVNULL)
            log("(d) mode %04o uid %d -r %s: rc %d: %s" % (mode, owner, target, r.returncode,
                                                            r.stderr.strip()))
            check(r.returncode == 2, "(d) rule file mode %04o owner %d: exit %d, expected 2: %s"
                  % (mode, owner, r.returncode, r.stderr))
            check(path in r.stderr and want in r.stderr,
                  "(d) the error does not name %s and say '%s': %s" % (path, want, r.stderr))
            check("watching" not in r.stderr, "(d) it started watching")


def part_e(env, tsguard):
    cli = env.agent("tdc")
    marker = os.path.join(env.tmp, "dry-run-created")
    touch = shutil.which("touch")
    rules = env.rules_dir({"dry.yaml": f"""
actions:
  - name: make-file
    type: exec
    argv: [{touch}, "{marker}", "{{{{comm}}}}"]
rules:
  - name: dry-refused
    match: {{comm: {cli.name}}}
    when: {{from: SYN_SENT, to: CLOSE}}
    actions: [make-file]
"""}, sub="rules-e")
    t = env.tsguard(tsguard, ["-r", rules, "-n", "-o", "json"], tag="tsguard-e")
    check("dry run" in t.stderr(), "(e) the start line does not say dry run: " + t.stderr())
    port = cli.cmd("closed_port")["port"]
    check(cli.cmd("refuse", port=port, n=1)["refused"] == 1, "not refused")
    got = t.wait_alerts(rule="dry-refused", timeout=5)
    check(len(got) == 1, "(e) %d alerts, expected 1" % len(got))
    check(got[0].get("dry_run") is True, "(e) alert dry_run is %s" % got[0].get("dry_run"))
    # with -o json every stdout line is a JSON object: the alert, then one
    # {"dry_run": {...}} object per thing each action would do
    def dry_lines():
        out = []
        for ln in t.stdout().splitlines():
            obj = json.loads(ln)  # fails the test if a line is not JSON
            if "dry_run" in obj and isinstance(obj["dry_run"], dict):
                out.append(obj["dry_run"])
        return out

    def argv_of():
        return [d for d in dry_lines() if d.get("action") == "make-file" and
                d.get("type") == "exec" and d.get("what") == "argv"]

    check(wait_until(lambda: argv_of(), 5), "(e) no dry-run argv object:\n" + t.stdout())
    for d in dry_lines():
        log("(e) %s" % json.dumps(d)[:200])
    argv = argv_of()[0]["value"]
    check(argv == [touch, marker, cli.name],
          "(e) the argv object does not show the expanded argv: %s" % argv)
    time.sleep(1.0)
    rc = t.stop()
    check(rc == 0, "(e) tsguard exited %d" % rc)
    check(not os.path.exists(marker), "(e) the exec action ran in a dry run: %s exists" % marker)


def test(env, tsguard):
    part_a(env, tsguard)
    part_d(env, tsguard)
    env.make_netns()
    part_e(env, tsguard)
    part_bc(env, tsguard)


if __name__ == "__main__":
    run(test)

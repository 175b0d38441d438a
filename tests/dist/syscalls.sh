#!/bin/bash
# dist.syscalls: every system call tsguard makes must be allowed by the
# SystemCallFilter= of the systemd unit (dist/tsguard.service).
#
#   tests/dist/syscalls.sh TSGUARD UNIT
#
# Runs TSGUARD under `strace -f` doing what the service does: --check,
# --replay of an event file, and a live run as root on the rule pack plus a
# rule whose actions are an exec hook with `user: nobody`, a webhook to a
# local HTTP server and syslog, with --metrics scraped, a SIGHUP reload and a
# SIGTERM stop. The system calls seen (tsguard's and its hook's) are compared
# with the unit's filter, expanded with `systemd-analyze syscall-filter`.
# This does not run the unit under systemd (that needs systemd as PID 1); it
# checks the set of calls, which is what the filter decides on.
#
# Needs root (exit 77 otherwise), strace, systemd-analyze, python3 and curl
# (exit 77 without them, but fail when CI=true).
set -u
tsguard=$(readlink -f "$1")
unit=$(readlink -f "$2")
src=$(cd "$(dirname "$0")/../.." && pwd)

skip() {
	if [ "${CI:-}" = true ]; then
		echo "FAIL: $*" >&2
		exit 1
	fi
	echo "SKIP: $*" >&2
	exit 77
}
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (BPF, exec hooks with user:)" >&2; exit 77; }
for t in strace systemd-analyze python3 curl; do
	command -v "$t" >/dev/null || skip "$t not found (scripts/deps.sh installs it)"
done

tmp=$(mktemp -d /tmp/tsg-syscalls.XXXXXX)
pids=()
tpid=
cleanup() {
	# tsguard first (strace would wait for it), then strace and the web server
	[ -n "$tpid" ] && kill -TERM "$tpid" 2>/dev/null
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
trace() { # trace NAME CMD...: strace -f into $tmp/NAME.trace
	local name=$1
	shift
	strace -f -qq -o "$tmp/$name.trace" "$@"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# rules: root-owned 0755 directory, 0644 files (tsguard refuses others)
rules=$tmp/rules.d
install -d -m 0755 -o root -g root "$rules"
install -m 0644 -o root -g root "$src"/rules/*.yaml "$rules"/
closed=$(free_port)
hook_port=$(free_port)
metrics_port=$(free_port)
chmod 0755 "$tmp"
# the hook writes as nobody: give it a directory it may write to
install -d -m 0777 "$tmp/out"
marker=$tmp/out/hook-ran
cat >"$tmp/hook.sh" <<EOF
#!/bin/sh
# the exec hook: runs as nobody, proves it ran
id -u >"$marker.tmp.\$\$" && mv "$marker.tmp.\$\$" "$marker.\$\$"
cat >/dev/null
exit 0
EOF
chmod 0755 "$tmp/hook.sh"
install -m 0644 -o root -g root /dev/stdin "$rules/90-syscalls.yaml" <<EOF
actions:
  - name: hook
    type: exec
    argv: [$tmp/hook.sh, "{{raddr}}", "{{rport}}"]
    user: nobody
    timeout: 5s
  - name: web
    type: webhook
    url: http://127.0.0.1:$hook_port/alert
    timeout: 2s
    retries: 0
rules:
  - name: syscalls-refused
    summary: "refused connect to {{raddr}}:{{rport}}"
    match: {rport: $closed}
    when: {from: SYN_SENT, to: CLOSE}
    actions: [syslog, hook, web]
EOF

# a webhook receiver that answers 200
python3 - "$hook_port" >"$tmp/web.log" 2>&1 <<'EOF' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200); self.end_headers()
        print("POST", self.path, flush=True)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
pids+=($!)

# 1. --check, 2. --replay
trace check "$tsguard" --check -r "$rules" || fail "--check failed"
trace replay "$tsguard" -r "$src/rules" --control "$tmp/replay.control" --replay "$src/rules/tests/data/refused-storm.jsonl" \
	--until 30 -o json >/dev/null || fail "--replay failed"

# 3. live, as the service runs it (plus --metrics)
strace -f -qq -o "$tmp/live.trace" "$tsguard" -r "$rules" --control "$tmp/live.control" --metrics "127.0.0.1:$metrics_port" \
	>"$tmp/live.out" 2>"$tmp/live.err" &
spid=$!
pids+=($spid)
ok=
for _ in $(seq 100); do
	grep -q watching "$tmp/live.err" && { ok=1; break; }
	kill -0 "$spid" 2>/dev/null || break
	sleep 0.1
done
[ -n "$ok" ] || fail "tsguard did not start watching: $(cat "$tmp/live.err")"
tpid=$(pgrep -P "$spid" -x tsguard) || fail "no tsguard process under strace"
curl -fsS "http://127.0.0.1:$metrics_port/metrics" >/dev/null || fail "/metrics did not answer"
curl -fsS "http://127.0.0.1:$metrics_port/healthz" >/dev/null || fail "/healthz did not answer"
# a refused connect fires the rule: syslog, the hook as nobody, the webhook
bash -c "exec 3<>/dev/tcp/127.0.0.1/$closed" 2>/dev/null
for _ in $(seq 100); do
	ls "$marker".[0-9]* >/dev/null 2>&1 && grep -q POST "$tmp/web.log" && break
	sleep 0.1
done
ls "$marker".[0-9]* >/dev/null 2>&1 || fail "the exec hook did not run: $(cat "$tmp/live.err")"
for f in "$marker".[0-9]*; do
	[ "$(cat "$f")" = "$(id -u nobody)" ] || fail "the hook ran as uid $(cat "$f"), not nobody"
done
grep -q POST "$tmp/web.log" || fail "the webhook was not sent: $(cat "$tmp/live.err")"
kill -HUP "$tpid"
sleep 1
kill -TERM "$tpid"
wait "$spid"
rc=$?
tpid=
[ "$rc" -eq 0 ] || fail "tsguard exited with $rc: $(cat "$tmp/live.err")"

# what the filter allows, what was called
python3 - "$unit" "$tmp"/*.trace <<'EOF'
import re, subprocess, sys

unit, traces = sys.argv[1], sys.argv[2:]

def group(name, seen=None):
    """Members of a systemd syscall group, nested groups expanded."""
    seen = seen if seen is not None else set()
    if name in seen:
        return set()
    seen.add(name)
    out = subprocess.run(["systemd-analyze", "syscall-filter", name],
                         capture_output=True, text=True, check=True).stdout
    calls = set()
    for ln in out.splitlines()[1:]:
        w = ln.strip()
        if not w or w.startswith("#"):
            continue
        calls |= group(w, seen) if w.startswith("@") else {w}
    return calls

def expand(words):
    s = set()
    for w in words:
        s |= group(w) if w.startswith("@") else {w}
    return s

allow, deny, lines = None, set(), []
for ln in open(unit):
    m = re.match(r"\s*SystemCallFilter=(.*)", ln)
    if m:
        lines.append(m.group(1).strip())
if not lines:
    sys.exit("FAIL: %s has no SystemCallFilter=" % unit)
for v in lines:
    if v == "":
        allow, deny = None, set()
    elif v.startswith("~"):
        deny |= expand(v[1:].split())
    else:
        allow = (allow or set()) | expand(v.split())
if allow is None:
    sys.exit("FAIL: %s has no allow list in SystemCallFilter=" % unit)
allowed = allow - deny
# an allow list always includes @default ("always permitted")
allowed |= group("@default")

pat = re.compile(r"^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)(?:\(| resumed>)")
calls = {}
for t in traces:
    for ln in open(t):
        m = pat.match(ln)
        if m:
            calls.setdefault(m.group(1), set()).add(t.rsplit("/", 1)[-1])
bad = sorted(c for c in calls if c not in allowed)
print("system calls seen: %d: %s" % (len(calls), " ".join(sorted(calls))))
for c in ("bpf", "setuid", "setgid", "setgroups", "execve"):
    if c not in calls:
        print("note: %s not seen" % c)
if bad:
    for c in bad:
        print("FAIL: %s (in %s) is not allowed by SystemCallFilter= of %s"
              % (c, ", ".join(sorted(calls[c])), unit))
    sys.exit(1)
print("all allowed by SystemCallFilter= of %s" % unit)
EOF

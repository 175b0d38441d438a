#!/bin/bash
# tsguard memory per tracked socket, live (not a test). In a private network
# namespace (unshare -n: it ends with the last process in it), the real tsguard
# runs on two rules that hold every ESTABLISHED socket (a count rule by lport,
# a time-in-state rule) and `tsg_bench_hold` opens loopback connections and
# holds them ESTABLISHED (2 sockets each). One run measures:
#   baseline    tsguard with the rules and no sockets
#   tracepoint  the sockets opened while that tsguard runs (it sees them live)
#   snapshot    a new tsguard started with the sockets already open (its
#               start-up iter/tcp pass finds them, owners from /proc)
# and prints tsguard's VmRSS and Pss (smaps_rollup) in each, bytes per tracked
# socket = (RSS_N - RSS_0) / tracked beside the target (<= 150 B), and the
# kernel's side (BPF socket storage: charged to each socket's sk_omem_alloc,
# read with SO_MEMINFO, and the growth of the kmalloc-cg slabs), which is kernel
# memory, not in tsguard's RSS.
#   flock /tmp/tsg-root-tests.lock bash bench/live_mem.sh [BUILD_DIR] [CONNECTIONS]
# Default 500,000 connections (1,000,000 sockets); when the machine holds fewer,
# it measures what was held and says so. Needs root.
set -euo pipefail
port=9464

# ---- inside the namespace ------------------------------------------------------
if [ "${1:-}" = --inner ]; then
	tp= hp=
	stop_tsguard() {
		[ -n "$tp" ] || return 0
		kill -INT "$tp" 2>/dev/null || true
		wait "$tp" 2>/dev/null || true
		tp=
	}
	stop_all() {
		stop_tsguard
		if [ -n "$hp" ]; then
			kill -TERM "$hp" 2>/dev/null || true
			wait "$hp" 2>/dev/null || true
		fi
	}
	trap stop_all EXIT
	trap 'exit 130' INT TERM
	ip link set lo up
	metric() { { curl -s --max-time 10 "http://127.0.0.1:$port/metrics" || true; } | awk -v m="$1" '$1 == m {print $2}'; }
	start_tsguard() { # NAME
		"$TSG" -q -r "$TMP/rules.yaml" --netns host --metrics "127.0.0.1:$port" \
			--control "$TMP/ctl" >"$TMP/alerts.$1" 2>"$TMP/tsguard.$1.err" &
		tp=$!
		for _ in $(seq 600); do
			[ -n "$(metric tsguard_engine_sockets_tracked)" ] && return 0
			kill -0 "$tp" 2>/dev/null || break
			sleep 0.5
		done
		echo "live_mem: tsguard did not start:" >&2
		cat "$TMP/tsguard.$1.err" >&2
		exit 1
	}
	wait_tracked() { # WANT: until tracked >= WANT, or it answers the same for 60 s
		local t last=-1 still=0
		for _ in $(seq 1800); do
			t=$(metric tsguard_engine_sockets_tracked)
			[ -n "$t" ] && [ "$t" -ge "$1" ] && break
			# no answer: the snapshot holds the main loop; not "stopped growing"
			if [ -n "$t" ] && [ "$t" = "$last" ]; then still=$((still + 1)); else still=0; fi
			[ $still -ge 120 ] && break
			last=${t:-$last}
			sleep 0.5
		done
		sleep 5 # what the last events made, settled
	}
	rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$tp/status"; }
	pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$tp/smaps_rollup"; }
	slab_bytes() { # the kmalloc-cg slabs, where socket storage is allocated
		awk '$1 ~ /^kmalloc-cg-/ {s += $2 * $4} END {printf "%d\n", s}' /proc/slabinfo
	}
	optmem() { # the sockets' sk_omem_alloc, summed by the holder: "BYTES SOCKETS"
		local n
		n=$(grep -c '^optmem' "$TMP/hold.out" || true)
		kill -USR1 "$hp"
		for _ in $(seq 600); do
			[ "$(grep -c '^optmem' "$TMP/hold.out" || true)" -gt "$n" ] && break
			sleep 0.2
		done
		grep '^optmem' "$TMP/hold.out" | tail -1 | cut -d' ' -f2-
	}
	storage_map() {
		bpftool map show 2>/dev/null | awk '/ name sk_stor / {getline; print}' | sed 's/^[ \t]*//' | tail -1
	}
	phase() { # NAME: one line of figures, tsguard running
		local tracked lost resyncs
		tracked=$(metric tsguard_engine_sockets_tracked)
		lost=$(metric tsguard_capture_events_lost_total)
		resyncs=$(metric tsguard_capture_resyncs_total)
		echo "$1 tracked=${tracked:-0} rss_kb=$(rss_kb) pss_kb=$(pss_kb) lost=${lost:-0} resyncs=${resyncs:-0}" >>"$TMP/figures"
		"$TSG" ctl --control "$TMP/ctl" status | sed -n 's/^sockets: */  ctl status, sockets: /p' >>"$TMP/ctl.$1"
	}

	# baseline: the rules, no sockets
	start_tsguard tp
	sleep 5
	phase baseline
	echo "kernel_before slab=$(slab_bytes)" >>"$TMP/figures"

	# tracepoint: the sockets opened while tsguard runs
	"$HOLD" -n "$CONNS" -p 7950 >"$TMP/hold.out" 2>"$TMP/hold.err" &
	hp=$!
	for _ in $(seq 3600); do
		grep -q '^held' "$TMP/hold.out" && break
		kill -0 "$hp" 2>/dev/null || { cat "$TMP/hold.err" >&2; exit 1; }
		sleep 0.5
	done
	grep '^held' "$TMP/hold.out" >>"$TMP/figures"
	held=$(awk '/^held/ {print $3}' "$TMP/hold.out")
	wait_tracked "$held"
	phase tracepoint
	echo "kernel_tracepoint slab=$(slab_bytes) optmem=$(optmem | tr ' ' ,) map=$(storage_map | tr ' ' '~')" >>"$TMP/figures"
	stop_tsguard
	sleep 5 # the storage map freed with the programs
	echo "kernel_between slab=$(slab_bytes) optmem=$(optmem | tr ' ' ,)" >>"$TMP/figures"

	# snapshot: a new tsguard finds the sockets at its start
	start_tsguard snap
	wait_tracked "$held"
	phase snapshot
	echo "kernel_snapshot slab=$(slab_bytes) optmem=$(optmem | tr ' ' ,) map=$(storage_map | tr ' ' '~')" >>"$TMP/figures"
	stop_all
	trap - EXIT
	exit 0
fi

# ---- outside: set up, run the namespace, print -----------------------------------
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
conns=${2:-500000}
[ "$(id -u)" = 0 ] || { echo "live_mem: needs root" >&2; exit 77; }
for f in "$build/tsguard" "$build/bench/tsg_bench_hold"; do
	[ -x "$f" ] || { echo "live_mem: build $f first" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/tsg-livemem-XXXXXX)
inner_pid=
cleanup() {
	# the inner script kills what it started; this is for a signal to us
	[ -n "$inner_pid" ] && kill "$inner_pid" 2>/dev/null && wait "$inner_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 755 "$tmp"
cat >"$tmp/rules.yaml" <<'YAML'
rules:
  - name: established-per-port
    when: {state: ESTABLISHED, count_above: 100000000, by: lport}
  - name: old-established
    when: {state: ESTABLISHED, longer_than: 1h}
YAML
"$build/tsguard" --check -r "$tmp/rules.yaml" >/dev/null 2>&1 || { echo "live_mem: the rules do not load" >&2; exit 1; }
export TSG="$build/tsguard" HOLD="$build/bench/tsg_bench_hold" TMP="$tmp" CONNS="$conns"
unshare -n bash "$0" --inner &
inner_pid=$!
rc=0
wait "$inner_pid" || rc=$?
inner_pid=
[ $rc = 0 ] || { echo "live_mem: the run failed ($rc)" >&2; cat "$tmp"/*.err >&2; exit 1; }
python3 - "$tmp" "$build/tsguard" <<'PY'
import sys, glob
tmp, tsg = sys.argv[1], sys.argv[2]
f = {}
for line in open(tmp + "/figures"):
    w = line.split()
    f[w[0]] = w[1:] if w[0] == "held" else dict(x.split("=", 1) for x in w[1:])
held = f["held"]
conns, socks, wanted, procs = int(held[0]), int(held[1]), int(held[3]), held[held.index("processes") + 1]
err = held[held.index("error") + 1:held.index("processes")]
print("sockets: %d connections held ESTABLISHED (%d sockets) by %s processes of %s fds%s"
      % (conns, socks, procs, held[-1], "" if conns == wanted else
         "; wanted %d, the kernel refused more (%s): the largest N this machine allows"
         % (wanted, " ".join(err))))
print("tsguard: %s --netns host, rules: {state: ESTABLISHED, count_above: 100000000, by: lport},"
      " {state: ESTABLISHED, longer_than: 1h}" % tsg)
print()
print("%-42s %9s %10s %10s %6s %8s" % ("tsguard (user space)", "tracked", "VmRSS kB", "Pss kB",
                                         "lost", "resyncs"))
names = [("baseline", "baseline: the rules, no sockets"),
         ("tracepoint", "tracepoint: opened while tsguard runs"),
         ("snapshot", "snapshot: open before tsguard starts")]
for k, label in names:
    r = f[k]
    print("%-42s %9s %10s %10s %6s %8s" % (label, r["tracked"], r["rss_kb"], r["pss_kb"],
                                             r["lost"], r["resyncs"]))
print()
print("%-42s %9s %10s %10s %s" % ("bytes per tracked socket", "VmRSS", "Pss", "target", ""))
b = f["baseline"]
for k, label in names[1:]:
    r = f[k]
    t = int(r["tracked"])
    if t <= 0:
        print("%-42s nothing tracked" % label)
        continue
    rss = (int(r["rss_kb"]) - int(b["rss_kb"])) * 1024.0 / t
    pss = (int(r["pss_kb"]) - int(b["pss_kb"])) * 1024.0 / t
    print("%-42s %9.1f %10.1f %10s %s" % (label, rss, pss, "<= 150",
                                          "met" if max(rss, pss) <= 150 else "MISSED"))
print()
m = f["kernel_tracepoint"]["map"].replace("~", " ").split()
print("kernel memory, NOT in tsguard's RSS: the BPF socket storage (sk_stor: %s; bpftool's"
      % " ".join(m))
print("memlock is the map alone: each socket's element is charged to its sk_omem_alloc)")
print("%-42s %12s %14s" % ("per held socket", "sk_omem_alloc", "kmalloc-cg slab"))
between = int(f["kernel_between"]["slab"])
for k, label in names[1:]:
    r = f["kernel_" + k]
    om = int(r["optmem"].split(",")[0])
    print("%-42s %10.1f B %12.1f B" % (label, om / float(socks),
                                         (int(r["slab"]) - between) / float(socks)))
om = int(f["kernel_between"]["optmem"].split(",")[0])
print("%-42s %10.1f B %12s" % ("between the two, no tsguard of this run", om / float(socks), "0 (reference)"))
print("(sk_omem_alloc: SO_MEMINFO summed over the sockets; slab: kmalloc-cg-* growth over the same")
print("sockets held with no tsguard, host-wide, so other work on the host moves it a little)")
print()
for k, label in names:
    for line in open(tmp + "/ctl." + k):
        print("tsguard ctl status, %s: %s" % (k, line.strip().replace("ctl status, sockets: ", "sockets: ")))
PY

#!/bin/bash
# Loopback connection churn with and without tracers, all cases in one run.
#   [ROUNDS=2] bench/bpf_churn.sh [BUILD_DIR] [CONNECTIONS]
# Needs root, a build with tsguard and tsg_bpf_churn (bench/CMakeLists.txt),
# bpftool, bpftrace (the counting floor) and, if installed, /usr/sbin/tcpstates
# (libbpf-tools). Each case runs in its own network namespace (unshare -n),
# which goes away with its processes.
#
# The churn is the fast kind (bench/churn.c): clients bound round-robin to
# 127.0.0.2-251, the server closes first, so no connect searches for a free
# port. For every case it prints conn/s and the ratio to untraced, the cost of
# the tracer's BPF programs per transition (bpf_stats: run_time_ns summed over
# its programs / transitions run on inet_sock_set_state; "sys ns": tsguard's
# programs at the return of connect() and accept(), also per transition, not
# in ns/trans nor in its target), their recursion
# misses (transitions the kernel skipped), events lost, and the tracer's
# user-space CPU (utime+stime from /proc/PID/stat over the churn), also per
# event that crossed to user space. A final table puts each figure next to
# its target and says MISSED where it is.
set -euo pipefail

# the tracers' programs on inet_sock_set_state, and tsguard's on the ends of
# timewait sockets (timer_expire_entry, kfree_skb: bpf/tsguard_tw.bpf.h), whose
# cost is counted in its ns per transition too; and tsguard's at the return of
# connect() and accept() (bpf/tsguard_sys.bpf.h), shown in a column of their
# own (per transition too): they run on syscalls, not on transitions
PAT='set_state|inet_sock_set_s|tsg_tw_|_exit$'

# progs PID: ids of the BPF programs PID holds open and that match PAT
progs() {
	local f id
	for f in /proc/"$1"/fdinfo/*; do
		id=$(awk '$1 == "prog_id:" {print $2}' "$f" 2>/dev/null || true)
		[ -n "$id" ] || continue
		bpftool prog show id "$id" -j 2>/dev/null |
			python3 -c "import json,re,sys; p=json.load(sys.stdin); \
print(p['id'] if re.search(r'$PAT', p.get('name','')) else '')"
	done | sort -u | tr '\n' ' '
}

# pstats IDS...: "run_time_ns_sum transitions recursion_misses_sum sys_ns": the
# time of all but the syscall programs; transitions: the most runs of a program
# on inet_sock_set_state (the timewait programs run on other events, counted in
# the time only); sys_ns: the time of the syscall programs
pstats() {
	local id
	for id in "$@"; do bpftool prog show id "$id" -j; echo; done | python3 -c '
import json, re, sys
t = c = m = y = 0
for line in sys.stdin:
    if line.strip():
        p = json.loads(line)
        if re.search(r"_exit$", p.get("name", "")):
            y += p.get("run_time_ns", 0)
            continue
        t += p.get("run_time_ns", 0)
        if re.search(r"set_state|inet_sock_set_s", p.get("name", "")):
            c = max(c, p.get("run_cnt", 0))
        m += p.get("recursion_misses", 0)
print(t, c, m, y)'
}

cputicks() { sed 's/.*) //' /proc/"$1"/stat | awk '{print $12 + $13}'; }

# --inner NAME [TRACER...]: one case, inside its own network namespace
if [ "${1:-}" = --inner ]; then
	name=$2; shift 2
	ip link set lo up
	tp=
	trap '[ -z "$tp" ] || kill -INT "$tp" 2>/dev/null || true' EXIT
	if [ $# -gt 0 ]; then
		"$@" > "$TMP/$name.tracer" 2>&1 &
		tp=$!
		ids=
		for _ in $(seq 150); do
			ids=$(progs "$tp")
			[ -n "$ids" ] && break
			sleep 0.1
		done
		[ -n "$ids" ] || { echo "$name: tracer did not attach" >&2; exit 1; }
		sleep 1 # let it finish starting (snapshot, first drain)
		ids=$(progs "$tp") # all of them now (some attach after the first)
		# shellcheck disable=SC2086
		s0=$(pstats $ids); c0=$(cputicks "$tp")
	fi
	"$CHURN" -n "$N" -p 7900 > "$TMP/$name.out"
	if [ -n "$tp" ]; then
		# shellcheck disable=SC2086
		s1=$(pstats $ids); c1=$(cputicks "$tp")
		sleep 1
		kill -INT "$tp"; wait "$tp" || true
		tp=
		echo "$s0 $s1 $c0 $c1" | awk -v hz="$(getconf CLK_TCK)" \
			'{print $5-$1, $6-$2, $7-$3, ($10-$9)/hz, $8-$4}' > "$TMP/$name.stats"
	fi
	exit 0
fi

BUILD=${1:-build}
N=${2:-200000}
ROUNDS=${ROUNDS:-2}
CHURN=$(cd "$BUILD" && pwd)/bench/tsg_bpf_churn
TSG=$(cd "$BUILD" && pwd)/tsguard
HERE=$(cd "$(dirname "$0")/.." && pwd)
SELF=$HERE/bench/bpf_churn.sh
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 77; }
[ -x "$CHURN" ] && [ -x "$TSG" ] || { echo "build tsguard and tsg_bpf_churn first" >&2; exit 1; }
command -v bpftool > /dev/null || { echo "needs bpftool" >&2; exit 1; }
command -v bpftrace > /dev/null || { echo "needs bpftrace (the counting floor)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/tsg-bench-XXXXXX)
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
trap 'sysctl -qw kernel.bpf_stats_enabled="$stats_was"; rm -rf "$TMP"' EXIT INT TERM
sysctl -qw kernel.bpf_stats_enabled=1
export TMP CHURN N

mkdir "$TMP/nomatch" "$TMP/every" "$TMP/shipped" "$TMP/cgate"
cp "$HERE"/rules/*.yaml "$TMP/shipped/"
chmod 755 "$TMP" "$TMP"/nomatch "$TMP"/every "$TMP"/shipped "$TMP"/cgate
cat > "$TMP/nomatch/r.yaml" << 'Y'
rules:
  - name: https-connect-fails
    match: {rport: 443}
    when: {from: SYN_SENT, to: CLOSE}
Y
bash "$HERE/bench/every_rules.sh" > "$TMP/every/r.yaml"

# the every-transition rules, each only in a container the churn is not in:
# the cgroup gate keeps all of it in the kernel (docs/kernel.md)
sed 's/^    when:/    match: {container: 0123456789ab0123456789ab0123456789ab0123456789ab0123456789ab0123}\n    when:/' \
	"$TMP/every/r.yaml" > "$TMP/cgate/r.yaml"

run() { unshare -n "$SELF" --inner "$@"; }
cases="none floor nomatch every cgate shipped"
[ -x /usr/sbin/tcpstates ] && cases="$cases tcpstates"
# ROUNDS rounds, each running every case once, one after the other: this
# VM's speed drifts by 10-20 % within minutes, so each case gets its share
# of every period, ratios are taken within a round, and the spread of
# ns/transition over the rounds is printed
for r in $(seq "$ROUNDS"); do
	run "none.$r"
	run "floor.$r" bpftrace -e 'tracepoint:sock:inet_sock_set_state { @n = count(); }'
	run "nomatch.$r" "$TSG" -r "$TMP/nomatch"
	run "every.$r" "$TSG" -r "$TMP/every"
	run "cgate.$r" "$TSG" -r "$TMP/cgate"
	run "shipped.$r" "$TSG" -r "$TMP/shipped" -o json
	[ -x /usr/sbin/tcpstates ] && run "tcpstates.$r" /usr/sbin/tcpstates
done

rate() { awk '{print $6}' "$TMP/$1.out"; }
# crossed NAME.R: events the tracer took in user space; lost NAME.R
crossed() {
	case $1 in
	floor.*) echo 0 ;;
	tcpstates.*) grep -c . "$TMP/$1.tracer" || true ;;
	*) grep -h 'stopping:' "$TMP/$1.tracer" | sed 's/.* \([0-9]*\) sent.*/\1/' || echo - ;;
	esac
}
lost() {
	case $1 in
	floor.*) echo - ;;
	tcpstates.*) grep -ho 'lost [0-9]* events' "$TMP/$1.tracer" |
		awk '{s += $2} END {print s + 0}' || true ;;
	*) grep -h 'stopping:' "$TMP/$1.tracer" | sed 's/.* \([0-9]*\) lost.*/\1/' || echo - ;;
	esac
}
label() {
	case $1 in
	none) echo "none (untraced)" ;;
	floor) echo "bpftrace counting transitions (floor)" ;;
	nomatch) echo "tsguard, rules that match none of it" ;;
	every) echo "tsguard, a rule set needing every transition" ;;
	cgate) echo "tsguard, the same, only in another container" ;;
	shipped) echo "tsguard, the shipped rule pack" ;;
	tcpstates) echo "tcpstates (libbpf-tools) to a file" ;;
	esac
}

# per round, one line per case: conn/s, ratio to that round's untraced,
# then (traced cases) run_time_ns, transitions, misses, cpu s, sys ns,
# crossed, lost
for r in $(seq "$ROUNDS"); do
	echo "untraced churn, round $r: $(cat "$TMP/none.$r.out") ($N connections, 250 client addresses)"
	for c in $cases; do
		a=$(rate "$c.$r")
		b=$(rate "none.$r")
		if [ "$c" = none ]; then
			echo "$c $a 1"
		else
			echo "$c $a $(awk -v a="$a" -v b="$b" 'BEGIN {print a / b}') $(cat "$TMP/$c.$r.stats")" \
				"$(crossed "$c.$r") $(lost "$c.$r")"
		fi
	done > "$TMP/round.$r"
done
declare -A R NS CPU PER LOST
printf '%-45s %8s %6s %9s %11s %7s %7s %9s %8s %7s %9s\n' "tracer" "conn/s" "ratio" \
	"ns/trans" "(rounds)" "sys ns" "misses" "crossed" "lost" "cpu s" "cpu/ev us"
for c in $cases; do
	# means over the rounds; ns/transition: all time / all transitions,
	# and the lowest and highest round
	read -r rate ratio ns lo hi sys miss x lost cpu per < <(awk -v c="$c" '$1 == c {
		n++; rate += $2; ratio += $3
		if (NF > 3) {
			t += $4; k += $5; miss += $6; cpu += $7; sys += $8; x += $9
			lost = ($10 == "-") ? "-" : lost + $10
			v = $5 ? $4 / $5 : 0
			if (lo == "" || v < lo) lo = v
			if (hi == "" || v > hi) hi = v
		}
	} END {
		if (!k) { printf "%.0f %.3f - - - - - - - - -\n", rate / n, ratio / n; exit }
		printf "%.0f %.3f %.0f %.0f %.0f %.0f %d %d %s %.2f %s\n", rate / n, ratio / n,
			k ? t / k : 0, lo, hi, k ? sys / k : 0, miss, x, lost, cpu,
			x ? sprintf("%.3f", cpu * 1e6 / x) : "-"
	}' "$TMP"/round.*)
	R[$c]=$ratio
	if [ "$c" = none ]; then
		printf '%-45s %8s %6s\n' "$(label none)" "$rate" "$ratio"
		continue
	fi
	NS[$c]=$ns
	LOST[$c]=$lost
	CPU[$c]=$cpu
	PER[$c]=$per
	printf '%-45s %8s %6s %9s %11s %7s %7s %9s %8s %7s %9s\n' "$(label "$c")" "$rate" "$ratio" \
		"$ns" "$lo-$hi" "$sys" "$miss" "$x" "$lost" "$cpu" "$per"
done

# target LABEL VALUE OP LIMIT: one line of the final table
target() {
	local ok
	ok=$(awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN {
		if (v == "-" || v == "") { print "MISSED"; exit }
		r = (op == "<=") ? v <= l : (op == ">=") ? v >= l : (op == "<") ? v < l : v == l
		print r ? "met" : "MISSED" }')
	printf '%-58s %10s %3s %-10s %s\n' "$1" "$2" "$3" "$4" "$ok"
}
f=${NS[floor]}
echo
printf '%-58s %10s %3s %-10s %s\n' "target" "measured" "" "limit" ""
target "non-matching ns/transition <= 2x floor ($f ns)" "${NS[nomatch]}" "<=" "$((2 * f))"
target "every-transition ns/transition <= 3x floor" "${NS[every]}" "<=" "$((3 * f))"
target "non-matching ratio >= 0.95 x floor's (${R[floor]})" "${R[nomatch]}" ">=" \
	"$(awk -v r="${R[floor]}" 'BEGIN {printf "%.3f", 0.95 * r}')"
target "events lost, every transition" "${LOST[every]}" "==" 0
target "user-space CPU per crossed event, every transition (us)" "${PER[every]}" "<" 1
target "user-space CPU per crossed event, shipped pack (us)" "${PER[shipped]}" "<" 1

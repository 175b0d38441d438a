#!/bin/bash
# Loopback connection churn with and without tracers, all cases in one run.
#   bench/bpf_churn.sh [BUILD_DIR] [CONNECTIONS]
# Needs root, a build with tsguard and tsg_bpf_churn (bench/CMakeLists.txt),
# bpftool, bpftrace (the counting floor) and, if installed, /usr/sbin/tcpstates
# (libbpf-tools). Each case runs in its own network namespace (unshare -n),
# which goes away with its processes.
#
# The churn is the fast kind (bench/churn.c): clients bound round-robin to
# 127.0.0.2-251, the server closes first, so no connect searches for a free
# port. For every case it prints conn/s and the ratio to untraced, the cost of
# the tracer's BPF programs per transition (bpf_stats: run_time_ns summed over
# its programs / transitions run on inet_sock_set_state), their recursion
# misses (transitions the kernel skipped), events lost, and the tracer's
# user-space CPU (utime+stime from /proc/PID/stat over the churn), also per
# event that crossed to user space. A final table puts each figure next to
# its target and says MISSED where it is.
set -euo pipefail

# the tracers' programs on inet_sock_set_state, and tsguard's on the ends of
# timewait sockets (timer_expire_entry, kfree_skb: bpf/tsguard_tw.bpf.h), whose
# cost is counted in its ns per transition too
PAT='set_state|inet_sock_set_s|tsg_tw_'

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

# pstats IDS...: "run_time_ns_sum transitions recursion_misses_sum": the time of
# all of them; transitions: the most runs of a program on inet_sock_set_state
# (the timewait programs run on other events, counted in the time only)
pstats() {
	local id
	for id in "$@"; do bpftool prog show id "$id" -j; echo; done | python3 -c '
import json, re, sys
t = c = m = 0
for line in sys.stdin:
    if line.strip():
        p = json.loads(line)
        t += p.get("run_time_ns", 0)
        if re.search(r"set_state|inet_sock_set_s", p.get("name", "")):
            c = max(c, p.get("run_cnt", 0))
        m += p.get("recursion_misses", 0)
print(t, c, m)'
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
			'{print $4-$1, $5-$2, $6-$3, ($8-$7)/hz}' > "$TMP/$name.stats"
	fi
	exit 0
fi

BUILD=${1:-build}
N=${2:-200000}
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

STATES="ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT1 FIN_WAIT2 TIME_WAIT CLOSE CLOSE_WAIT LAST_ACK LISTEN CLOSING"
mkdir "$TMP/nomatch" "$TMP/every" "$TMP/shipped" "$TMP/cgate"
cp "$HERE"/rules/*.yaml "$TMP/shipped/"
chmod 755 "$TMP" "$TMP"/nomatch "$TMP"/every "$TMP"/shipped "$TMP"/cgate
cat > "$TMP/nomatch/r.yaml" << 'Y'
rules:
  - name: https-connect-fails
    match: {rport: 443}
    when: {from: SYN_SENT, to: CLOSE}
Y
# count rules on every state and rate rules from every state: every
# transition crosses to user space; no threshold is ever reached
{
	echo "rules:"
	for s in $STATES; do
		[ "$s" = CLOSE ] && continue
		echo "  - name: many-$(echo "$s" | tr 'A-Z_' 'a-z-')"
		echo "    when: {state: $s, count_above: 100000000, by: comm}"
	done
	echo "  - name: fast-leaves"
	echo "    when: {from: [$(echo "$STATES" | tr ' ' ',')], rate_above: 1000000000, per: 1s, by: comm}"
} > "$TMP/every/r.yaml"

# the every-transition rules, each only in a container the churn is not in:
# the cgroup gate keeps all of it in the kernel (docs/kernel.md)
sed 's/^    when:/    match: {container: 0123456789ab0123456789ab0123456789ab0123456789ab0123456789ab0123}\n    when:/' \
	"$TMP/every/r.yaml" > "$TMP/cgate/r.yaml"

run() { unshare -n "$SELF" --inner "$@"; }
cases="none floor nomatch every cgate shipped"
run none
run floor bpftrace -e 'tracepoint:sock:inet_sock_set_state { @n = count(); }'
run nomatch "$TSG" -r "$TMP/nomatch"
run every "$TSG" -r "$TMP/every"
run cgate "$TSG" -r "$TMP/cgate"
run shipped "$TSG" -r "$TMP/shipped" -o json
if [ -x /usr/sbin/tcpstates ]; then
	run tcpstates /usr/sbin/tcpstates
	cases="$cases tcpstates"
fi

rate() { awk '{print $6}' "$TMP/$1.out"; }
# crossed NAME: events the tracer took in user space; lost NAME
crossed() {
	case $1 in
	floor) echo 0 ;;
	tcpstates) grep -c . "$TMP/$1.tracer" || true ;;
	*) grep -h 'stopping:' "$TMP/$1.tracer" | sed 's/.* \([0-9]*\) sent.*/\1/' || echo - ;;
	esac
}
lost() {
	case $1 in
	floor) echo - ;;
	tcpstates) grep -ho 'lost [0-9]* events' "$TMP/$1.tracer" |
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

base=$(rate none)
declare -A R NS CPU PER LOST
echo "untraced churn: $(cat "$TMP/none.out") ($N connections, 250 client addresses)"
printf '%-45s %8s %6s %9s %7s %9s %8s %7s %9s\n' "tracer" "conn/s" "ratio" \
	"ns/trans" "misses" "crossed" "lost" "cpu s" "cpu/ev us"
for c in $cases; do
	R[$c]=$(awk -v a="$(rate "$c")" -v b="$base" 'BEGIN {printf "%.3f", a / b}')
	if [ "$c" = none ]; then
		printf '%-45s %8s %6s\n' "$(label none)" "$base" "${R[$c]}"
		continue
	fi
	read -r rt cnt miss cpu < "$TMP/$c.stats"
	NS[$c]=$(awk -v t="$rt" -v n="$cnt" 'BEGIN {printf "%.0f", n ? t / n : 0}')
	x=$(crossed "$c")
	LOST[$c]=$(lost "$c")
	CPU[$c]=$cpu
	PER[$c]=$(awk -v s="$cpu" -v n="$x" 'BEGIN {if (n) printf "%.3f", s * 1e6 / n; else print "-"}')
	printf '%-45s %8s %6s %9s %7s %9s %8s %7s %9s\n' "$(label "$c")" "$(rate "$c")" \
		"${R[$c]}" "${NS[$c]}" "$miss" "$x" "${LOST[$c]}" "$cpu" "${PER[$c]}"
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

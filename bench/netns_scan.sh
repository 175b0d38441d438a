#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The cost of tsguard's scans with many network namespaces (docs/performance.md).
#
#   sudo flock /tmp/tsg-root-tests.lock bench/netns_scan.sh [build/tsguard]
#
# Makes NS namespaces (default 100, `ip netns add tsgb-N`) with PER TIME_WAIT
# sockets each (default 2,000: loopback connections the server closes
# first), starts tsguard on the host with a TIME_WAIT count rule `by: netns`
# (so every namespace's TIME_WAIT sockets are followed), and prints:
#   - the snapshot at start: sockets, namespaces, time of the full pass;
#   - the TIME_WAIT exit scans (one iter/tcp pass in each namespace that has
#     followed sockets, every second): count, median and max time;
#   - a reload's snapshot (SIGHUP): time of the second full pass;
#   - tsguard's CPU (user + system) over MEASURE_S seconds (default 60) while
#     the sockets expire, as a percentage of one core.
# Everything it makes is removed on exit, also on failure or ^C.
set -euo pipefail

TSG=${1:-build/tsguard}
NS=${NS:-100}
PER=${PER:-2000}
MEASURE_S=${MEASURE_S:-60}
PREFIX=tsgb
TMP=$(mktemp -d /tmp/tsg-netns-bench.XXXXXX)
TSG_PID=

cleanup() {
	if [ -n "$TSG_PID" ] && kill -0 "$TSG_PID" 2>/dev/null; then
		kill -INT "$TSG_PID" 2>/dev/null || true
		wait "$TSG_PID" 2>/dev/null || true
	fi
	for i in $(seq 1 "$NS"); do
		ip netns del "$PREFIX-$i" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 77; }
[ -x "$TSG" ] || { echo "no tsguard binary at $TSG" >&2; exit 2; }

# one namespace: lo up, no TIME_WAIT reuse, PER server-closed connections
cat >"$TMP/mktw.py" <<'EOF'
import socket, sys
n = int(sys.argv[1])
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(128)
port = ls.getsockname()[1]
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", port))
    s, _ = ls.accept()
    s.close()  # the server closes first: its side enters TIME_WAIT
    c.close()
EOF

echo "# $NS namespaces, $PER TIME_WAIT sockets each"
for i in $(seq 1 "$NS"); do
	ip netns del "$PREFIX-$i" 2>/dev/null || true
	ip netns add "$PREFIX-$i"
	ip -n "$PREFIX-$i" link set lo up
	ip netns exec "$PREFIX-$i" sysctl -qw net.ipv4.tcp_tw_reuse=0
done

mkdir -m 0700 "$TMP/rules"
cat >"$TMP/rules/tw.yaml" <<'EOF'
rules:
  - name: tw-per-namespace
    when: {state: TIME_WAIT, count_above: 1000000, by: netns}
EOF

t0=$(date +%s.%N)
for i in $(seq 1 "$NS"); do
	ip netns exec "$PREFIX-$i" python3 "$TMP/mktw.py" "$PER" &
	if (( i % 8 == 0 )); then wait; fi
done
wait
t1=$(date +%s.%N)
total=0
for i in 1 $((NS / 2)) "$NS"; do
	n=$(ip netns exec "$PREFIX-$i" ss -Htan state time-wait | wc -l)
	echo "# $PREFIX-$i: $n TIME_WAIT (ss)"
done
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "# made in %.1f s\n", b - a }'

"$TSG" -r "$TMP/rules" -v --control none >"$TMP/out" 2>"$TMP/err" &
TSG_PID=$!
for _ in $(seq 1 300); do
	grep -q "watching:" "$TMP/err" && break
	kill -0 "$TSG_PID" || { cat "$TMP/err"; exit 1; }
	sleep 0.1
done
grep "capture: snapshot:" "$TMP/err" | sed 's/^.*capture: /start: /'

clk=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$TSG_PID/stat"; }
sleep 3
kill -HUP "$TSG_PID"
for _ in $(seq 1 300); do
	[ "$(grep -c "capture: snapshot:" "$TMP/err")" -ge 2 ] && break
	sleep 0.1
done
grep "capture: snapshot:" "$TMP/err" | tail -n 1 | sed 's/^.*capture: /reload: /'

c0=$(cpu)
w0=$(date +%s.%N)
sleep "$MEASURE_S"
c1=$(cpu)
w1=$(date +%s.%N)
awk -v c0="$c0" -v c1="$c1" -v w0="$w0" -v w1="$w1" -v hz="$clk" 'BEGIN {
	printf "tsguard CPU over %.0f s: %.2f s = %.1f %% of one core\n",
	       w1 - w0, (c1 - c0) / hz, 100 * (c1 - c0) / hz / (w1 - w0) }'

# the TIME_WAIT scans: time of each pass over the namespaces
grep "TIME_WAIT scan:" "$TMP/err" | sed 's/.* namespaces, \([0-9]*\) ended, \([0-9.]*\) ms.*/\2/' |
	sort -n | awk '{ v[NR] = $1; s += $1 } END {
		if (NR) printf "TIME_WAIT scans: %d, median %.1f ms, max %.1f ms, mean %.1f ms\n",
			NR, v[int((NR + 1) / 2)], v[NR], s / NR }'
grep "TIME_WAIT scan:" "$TMP/err" | head -n 1 | sed 's/^.*capture: /first scan: /'
grep -E "is gone|warn|error" "$TMP/err" | head -n 5 || true

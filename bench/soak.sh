#!/bin/sh
# Soak benchmark (not a test): CONNECTIONS loopback connections (default
# 2,000,000) through a live tsguard running the shipped rule pack. Prints,
# at the start and after every block of connections: resident memory, open
# files, tracked sockets and kernel counters (from tsguard's own /metrics);
# at the end whether anything grew past its bound and whether events were lost.
#   bench/soak.sh [BUILD_DIR] [CONNECTIONS] [BLOCK]
# Needs root; runs in its own network namespace.
set -eu
BUILD=${1:-build}
N=${2:-2000000}
BLOCK=${3:-200000}
HERE=$(cd "$(dirname "$0")/.." && pwd)
TSG=$(cd "$BUILD" && pwd)/tsguard
CHURN=$(cd "$BUILD" && pwd)/bench/tsg_bpf_churn
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 77; }
[ -x "$TSG" ] && [ -x "$CHURN" ] || { echo "build tsguard and tsg_bpf_churn first" >&2; exit 1; }
TMP=$(mktemp -d /tmp/tsg-soak-XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM
chmod 755 "$TMP"
mkdir "$TMP/rules" && cp "$HERE"/rules/*.yaml "$TMP/rules/" && chmod 755 "$TMP/rules"

cat > "$TMP/run.sh" <<S
set -eu
ip link set lo up
"$TSG" -r "$TMP/rules" -o json --metrics 127.0.0.1:9464 > "$TMP/alerts.jsonl" 2> "$TMP/tsguard.err" &
tp=\$!
sleep 2
metric() { curl -s http://127.0.0.1:9464/metrics | awk -v m="\$1" '\$1 == m { print \$2 }'; }
sample() {
  printf '%-10s %10s %8s %8s %10s %12s %12s %8s\n' "\$1" \
    "\$(awk '/VmRSS/ {print \$2}' /proc/\$tp/status)" "\$(ls /proc/\$tp/fd | wc -l)" \
    "\$(awk '/Threads/ {print \$2}' /proc/\$tp/status)" \
    "\$(metric tsguard_engine_sockets_tracked)" "\$(metric tsguard_capture_events_seen_total)" \
    "\$(metric tsguard_capture_events_sent_total)" "\$(metric tsguard_capture_events_lost_total)"
}
printf '%-10s %10s %8s %8s %10s %12s %12s %8s\n' connections rss_kib fds threads tracked seen sent lost
sleep 1
sample 0
done=0
while [ \$done -lt $N ]; do
  "$CHURN" -n $BLOCK -p 7900 > "$TMP/churn.out"
  done=\$((done + $BLOCK))
  sleep 1
  sample \$done
done
echo "churn of the last block: \$(cat "$TMP/churn.out")"
kill -INT \$tp
wait \$tp || echo "tsguard exited with \$?"
S
sh -c "unshare -n sh '$TMP/run.sh'" | tee "$TMP/table.txt"
echo "tsguard: $(grep -h 'stopping:' "$TMP/tsguard.err" | sed 's/.*stopping: //')"
echo "alerts printed: $(wc -l < "$TMP/alerts.jsonl")"
grep -v '^tsguard: info' "$TMP/tsguard.err" | head -5 || true

#!/bin/sh
# Loopback connection churn with and without tracers, one run, ratios to "none".
#   bench/bpf_churn.sh [BUILD_DIR] [CONNECTIONS]
# Needs root, a build with tsguard and tsg_bpf_churn (bench/CMakeLists.txt),
# and /usr/sbin/tcpstates (Debian libbpf-tools). Each case runs in its own
# network namespace (unshare -n), so nothing else's traffic is measured.
# The tracers are the real `tsguard` binary, live, with:
#   - a rule set that matches none of the traffic (only port 443 failures)
#   - the shipped rule pack (rules/): it does watch this traffic (every
#     connect enters SYN_SENT, every accept is a SYN_RECV, closes make
#     TIME_WAIT and CLOSE_WAIT), so most transitions cross
#   - count rules on every state: every transition crosses
#   - time-in-state rules on 8 states
set -eu
BUILD=${1:-build}
N=${2:-100000}
CHURN=$BUILD/bench/tsg_bpf_churn
TSG=$(cd "$BUILD" && pwd)/tsguard
HERE=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 77; }
[ -x "$CHURN" ] && [ -x "$TSG" ] || { echo "build tsguard and tsg_bpf_churn first" >&2; exit 1; }
TMP=$(mktemp -d /tmp/tsg-bench-XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM
mkdir "$TMP/none-match" "$TMP/every" "$TMP/shipped"
cp "$HERE"/rules/*.yaml "$TMP/shipped/"
chmod 700 "$TMP"; chmod 755 "$TMP"/none-match "$TMP"/every "$TMP"/shipped
cat > "$TMP/none-match/r.yaml" <<'Y'
rules:
  - name: https-connect-fails
    match: {rport: 443}
    when: {from: SYN_SENT, to: CLOSE}
Y
# count rules on every state: every transition crosses to user space (a count
# needs every entry and every exit; the thresholds are never reached)
{
  echo "rules:"
  for s in ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT1 FIN_WAIT2 TIME_WAIT CLOSE_WAIT LAST_ACK LISTEN CLOSING; do
    echo "  - name: many-$(echo $s | tr 'A-Z_' 'a-z-')"
    echo "    when: {state: $s, count_above: 100000000, by: comm}"
  done
} > "$TMP/every/r.yaml"
# time-in-state rules on 8 states: each entry into and leave of those states
# crosses (the engine arms and cancels a timer per socket)
mkdir "$TMP/timeonly"
{
  echo "rules:"
  for s in ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT1 FIN_WAIT2 CLOSE_WAIT LAST_ACK CLOSING; do
    echo "  - name: long-$(echo $s | tr 'A-Z_' 'a-z-')"
    echo "    when: {state: $s, longer_than: 10s}"
  done
} > "$TMP/timeonly/r.yaml"
chmod 755 "$TMP/timeonly"

# case NAME TRACER_COMMAND...: start the tracer in a fresh netns, churn, stop it
run_case() {
  name=$1; shift
  cat > "$TMP/run.sh" <<S
ip link set lo up
if [ -n "$*" ]; then
  $* > "$TMP/$name.tracer" 2>&1 &
  tp=\$!
  sleep 2
fi
$CHURN -n $N -p 7900 > "$TMP/$name.out"
if [ -n "$*" ]; then sleep 1; kill -INT \$tp; wait \$tp || true; fi
S
  unshare -n sh "$TMP/run.sh"
  awk '{print $6}' "$TMP/$name.out"
}

none=$(run_case none)
nomatch=$(run_case nomatch "$TSG -r $TMP/none-match")
shipped=$(run_case shipped "$TSG -r $TMP/shipped -o json")
every=$(run_case every "$TSG -r $TMP/every")
timeonly=$(run_case timeonly "$TSG -r $TMP/timeonly")
tcpst=$(run_case tcpstates "/usr/sbin/tcpstates")

printf '%-48s %12s %8s\n' "tracer ($N loopback connections)" "conn/s" "ratio"
for c in "none:$none" "tsguard, rules that match none of it:$nomatch" \
	 "tsguard, the shipped rule pack:$shipped" \
	 "tsguard, a rule set needing every transition:$every" \
	 "tsguard, time-in-state rules on 8 states:$timeonly" \
	 "tcpstates (libbpf-tools) to a file:$tcpst"; do
  label=${c%:*}; v=${c##*:}
  printf '%-48s %12s %8.2f\n' "$label" "$v" "$(echo "$v $none" | awk '{print $1/$2}')"
done
echo "tsguard counters (its stop line):"
for n in nomatch shipped every timeonly; do
  printf '  %-8s %s\n' "$n" "$(grep -h 'stopping:' "$TMP/$n.tracer" | sed 's/.*stopping: //')"
done
echo "tcpstates lines written: $(wc -l < "$TMP/tcpstates.tracer")"

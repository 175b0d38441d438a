#!/bin/bash
# tsguard engine benchmark (not a test). Prints:
#   - engine events/s with 1, 100 and 1,000 rules on a generated stream of
#     2M events (10% and 100% of connections going to ports rules match)
#   - events/s of one rate rule on one busy key for thresholds 10, 10,000 and
#     1,000,000 in the same run, and the ratio between them (~1.0)
#   - replay lines/s end to end (tsguard --replay on a 1M-line event file)
# Usage: bench/engine.sh [BUILD_DIR]   (default: build-bench, configured Release)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-bench}
if [ ! -x "$build/bench/engine_bench" ] || [ ! -x "$build/tsguard" ]; then
	cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTSG_BPF=OFF >/dev/null
	cmake --build "$build" -j2 --target engine_bench tsguard >/dev/null
fi
echo "== engine: events/s (one core, events generated in memory first)"
for pct in 10 100; do
	for n in 1 100 1000; do
		"$build/bench/engine_bench" "$n" 2000000 "$pct"
	done
done

echo "== rate rules: one busy key, thresholds 10, 10,000 and 1,000,000 (per: 60s)"
"$build/bench/engine_bench" rate 2000000 10 10000 1000000

echo "== replay: lines/s end to end (JSON parsing, engine, alert output to /dev/null)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/events.jsonl" <<'PY'
import json, random, sys
random.seed(1)
path = ["CLOSE", "SYN_SENT", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE"]
with open(sys.argv[1], "w") as f:
    ts = 0.0; n = 0; sk = 0
    while n < 1000000:
        sk += 1
        rport = random.choice([443, 80, 5432, 8080])
        for i in range(6):
            ts += 0.00001
            ev = {"ts": round(ts, 6), "sk": "s%d" % sk, "from": path[i], "to": path[i + 1]}
            if i == 0:
                ev.update(family="ipv4", laddr="10.0.0.2", lport=30000 + sk % 30000,
                          raddr="10.0.0.%d" % (sk % 250 + 1), rport=rport,
                          pid=1000 + sk % 50, comm="app%d" % (sk % 50), uid=1000)
            f.write(json.dumps(ev) + "\n")
            n += 1
PY
lines=$(wc -l <"$tmp/events.jsonl")
start=$(date +%s.%N)
"$build/tsguard" -q -r "$here/rules" --replay "$tmp/events.jsonl" >/dev/null
end=$(date +%s.%N)
python3 -c "import sys; l=int(sys.argv[1]); s=float(sys.argv[3])-float(sys.argv[2]); print('replay lines=%d seconds=%.3f lines_per_s=%.0f (rules: %s)' % (l, s, l/s, sys.argv[4]))" \
	"$lines" "$start" "$end" "$here/rules"

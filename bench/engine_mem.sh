#!/bin/bash
# tsguard engine memory per tracked socket (not a test). Replays N (default
# 1,000,000) sockets that connect and stay ESTABLISHED, with one count rule and
# one time rule, under /usr/bin/time -v; a run with 1,000 sockets is the
# baseline (the binary, libraries, rule set). Prints max RSS of both, bytes per
# socket and the target (150 B).
# Usage: bench/engine_mem.sh [BUILD_DIR] [SOCKETS]  (default: build-bench, Release)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-bench}
n=${2:-1000000}
if [ ! -x "$build/tsguard" ]; then
	cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTSG_BPF=OFF >/dev/null
	cmake --build "$build" -j2 --target tsguard >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/rules.yaml" <<'YAML'
rules:
  - name: many-established
    when: {state: ESTABLISHED, count_above: 100000000, by: comm}
  - name: old-established
    when: {state: ESTABLISHED, longer_than: 1h}
YAML
gen() { # FILE SOCKETS: each socket SYN_SENT then ESTABLISHED, never closed
	python3 - "$1" "$2" <<'PY'
import sys
n = int(sys.argv[2])
with open(sys.argv[1], "w") as f:
    for i in range(n):
        ts = i * 1e-6
        f.write('{"ts": %.6f, "sk": "s%d", "from": "CLOSE", "to": "SYN_SENT", "family": "ipv4", '
                '"laddr": "10.0.%d.%d", "lport": %d, "raddr": "10.1.%d.%d", "rport": 443, '
                '"pid": %d, "uid": 1000, "comm": "app%d"}\n'
                % (ts, i, (i >> 8) & 255, i & 255, 1024 + i % 60000, (i >> 16) & 255,
                   (i >> 8) & 255, 1000 + i % 50, i % 50))
        f.write('{"ts": %.6f, "sk": "s%d", "from": "SYN_SENT", "to": "ESTABLISHED"}\n'
                % (ts + 5e-7, i))
PY
}
rss_kb() { # FILE
	/usr/bin/time -v "$build/tsguard" -q -r "$tmp/rules.yaml" --replay "$1" \
		2>&1 >/dev/null | awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}'
}
gen "$tmp/base.jsonl" 1000
gen "$tmp/big.jsonl" "$n"
base=$(rss_kb "$tmp/base.jsonl")
big=$(rss_kb "$tmp/big.jsonl")
python3 -c "import sys; b, g, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]); \
print('sockets=%d max_rss_kb=%d baseline_rss_kb=%d (1000 sockets) bytes_per_socket=%.0f target=150' \
% (n, g, b, (g - b) * 1024.0 / (n - 1000)))" "$base" "$big" "$n"

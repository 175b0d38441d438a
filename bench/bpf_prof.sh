#!/bin/bash
# What each piece of tsguard's BPF programs costs under the fast churn.
#   bench/bpf_prof.sh [BUILD_DIR] [CONNECTIONS] [RULES_DIR]
# Needs root, perf, bpftool, python3, and a build with tsguard,
# tsg_bpf_churn and tsg_jit_lines (bench/CMakeLists.txt). RULES_DIR defaults
# to the every-transition rule set of bench/bpf_churn.sh. In a network
# namespace of its own: tsguard live, `perf record -a -g` over the churn,
# kernel.bpf_stats_enabled for ns per run. It prints, per program, runs and
# ns per run and per transition (bpf_stats), then for the program on
# inet_sock_set_state (copy A) where its samples go: the helpers and kernel
# functions it calls, and its own instructions by source line (the JIT's
# line table, tsg_jit_lines: a sample is charged to the line of the
# instruction it hit, which with skid is often the one after a slow load).
# perf's own cost inflates ns per run; compare shares, not times, with
# bench/bpf_churn.sh.
set -euo pipefail

if [ "${1:-}" = --inner ]; then
	shift
	TSG=$1 RULES=$2 N=$3 CHURN=$4 JL=$5 OUT=$6
	ip link set lo up
	"$TSG" -r "$RULES" > "$OUT/tracer.log" 2>&1 &
	tp=$!
	trap 'kill -INT "$tp" 2>/dev/null || true' EXIT
	sleep 2.5
	pids() { for f in /proc/"$tp"/fdinfo/*; do awk '$1 == "prog_id:" {print $2}' "$f" 2>/dev/null || true; done | sort -u; }
	snap() { for id in $(pids); do bpftool prog show id "$id" -j; echo; done; }
	snap > "$OUT/s0"
	perf record -q -a -g -o "$OUT/perf.data" -- "$CHURN" -n "$N" -p 7900 > "$OUT/churn.out" 2> /dev/null
	snap > "$OUT/s1"
	for id in $(pids); do
		n=$(bpftool prog show id "$id" -j | python3 -c 'import json, sys; print(json.load(sys.stdin)["name"])')
		"$JL" "$id" > "$OUT/jl.$n"
	done
	kill -INT "$tp"
	wait "$tp" || true
	trap - EXIT
	exit 0
fi

BUILD=${1:-build}
N=${2:-60000}
B=$(cd "$BUILD" && pwd)
HERE=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 77; }
for t in perf bpftool python3; do
	command -v "$t" > /dev/null || { echo "needs $t" >&2; exit 1; }
done
[ -x "$B/tsguard" ] && [ -x "$B/bench/tsg_bpf_churn" ] && [ -x "$B/bench/tsg_jit_lines" ] ||
	{ echo "build tsguard, tsg_bpf_churn and tsg_jit_lines first" >&2; exit 1; }
. "$HERE/bench/bench_lib.sh"
bench_stats_tmp tsg-prof
OUT=$TMP
bench_rules "${3:-}"

unshare -n "$HERE/bench/bpf_prof.sh" --inner "$B/tsguard" "$RULES" "$N" "$B/bench/tsg_bpf_churn" \
	"$B/bench/tsg_jit_lines" "$OUT"
cat "$OUT/churn.out"
grep -h 'stopping:' "$OUT/tracer.log" || true
perf script -i "$OUT/perf.data" -F ip,sym 2> /dev/null > "$OUT/samples"
python3 - "$OUT" << 'PY'
import bisect, collections, json, sys

out = sys.argv[1]


def load(f):
    d = {}
    for line in open(f):
        if line.strip():
            p = json.loads(line)
            d[p["id"]] = p
    return d


a, b = load(out + "/s0"), load(out + "/s1")
trans = max((p.get("run_cnt", 0) - a.get(i, {}).get("run_cnt", 0)
             for i, p in b.items() if "set_state" in p.get("name", "")), default=0)
print("\nprogram                   runs     ns/run  ns/transition (bpf_stats, under perf)")
for i, p in sorted(b.items()):
    dc = p.get("run_cnt", 0) - a.get(i, {}).get("run_cnt", 0)
    dt = p.get("run_time_ns", 0) - a.get(i, {}).get("run_time_ns", 0)
    if dc:
        print("%-22s %9d %9.0f %9.1f" % (p["name"], dc, dt / dc, dt / trans if trans else 0))

name = "tsg_set_state_btf"
table = []
for line in open(out + "/jl." + name):
    f = line.rstrip("\n").split(" ", 3)
    table.append((int(f[0], 16), int(f[2]), f[3].strip() if len(f) > 3 else ""))
table.sort()
addrs = [t[0] for t in table]
callee, lines = collections.Counter(), collections.Counter()
total = 0
stack = []


def flush():
    global total
    for k, fr in enumerate(stack):
        if fr[1].endswith("_" + name):
            total += 1
            if k == 0:
                callee["(its own instructions)"] += 1
                j = bisect.bisect_right(addrs, fr[0]) - 1
                while j > 0 and table[j][1] == 0:
                    j -= 1
                if j >= 0:
                    lines[(table[j][1], table[j][2][:80])] += 1
            else:
                callee[stack[k - 1][1]] += 1
            return


for line in open(out + "/samples"):
    s = line.strip()
    if not s:
        flush()
        stack = []
        continue
    f = s.split(None, 1)
    try:
        stack.append((int(f[0], 16), f[1] if len(f) > 1 else "?"))
    except ValueError:
        pass
flush()
if not total:
    sys.exit("no samples in " + name)
print("\n%s: %d samples; what it calls (share of its samples)" % (name, total))
for k, c in callee.most_common(14):
    print("%6.1f %%  %s" % (100 * c / total, k))
own = callee["(its own instructions)"]
print("\nits own instructions by source line (share of those %d samples)" % own)
for (ln, src), c in lines.most_common(16):
    print("%6.1f %%  %4d  %s" % (100 * c / own, ln, src))
PY

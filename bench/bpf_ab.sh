#!/bin/bash
# Two tsguard builds under the same churn, alternating, in one run.
#   [ROUNDS=2] bench/bpf_ab.sh BUILD_A BUILD_B [CONNECTIONS] [RULES_DIR]
# Needs root, bpftool, and tsguard in both builds (tsg_bpf_churn from
# BUILD_B). RULES_DIR defaults to the every-transition rule set
# (bench/every_rules.sh). Each run is one case of bench/bpf_churn.sh (its
# --inner mode, a network namespace of its own), tsguard with -v. Per round
# and build it prints conn/s, ns per transition (bpf_stats: the programs on
# inet_sock_set_state and the timewait ones), the syscall-exit programs per
# transition, tsguard's CPU (utime+stime over the churn), and the time of its
# scan passes (the -v log's "scan pass" lines: lowest and highest, ms).
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 BUILD_A BUILD_B [CONNECTIONS] [RULES_DIR]" >&2; exit 2; }
A=$(cd "$1" && pwd)
B=$(cd "$2" && pwd)
N=${3:-100000}
ROUNDS=${ROUNDS:-2}
HERE=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 77; }
command -v bpftool > /dev/null || { echo "needs bpftool" >&2; exit 1; }
for b in "$A" "$B"; do
	[ -x "$b/tsguard" ] || { echo "no tsguard in $b" >&2; exit 1; }
done
CHURN=$B/bench/tsg_bpf_churn
[ -x "$CHURN" ] || { echo "build tsg_bpf_churn in $B first" >&2; exit 1; }
. "$HERE/bench/bench_lib.sh"
bench_stats_tmp tsg-ab
bench_rules "${4:-}"
export TMP CHURN N

printf '%-5s %-2s %8s %9s %7s %7s %13s  %s\n' round "" conn/s ns/trans "sys ns" "cpu s" "passes ms" build
for r in $(seq "$ROUNDS"); do
	for w in A B; do
		[ "$w" = A ] && b=$A || b=$B
		unshare -n "$HERE/bench/bpf_churn.sh" --inner "$w.$r" "$b/tsguard" -v -r "$RULES"
		read -r rt cnt _ cpu sys < "$TMP/$w.$r.stats"
		passes=$({ grep -h 'scan pass' "$TMP/$w.$r.tracer" || true; } | sed 's/.*, \([0-9.]*\) ms$/\1/' |
			sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print NR ? lo "-" hi : "-"}')
		awk -v r="$r" -v w="$w" -v rate="$(awk '{print $6}' "$TMP/$w.$r.out")" -v t="$rt" \
			-v n="$cnt" -v y="$sys" -v cpu="$cpu" -v p="$passes" -v b="$b" 'BEGIN {
			printf "%-5s %-2s %8s %9.0f %7.0f %7.2f %13s  %s\n", r, w, rate,
				n ? t / n : 0, n ? y / n : 0, cpu, p, b }'
	done
done

# Sourced by the kernel benchmarks (bpf_ab.sh, bpf_prof.sh).

# bench_stats_tmp NAME: TMP, a new directory that goes at exit, with
# kernel.bpf_stats_enabled on until then (its value restored)
bench_stats_tmp() {
	TMP=$(mktemp -d "/tmp/$1-XXXXXX")
	stats_was=$(sysctl -n kernel.bpf_stats_enabled)
	trap 'sysctl -qw kernel.bpf_stats_enabled="$stats_was"; rm -rf "$TMP"' EXIT INT TERM
	sysctl -qw kernel.bpf_stats_enabled=1
	chmod 755 "$TMP"
}

# bench_rules [DIR]: RULES, DIR or else the every-transition rule set
# (every_rules.sh) in $TMP/rules
bench_rules() {
	RULES=${1:-}
	[ -n "$RULES" ] && return 0
	RULES=$TMP/rules
	mkdir "$RULES"
	chmod 755 "$RULES"
	bash "$(dirname "${BASH_SOURCE[0]}")/every_rules.sh" > "$RULES/r.yaml"
}

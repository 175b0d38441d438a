#!/bin/bash
# dist.unit_security: the systemd unit's exposure, as rated by
# `systemd-analyze security --offline=true`, must stay at 3.5 or below, for
# the shipped unit (dist/tsguard.service) and for the one cmake installs
# (BUILD/dist/tsguard.service, paths rewritten for the build's prefix).
# Also `systemd-analyze verify` on each, with the tsguard binary path pointed
# at the built binary (verify insists that ExecStart= names an executable)
# and --man=no (the man pages are not installed here).
#
#   tests/dist/unit_security.sh TSGUARD UNIT...
#
# Without systemd-analyze: exit 77 (skip), or fail when CI=true.
set -u
max=3.5
tsguard=$(readlink -f "$1")
shift
if ! command -v systemd-analyze >/dev/null; then
	if [ "${CI:-}" = true ]; then
		echo "FAIL: systemd-analyze not found (package systemd)" >&2
		exit 1
	fi
	echo "SKIP: systemd-analyze not found (package systemd)" >&2
	exit 77
fi
tmp=$(mktemp -d /tmp/tsg-unit.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
rc=0
for unit in "$@"; do
	[ -f "$unit" ] || { echo "FAIL: $unit: no such file"; rc=1; continue; }
	out=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1)
	level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	if [ -z "$level" ]; then
		printf '%s\n' "$out"
		echo "FAIL: $unit: no exposure level in the output"
		rc=1
		continue
	fi
	if awk -v l="$level" -v m="$max" 'BEGIN { exit !(l > m) }'; then
		printf '%s\n' "$out" | grep '✗'
		echo "FAIL: $unit: exposure $level, more than $max"
		rc=1
	else
		echo "ok: $unit: exposure $level (at most $max)"
	fi
	# verify a copy named tsguard.service whose commands name the built binary
	sed -E "s#^(Exec[A-Za-z]*=)([-@:+!]*)/[^ ]*/tsguard( |\$)#\\1\\2$tsguard\\3#" "$unit" \
		>"$tmp/tsguard.service"
	if vout=$(systemd-analyze verify --man=no "$tmp/tsguard.service" 2>&1) && [ -z "$vout" ]; then
		echo "ok: $unit: systemd-analyze verify"
	else
		printf '%s\n' "$vout"
		echo "FAIL: $unit: systemd-analyze verify"
		rc=1
	fi
done
exit $rc

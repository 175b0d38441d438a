#!/bin/bash
# dist.fleet_rules: dist/fleet/tsguard-rules.yaml is a valid rule file and
# sends to both Alertmanagers of the cluster.
#
#   tests/dist/fleet_rules.sh TSGUARD SOURCE_DIR
#
# The file is checked as 05-fleet.yaml in a directory of its own (a copy in
# a temporary directory: as root tsguard refuses rule files others could
# change, and a checkout need not be root's). Not beside the shipped rule
# pack: three of its rule names are the pack's (refused-connect-storm,
# reset-storm, close-wait-pileup), and the loader refuses duplicate names.
# Then a dry run (`-n --replay`) of one SYN_SENT socket to an internal address shows
# that its webhook POSTs each notification to both am-1 and am-2.
set -u
tsguard=$1
src=$(readlink -f "$2")
fleet=$src/dist/fleet/tsguard-rules.yaml
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d /tmp/tsg-fleet.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/alone"
install -m 0644 "$fleet" "$tmp/alone/05-fleet.yaml" || fail "cannot copy $fleet"

out=$("$tsguard" --check -r "$tmp/alone" 2>&1) || fail "tsguard --check -r dist/fleet/tsguard-rules.yaml: $out"
printf '%s\n' "$out" | grep -q ' 2 action(s): OK' ||
	fail "dist/fleet/tsguard-rules.yaml: not its 2 actions (syslog, alertmanager): $out"
echo "ok: tsguard --check -r dist/fleet/tsguard-rules.yaml: $out"

printf '{"ts": 1, "sk": "0x1", "family": "ipv4", "laddr": "10.0.0.2", "lport": 40001, "raddr": "10.0.0.9", "rport": 80, "comm": "curl", "from": "CLOSE", "to": "SYN_SENT"}\n' \
	>"$tmp/events.jsonl"
out=$("$tsguard" -n -r "$tmp/alone" --replay "$tmp/events.jsonl" --until 5 --control none 2>&1) ||
	fail "dry run: $out"
for am in am-1 am-2; do
	printf '%s\n' "$out" | grep -q "^dry-run: action alertmanager (webhook) POST: \"http://$am:9093/api/v2/alerts\"" ||
		fail "the alertmanager action does not POST to $am: $out"
done
echo "ok: a notification goes to am-1 and am-2"

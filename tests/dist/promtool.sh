#!/bin/bash
# dist.promtool: the Prometheus and Alertmanager example files are valid.
#
#   tests/dist/promtool.sh SOURCE_DIR
#
#   dist/fleet/tsguard-alerts.yml    promtool check rules
#   dist/fleet/prometheus.yml        promtool check config, on a copy whose
#                                    file_sd path (/etc/prometheus/targets/)
#                                    points at dist/fleet/targets/, so that the
#                                    example target files are checked too; the
#                                    copy sits beside tsguard-alerts.yml (rule_files
#                                    are relative to the config file)
#   dist/fleet/alertmanager.yml      amtool check-config (package
#                                    prometheus-alertmanager)
#   dist/kubernetes/prometheus-scrape.yml  a scrape_configs fragment: promtool
#                                    check config. Debian's promtool is built
#                                    without kubernetes_sd_configs; then the
#                                    job is checked with static_configs in its
#                                    place (relabelling and the rest), and the
#                                    test says so.
# Without promtool or amtool: exit 77 (skip), or fail when CI=true.
set -u
src=$(readlink -f "$1")
fleet=$src/dist/fleet
kube=$src/dist/kubernetes
for t in promtool amtool python3; do
	if ! command -v "$t" >/dev/null; then
		if [ "${CI:-}" = true ]; then
			echo "FAIL: $t not found (packages prometheus, prometheus-alertmanager, python3)" >&2
			exit 1
		fi
		echo "SKIP: $t not found (packages prometheus, prometheus-alertmanager, python3)" >&2
		exit 77
	fi
done
tmp=$(mktemp -d /tmp/tsg-promtool.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
rc=0
run() { # run WHAT CMD...: run, show the output, count a failure
	local what=$1 out
	shift
	if out=$("$@" 2>&1); then
		echo "ok: $what"
	else
		printf '%s\n' "$out"
		echo "FAIL: $what"
		rc=1
		return 1
	fi
}

run "promtool check rules dist/fleet/tsguard-alerts.yml" \
	promtool check rules "$fleet/tsguard-alerts.yml"

grep -q "/etc/prometheus/targets/" "$fleet/prometheus.yml" ||
	{ echo "FAIL: prometheus.yml no longer reads /etc/prometheus/targets/ (update this test)"; rc=1; }
sed "s#/etc/prometheus/targets/#$fleet/targets/#g" "$fleet/prometheus.yml" >"$tmp/prometheus.yml"
cp "$fleet/tsguard-alerts.yml" "$tmp/"
run "promtool check config dist/fleet/prometheus.yml (with dist/fleet/targets/)" \
	promtool check config "$tmp/prometheus.yml"
# the check must have read the example targets, not found nothing
if promtool check config "$tmp/prometheus.yml" 2>&1 | grep -q 'does not exist'; then
	echo "FAIL: promtool found no file_sd target files in $fleet/targets/"
	rc=1
fi
# and the Alertmanagers of the cluster are both there
for am in am-1:9093 am-2:9093; do
	grep -q "'$am'" "$fleet/prometheus.yml" ||
		{ echo "FAIL: prometheus.yml does not send to $am"; rc=1; }
done

(cd "$fleet" && run "amtool check-config dist/fleet/alertmanager.yml" \
	amtool check-config alertmanager.yml) || rc=1

frag=$kube/prometheus-scrape.yml
if out=$(promtool check config "$frag" 2>&1); then
	echo "ok: promtool check config dist/kubernetes/prometheus-scrape.yml"
elif printf '%s\n' "$out" | grep -q 'field kubernetes_sd_configs not found'; then
	echo "note: this promtool has no kubernetes_sd_configs; checking the job with static_configs instead"
	python3 - "$frag" "$tmp/kube.yml" <<'EOF' || rc=1
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
jobs = cfg.get("scrape_configs") or sys.exit("FAIL: no scrape_configs in " + sys.argv[1])
for j in jobs:
    if "kubernetes_sd_configs" not in j:
        continue
    for sd in j.pop("kubernetes_sd_configs"):
        if sd.get("role") not in ("pod", "node", "service", "endpoints", "endpointslice", "ingress"):
            sys.exit("FAIL: kubernetes_sd_configs role %r is not a Kubernetes SD role" % sd.get("role"))
    j["static_configs"] = [{"targets": ["placeholder:9464"]}]
yaml.safe_dump(cfg, open(sys.argv[2], "w"))
EOF
	run "promtool check config dist/kubernetes/prometheus-scrape.yml (static_configs for kubernetes_sd_configs)" \
		promtool check config "$tmp/kube.yml"
else
	printf '%s\n' "$out"
	echo "FAIL: promtool check config dist/kubernetes/prometheus-scrape.yml"
	rc=1
fi
exit $rc

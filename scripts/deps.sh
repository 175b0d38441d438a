#!/bin/bash
# Installs the Debian packages tsguard builds, tests and runs with
# (dpkg-dev debhelper lintian fakeroot: the Debian package, tests/dist;
# systemd: systemd-analyze; strace: tests/dist/syscalls.sh).
# Skips the install when everything is present already.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang llvm libclang-rt-14-dev
      libbpf-dev bpftool libyaml-dev libpcre2-dev libjansson-dev
      libcurl4-openssl-dev libmicrohttpd-dev libcmocka-dev libcap-dev
      iproute2 procps python3 rsyslog prometheus prometheus-alertmanager
      libbpf-tools bpftrace nftables
      dpkg-dev debhelper lintian fakeroot systemd strace curl python3-yaml)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/deps.sh: missing packages: ${missing[*]}; run as root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
# the packaged daemons are not wanted running: tests start their own
for s in prometheus prometheus-alertmanager; do
	if command -v systemctl >/dev/null && systemctl is-active --quiet "$s" 2>/dev/null; then
		systemctl stop "$s" || true
	fi
	pkill -x "$s" 2>/dev/null || true
done

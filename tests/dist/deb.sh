#!/bin/bash
# dist.deb: the Debian package builds, passes lintian and holds what it must.
#
#   tests/dist/deb.sh SOURCE_DIR [OUT_DIR]
#
# Copies SOURCE_DIR (the working tree as it is, uncommitted changes included;
# without .git and build directories) to a temporary directory, runs
# `dpkg-buildpackage -b -us -uc` there, then
#   - `lintian --fail-on error` on the .changes (and so on the .deb),
#   - `dpkg-deb -c`: /usr/sbin/tsguard, the unit in /lib/systemd/system, both
#     man pages, the rule pack in /etc/tsguard/rules.d (root:root, files 0644,
#     directories 0755), the docs in /usr/share/doc/tsguard,
#   - `dpkg-deb -I`: the conffiles list holds every rule file; Depends names
#     libbpf; the maintainer scripts enable the unit, start it only where
#     systemd runs, never stop it on upgrade and reload it instead.
# With OUT_DIR (ctest: BUILD_DIR/dist/deb), the checked package is copied
# there and its path written to OUT_DIR/deb.path, for dist.deb_use (which
# installs it); both are removed first, so a failed build leaves none behind.
# Takes a few minutes (a full build). Without dpkg-buildpackage, dh, lintian
# or fakeroot: exit 77 (skip), or fail when CI=true.
set -u
src=$(readlink -f "$1")
out=${2:-}
fail() { echo "FAIL: $*" >&2; exit 1; }
for t in dpkg-buildpackage dh lintian fakeroot dpkg-deb; do
	if ! command -v "$t" >/dev/null; then
		if [ "${CI:-}" = true ]; then
			fail "$t not found (scripts/deps.sh installs dpkg-dev debhelper lintian fakeroot)"
		fi
		echo "SKIP: $t not found (scripts/deps.sh installs dpkg-dev debhelper lintian fakeroot)" >&2
		exit 77
	fi
done

if [ -n "$out" ]; then
	mkdir -p "$out" || fail "cannot create $out"
	out=$(readlink -f "$out")
	rm -f "$out/deb.path" "$out"/tsguard_*.deb
fi

tmp=$(mktemp -d /tmp/tsg-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/tsguard"
tar -C "$src" --exclude=./.git --exclude='./build' --exclude='./build-*' --exclude='./build_*' \
	--exclude='./obj-*' --exclude=./debian/build --exclude=./debian/tsguard \
	--exclude=./debian/.debhelper -cf - . | tar -C "$tmp/tsguard" -xf - ||
	fail "cannot copy $src"

echo "dpkg-buildpackage -b -us -uc in $tmp/tsguard (log: build.log)"
if ! (cd "$tmp/tsguard" && DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" \
	dpkg-buildpackage -b -us -uc) >"$tmp/build.log" 2>&1; then
	tail -n 60 "$tmp/build.log"
	fail "dpkg-buildpackage failed"
fi
deb=$(ls "$tmp"/tsguard_*.deb 2>/dev/null | head -n 1)
changes=$(ls "$tmp"/tsguard_*.changes 2>/dev/null | head -n 1)
[ -n "$deb" ] && [ -n "$changes" ] || fail "no ../tsguard_*.deb or .changes: $(ls "$tmp")"

echo "lintian --fail-on error $(basename "$changes")"
# lintian warns when run as root; that line is not about the package
lintian --fail-on error --display-info "$changes" 2>&1 | grep -v 'running with root privileges' ||
	true
lintian --fail-on error "$changes" >/dev/null 2>&1 || fail "lintian reports errors"

list=$(dpkg-deb -c "$deb") || fail "dpkg-deb -c $deb"
has() { # has MODE PATH: a line of dpkg-deb -c with this mode, root/root, and path
	printf '%s\n' "$list" | awk -v m="$1" -v p="./$2" \
		'$1 == m && $2 == "root/root" && $NF == p { f = 1 } END { exit !f }' ||
		fail "$(basename "$deb") has no $2 ($1 root/root)"
}
has -rwxr-xr-x usr/sbin/tsguard
has -rw-r--r-- lib/systemd/system/tsguard.service
has -rw-r--r-- usr/share/man/man8/tsguard.8.gz
has -rw-r--r-- usr/share/man/man5/tsguard-rules.5.gz
has -rw-r--r-- usr/share/doc/tsguard/copyright
has -rw-r--r-- usr/share/doc/tsguard/operations.md.gz
has drwxr-xr-x etc/tsguard/
has drwxr-xr-x etc/tsguard/rules.d/
n=0
for r in "$src"/rules/*.yaml; do
	has -rw-r--r-- "etc/tsguard/rules.d/$(basename "$r")"
	n=$((n + 1))
done
[ "$n" -gt 0 ] || fail "no rules/*.yaml in $src"
# nothing under /etc/tsguard may be writable by group or others
printf '%s\n' "$list" | awk '$NF ~ /^\.\/etc\/tsguard/ && substr($1, 6, 1) == "w" || \
	$NF ~ /^\.\/etc\/tsguard/ && substr($1, 9, 1) == "w" { print; f = 1 } END { exit f }' ||
	fail "files under /etc/tsguard writable by group or others"

ctl="$tmp/control"
mkdir "$ctl"
dpkg-deb -e "$deb" "$ctl" || fail "dpkg-deb -e $deb"
dpkg-deb -I "$deb" >/dev/null || fail "dpkg-deb -I $deb"
for r in "$src"/rules/*.yaml; do
	grep -qx "/etc/tsguard/rules.d/$(basename "$r")" "$ctl/conffiles" ||
		fail "conffiles lacks /etc/tsguard/rules.d/$(basename "$r"): $(cat "$ctl/conffiles")"
done
dpkg-deb -f "$deb" Depends | grep -q 'libbpf' || fail "Depends lacks libbpf: $(dpkg-deb -f "$deb" Depends)"
dpkg-deb -f "$deb" Version | grep -qx '0.1.0-1' || fail "version is not 0.1.0-1"
grep -q "deb-systemd-helper enable 'tsguard.service'" "$ctl/postinst" ||
	fail "postinst does not enable the unit"
grep -q 'deb-systemd-invoke start' "$ctl/postinst" || fail "postinst does not start the unit"
grep -q 'try-reload-or-restart tsguard.service' "$ctl/postinst" ||
	fail "postinst does not reload the unit on upgrade"
grep -q 'deb-systemd-invoke restart' "$ctl/postinst" && fail "postinst restarts the unit"
grep -q '/run/systemd/system' "$ctl/postinst" || fail "postinst starts without checking for systemd"
[ ! -e "$ctl/preinst" ] || ! grep -q 'deb-systemd-invoke stop' "$ctl/preinst" ||
	fail "preinst stops the unit on upgrade"
grep -q '"$1" = remove' "$ctl/prerm" || fail "prerm stops the unit on more than removal"
grep -q '^ExecReload=' <(dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./lib/systemd/system/tsguard.service) ||
	fail "the unit has no ExecReload="
if [ -n "$out" ]; then
	cp "$deb" "$out/" || fail "cannot copy $deb to $out"
	echo "$out/$(basename "$deb")" >"$out/deb.path" || fail "cannot write $out/deb.path"
	echo "package kept for dist.deb_use: $out/$(basename "$deb")"
fi
echo "ok: $(basename "$deb"): lintian clean of errors; binary, unit, man pages, docs, rule pack as conffiles; enabled, reloaded on upgrade"

#!/bin/bash
# dist.deb_use: a newcomer installs the package, edits a rule, runs
# `tsguard ctl reload` and sees the result.
#
#   tests/dist/deb_use.sh DEB_DIR
#
# Installs the package dist.deb built (its path in DEB_DIR/deb.path; ctest
# runs dist.deb first, a fixture) with `dpkg -i`, for real, then:
#   - dpkg says it is installed; the postinst did not fail although systemd
#     does not run here, and enabled the unit (multi-user.target.wants);
#   - every /etc/tsguard/rules.d/*.yaml is a conffile, root:root, mode 0644;
#   - `/usr/sbin/tsguard --check -r /etc/tsguard/rules.d` exits 0;
#   - the man pages are installed (zcat, and `man -l` where man exists);
#   - `systemd-analyze verify --man=no` of the installed unit is clean;
#   - tsguard runs as the unit runs it (`-r /etc/tsguard/rules.d`), with
#     `--replay` of a FIFO the test writes instead of the capture and the
#     default `--control /run/tsguard/control`; a rule file added to
#     /etc/tsguard/rules.d and `tsguard ctl reload` give `reloaded: N+1
#     rules`, `tsguard ctl status` shows N+1; the new rule fires on an event;
#     a broken rule file: `ctl reload` exits 2 with FILE:LINE:COL, `ctl
#     status` still answers with N+1 rules, and the new rule still fires;
#     closing the FIFO stops it (exit 0) and the socket file is gone;
#   - `dpkg --purge tsguard` removes the binary and /etc/tsguard.
# The purge also runs from the exit trap, when a step fails.
#
# Safe on a machine that is not throwaway: skips (exit 77) when not root,
# without dpkg, when a tsguard package other than this one is installed, when
# /usr/sbin/tsguard or /etc/tsguard exist without the package (a `cmake
# --install`), or when a tsguard answers on /run/tsguard/control. Without
# the package (dist.deb skipped or failed) it skips too. With CI=true each of
# these fails instead.
set -u
dir=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() {
	[ "${CI:-}" = true ] && fail "$*"
	echo "SKIP: $*" >&2
	exit 77
}
[ "$(id -u)" = 0 ] || skip "not root (dpkg -i needs it)"
for t in dpkg dpkg-deb dpkg-query mkfifo zcat; do
	command -v "$t" >/dev/null || skip "$t not found"
done
deb=$(cat "$dir/deb.path" 2>/dev/null) && [ -f "$deb" ] ||
	skip "no package in $dir/deb.path (dist.deb builds it)"

rules=/etc/tsguard/rules.d
sock=/run/tsguard/control
bin=/usr/sbin/tsguard
installed() { dpkg-query -W -f='${Status}' tsguard 2>/dev/null | grep -q ' installed$'; }
# the md5sums of an installed tsguard equal the package's: it is this one,
# left behind by an earlier run that could not purge it
same_as_deb() {
	local t rc
	t=$(mktemp -d /tmp/tsg-deb-use.XXXXXX) || return 1
	dpkg-deb -e "$deb" "$t" && cmp -s "$t/md5sums" /var/lib/dpkg/info/tsguard.md5sums
	rc=$?
	rm -rf "$t"
	return $rc
}
st=$(dpkg-query -W -f='${Status}' tsguard 2>/dev/null)
if [ -n "$st" ] && [ "$st" != "unknown ok not-installed" ]; then
	same_as_deb || skip "another tsguard package is installed ($(dpkg-query -W -f='${Version} ${Status}' tsguard))"
elif [ -e "$bin" ] || [ -e /etc/tsguard ]; then
	skip "$bin or /etc/tsguard exist without the package (an install from the tree?)"
fi
if [ -S "$sock" ] && command -v "$bin" >/dev/null && "$bin" ctl status >/dev/null 2>&1; then
	skip "a tsguard answers on $sock"
fi

tmp=$(mktemp -d /tmp/tsg-deb-use.XXXXXX)
pid=
run_dir_made=
[ -e /run/tsguard ] || run_dir_made=1
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	exec 3>&-
	rm -f "$rules/50-local.yaml" "$rules/60-broken.yaml"
	if dpkg-query -W tsguard >/dev/null 2>&1; then
		dpkg --purge tsguard >"$tmp/purge.log" 2>&1 || cat "$tmp/purge.log" >&2
	fi
	[ -n "$run_dir_made" ] && rm -rf /run/tsguard
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "dpkg -i $(basename "$deb")"
dpkg -i "$deb" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "dpkg -i failed"; }
installed || fail "dpkg does not say tsguard is installed: $(dpkg-query -W -f='${Status}' tsguard)"
if [ -d /run/systemd/system ]; then
	echo "note: systemd runs here; the postinst started the unit"
else
	echo "ok: the postinst succeeded where systemd does not run (PID 1: $(ps -p 1 -o comm=))"
fi
[ -L /etc/systemd/system/multi-user.target.wants/tsguard.service ] ||
	fail "the unit was not enabled (no multi-user.target.wants/tsguard.service)"
echo "ok: installed and enabled"

# the rule pack: conffiles, root's, not writable by others; and valid
conff=$(dpkg-query -W -f='${Conffiles}\n' tsguard)
n=0
for f in "$rules"/*.yaml; do
	[ -f "$f" ] || fail "no rule files in $rules"
	printf '%s\n' "$conff" | awk -v p="$f" '$1 == p { f = 1 } END { exit !f }' ||
		fail "$f is not a conffile: $conff"
	[ "$(stat -c '%U:%G %a' "$f")" = "root:root 644" ] ||
		fail "$f is $(stat -c '%U:%G %a' "$f"), not root:root 644"
	n=$((n + 1))
done
echo "ok: $n rule files in $rules, conffiles, root:root 0644"
"$bin" --check -r "$rules" >"$tmp/check.log" 2>&1 || { cat "$tmp/check.log"; fail "$bin --check -r $rules"; }
echo "ok: $(cat "$tmp/check.log")"

for m in /usr/share/man/man8/tsguard.8.gz /usr/share/man/man5/tsguard-rules.5.gz; do
	zcat "$m" | grep -q '^\.TH ' || fail "$m is not a man page"
	if command -v man >/dev/null; then
		MANWIDTH=80 man -l "$m" 2>/dev/null | grep -qi 'tsguard' || fail "man -l $m shows nothing"
	fi
done
echo "ok: man pages installed"
if command -v systemd-analyze >/dev/null; then
	v=$(systemd-analyze verify --man=no /lib/systemd/system/tsguard.service 2>&1) && [ -z "$v" ] ||
		fail "systemd-analyze verify /lib/systemd/system/tsguard.service: $v"
	echo "ok: systemd-analyze verify --man=no /lib/systemd/system/tsguard.service"
fi

# tsguard as the unit starts it; events from a FIFO instead of the kernel
mkfifo "$tmp/events" || fail "mkfifo"
"$bin" -r "$rules" --replay "$tmp/events" --control "$sock" >"$tmp/out" 2>"$tmp/err" &
pid=$!
exec 3<>"$tmp/events" # read-write: never blocks; closing it is tsguard's end of file
ts=1
feed() { # feed RPORT: a connect to RPORT refused at the next second
	printf '{"ts": %d, "sk": "0x%x", "family": "ipv4", "laddr": "10.0.0.2", "lport": %d, "raddr": "10.0.0.9", "rport": %d, "comm": "curl", "from": "SYN_SENT", "to": "CLOSE"}\n' \
		"$ts" "$((4096 + ts))" "$((40000 + ts))" "$1" >&3
	ts=$((ts + 1))
}
for _ in $(seq 100); do
	grep -q 'control: listening' "$tmp/err" && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
grep -q 'control: listening' "$tmp/err" || { cat "$tmp/err"; fail "tsguard does not listen on $sock"; }
[ "$(stat -c '%a' "$sock")" = 600 ] || fail "$sock is mode $(stat -c '%a' "$sock"), not 0600"
status_rules() { "$bin" ctl status | awk '$1 == "rules:" { print $2 }'; }
before=$(status_rules)
[ -n "$before" ] && [ "$before" -gt 0 ] || fail "tsguard ctl status shows no rules: $("$bin" ctl status 2>&1)"
echo "ok: tsguard runs: tsguard ctl status: rules: $before"

# the newcomer's edit: a rule file of their own
cat >"$rules/50-local.yaml" <<'EOF'
rules:
  - name: local-refused-discard
    description: a connect to the discard port refused
    match: {rport: 9}
    when: {from: SYN_SENT, to: CLOSE}
EOF
out=$("$bin" ctl reload 2>&1) || fail "tsguard ctl reload: exit $?: $out"
[ "$out" = "reloaded: $((before + 1)) rules" ] ||
	fail "tsguard ctl reload says '$out', not 'reloaded: $((before + 1)) rules'"
[ "$(status_rules)" = "$((before + 1))" ] || fail "ctl status shows $(status_rules) rules, not $((before + 1))"
"$bin" ctl status | grep -q "$rules/50-local.yaml" || fail "ctl status does not list 50-local.yaml"
echo "ok: $out; ctl status: rules: $((before + 1)), 50-local.yaml listed"
fired() { # fired N: the new rule fired N times (its alerts on standard output)
	for _ in $(seq 100); do
		[ "$(grep -c 'local-refused-discard' "$tmp/out")" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
feed 9
fired 1 || { cat "$tmp/out" "$tmp/err"; fail "the new rule did not fire"; }
echo "ok: the new rule fires"

# a broken edit: rejected with its place, the rules running stay
printf 'rules:\n  - name: broken\n    when: {state: NO_SUCH_STATE, longer_than: 1s}\n' >"$rules/60-broken.yaml"
out=$("$bin" ctl reload 2>&1)
rc=$?
[ "$rc" = 2 ] || fail "ctl reload of a broken rule: exit $rc, not 2: $out"
printf '%s\n' "$out" | grep -Eq "^$rules/60-broken.yaml:[0-9]+:[0-9]+: error: " ||
	fail "ctl reload does not name FILE:LINE:COL: $out"
echo "ok: ctl reload rejected, exit 2: $(printf '%s\n' "$out" | head -n 1)"
[ "$(status_rules)" = "$((before + 1))" ] ||
	fail "after the rejected reload ctl status shows '$(status_rules)' rules, not $((before + 1))"
"$bin" ctl status | grep -Eq '^reloads: +ok 1, failed 1' ||
	fail "ctl status does not count the reloads: $("$bin" ctl status | grep reloads)"
feed 9
fired 2 || { cat "$tmp/out" "$tmp/err"; fail "after the rejected reload the rule no longer fires"; }
echo "ok: the old rules keep running: ctl status answers, rules: $((before + 1)), the rule fires"

# stop: the end of the events
exec 3>&-
for _ in $(seq 100); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
wait "$pid"
rc=$?
pid=
[ "$rc" = 0 ] || { cat "$tmp/err"; fail "tsguard exited $rc at the end of the events"; }
[ ! -e "$sock" ] || fail "$sock is left behind"
echo "ok: stopped (exit 0), $sock removed"

rm -f "$rules/50-local.yaml" "$rules/60-broken.yaml"
dpkg --purge tsguard >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log"; fail "dpkg --purge tsguard"; }
[ ! -e "$bin" ] && [ ! -e /etc/tsguard ] || fail "dpkg --purge left $bin or /etc/tsguard"
[ ! -e /etc/systemd/system/multi-user.target.wants/tsguard.service ] ||
	fail "dpkg --purge left the unit enabled"
echo "ok: dpkg --purge tsguard removed it"

#!/bin/bash
# The README's two commands work for root without sudo and for a user with
# sudo: no command in the "Two commands" block starts with sudo, and run as
# another user each script hands itself to sudo (a recording stand-in here).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
block=$(awk '/^## Two commands/{f=1} f&&/^```sh/{c=1;next} c&&/^```/{exit} c' "$src/README.md")
cmds=$(printf '%s\n' "$block" | grep -v '^#' | grep -v '^$' || true)
[ "$(printf '%s\n' "$cmds" | grep -c .)" -eq 2 ] || { echo "expected 2 commands, got: $cmds"; exit 1; }
if printf '%s\n' "$cmds" | grep -q '^sudo'; then
	echo "a README command starts with sudo (root on a fresh Debian has none): $cmds"
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "not root: the as-another-user part needs root to switch user"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"
cat >"$tmp/sudo" <<'SH'
#!/bin/sh
echo "$@" > "$TSG_SUDO_LOG"
SH
chmod 0755 "$tmp/sudo"
# a copy another user can read wherever the checkout is (the check for root
# comes before the scripts look at anything else)
mkdir -p "$tmp/tree/scripts" && cp "$src"/scripts/*.sh "$tmp/tree/scripts/"
chmod -R a+rX "$tmp/tree"
printf '%s\n' "$cmds" | while read -r cmd; do
	script=$(printf '%s\n' "$cmd" | awk '{print $2}')
	log="$tmp/log"
	rm -f "$log"
	touch "$log" && chmod 0666 "$log"
	(cd "$tmp/tree" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
		env PATH="$tmp:/usr/bin:/bin" TSG_SUDO_LOG="$log" bash "$script") || true
	grep -q "bash $script" "$log" || { echo "$cmd as nobody did not ask sudo for itself: $(cat "$log")"; exit 1; }
	echo "ok: $cmd asks sudo for root as another user"
done

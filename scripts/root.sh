# Sourced by scripts/run.sh and scripts/test.sh: BPF and the end-to-end tests
# need root, so as another user the calling script runs again through sudo;
# then into the checkout, with the dependencies installed.
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "$0: needs root (no sudo here): run it as root" >&2; exit 1; }
	exec sudo -E bash "$0" "$@"
fi
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/deps.sh

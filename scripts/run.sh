#!/bin/bash
# Installs the dependencies, builds tsguard and runs it live on the shipped
# rule pack (rules/, run from a root-owned copy).
# Extra arguments go to tsguard, e.g. -n for a dry run or -o json. Needs root (BPF). Stop with Ctrl-C.
set -euo pipefail
. "$(dirname "$0")/root.sh" # as root, in the checkout, dependencies installed
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"${JOBS:-2}"
# Run as root, tsguard refuses rule files (and directories above them) that are
# not owned by root or that others can write: they name commands it runs as
# root. A checkout belongs to whoever cloned it, so the pack runs from a
# root-owned copy.
rules_dir=$(mktemp -d /tmp/tsguard-rules.XXXXXX)
trap 'rm -rf "$rules_dir"' EXIT
install -m 0644 rules/*.yaml "$rules_dir/"
# not exec: the copy is removed when tsguard stops (Ctrl-C stops both cleanly)
./build/tsguard -r "$rules_dir" "$@"

#!/bin/bash
# Builds tsguard and runs every test: unit, rule, action and end-to-end
# tests (warnings fatal), then the unit and rule tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer, then short libFuzzer runs.
# End-to-end tests need root and BPF; without them they are skipped.
set -euo pipefail
. "$(dirname "$0")/root.sh" # as root, in the checkout, dependencies installed
jobs=${JOBS:-2}

echo "== build (warnings are errors) and all tests"
cmake -S . -B build -DTSG_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure --timeout 900

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build: unit, rule and action tests"
cmake -S . -B build-asan -DTSG_WERROR=ON -DTSG_SANITIZE=ON -DTSG_ROOT_TESTS=OFF \
	-DCMAKE_BUILD_TYPE=Debug
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir build-asan --output-on-failure --timeout 900

echo "== libFuzzer smoke runs (clang)"
CC=clang cmake -S . -B build-fuzz -DTSG_FUZZ=ON -DTSG_BPF=OFF -DTSG_ROOT_TESTS=OFF \
	-DCMAKE_BUILD_TYPE=Debug
cmake --build build-fuzz -j"$jobs" --target fuzz_rules fuzz_events
ctest --test-dir build-fuzz --output-on-failure -L fuzz
echo "== all test stages passed"

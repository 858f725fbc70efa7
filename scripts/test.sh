#!/usr/bin/env bash
# Sets up with the test tools (scripts/setup.sh --tests), builds with the tests and runs them:
# `bash scripts/test.sh`. Extra arguments go to ctest, e.g. `bash scripts/test.sh -L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
dir=${DUET_BUILD_DIR:-build}
# the main job may have configured this folder without the tests
if [ -f "$dir/CMakeCache.txt" ] && grep -q '^DUET_BUILD_TESTS:BOOL=OFF' "$dir/CMakeCache.txt"; then
  cmake -S . -B "$dir" -DDUET_BUILD_TESTS=ON >/dev/null
fi
bash scripts/build.sh
# ctest shows a skipped test's name only: its reason (the command that failed, what it said) is
# printed after the summary
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
ctest --test-dir "$dir" --output-on-failure "$@" | tee "$out" || rc=$?
bash scripts/skip_reasons.sh "$dir" "$out"
exit $rc

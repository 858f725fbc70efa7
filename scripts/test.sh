#!/usr/bin/env bash
# Sets up (scripts/setup.sh), builds and runs every test: `bash scripts/test.sh`.
# Extra arguments go to ctest, e.g. `bash scripts/test.sh -L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
ctest --test-dir "${DUET_BUILD_DIR:-build}" --output-on-failure "$@"

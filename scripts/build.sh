#!/usr/bin/env bash
# Configures and builds duet in ./build (Release). Quick when nothing changed.
#   DUET_BUILD_DIR=...  build folder (default: build)     DUET_JOBS=N  parallel jobs
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DUET_BUILD_DIR:-build}
gen=()
command -v ninja >/dev/null && [ ! -f "$dir/Makefile" ] && gen=(-G Ninja)
[ -f "$dir/CMakeCache.txt" ] || cmake -S . -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release ${DUET_CMAKE_ARGS:-}
cmake --build "$dir" -j "${DUET_JOBS:-$(nproc)}"

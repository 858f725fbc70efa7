#!/usr/bin/env bash
# One GPU call for several parts: duet built once against PyTorch's LibTorch (all targets, tests
# included) into $B, then each part named in PARTS, in order, writing into $OUT:
#   check    unit suites; CUDA batched decoding against the CPU, graphs on and off; abc-folk greedy
#            on CUDA == transformers, monolithic and split (2 stages)
#   models   scripts/bench/gpu_models.sh   (issue 12: Llama-3.2-1B, Qwen3-0.6B, Gemma-3-1B shapes)
#   links    scripts/bench/gpu_links.sh    (issue 11: the link lab on llama-1b's shape)
#   notagen  scripts/bench/gpu_notagen.sh  (issue 14: NotaGen-X's shape)
#   source .device/on-device.sh && PARTS="check models" bash scripts/bench/gpu_session.sh
# Knobs: B (/tmp/b), PARTS, and each part's own (see its script).
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-/tmp/b}; PARTS=${PARTS:-check}
OUT=${OUT:-$PWD/bench-out}; mkdir -p "$OUT"
log() { echo "[session $(date +%T)] $*" | tee -a "$OUT/session.log"; }
t0=$SECONDS
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/session.log"
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDUET_BUILD_FUZZERS=OFF >"$OUT/configure.log" 2>&1 ||
  { tail -30 "$OUT/configure.log"; log "CONFIGURE FAILED"; exit 1; }
cmake --build "$B" -j "$(nproc)" >"$OUT/build.log" 2>&1 ||
  { grep -E "error|Error" -A3 "$OUT/build.log" | head -60; log "BUILD FAILED"; exit 1; }
log "built in $((SECONDS - t0)) s"
for part in $PARTS; do
  p0=$SECONDS
  case $part in
    check)
      ctest --test-dir "$B" -L unit --output-on-failure >"$OUT/ctest-unit.log" 2>&1
      log "ctest -L unit exit $?: $(grep -E 'tests passed|tests failed' "$OUT/ctest-unit.log")"
      grep -E "^ *[0-9]+/[0-9]+ Test .*(Failed|Timeout|Exception)" "$OUT/ctest-unit.log" | tee -a "$OUT/session.log"
      { "$B/tests/common/test_common" -tc='on CUDA*' 2>&1 | tail -3
        DUET_CUDA_GRAPHS=0 "$B/tests/common/test_common" -tc='on CUDA*' 2>&1 | tail -3; } | tee -a "$OUT/session.log"
      bash scripts/device_check.sh --abc-only "$B" 2>&1 | tee -a "$OUT/session.log" ;;
    models) bash scripts/bench/gpu_models.sh "$B" 2>&1 | tail -40 >"$OUT/models-tail.log" ;;
    links) bash scripts/bench/gpu_links.sh "$B" 2>&1 | tail -40 >"$OUT/links-tail.log" ;;
    notagen) bash scripts/bench/gpu_notagen.sh "$B" 2>&1 | tail -40 >"$OUT/notagen-tail.log" ;;
    *) log "unknown part $part" ;;
  esac
  log "$part done in $((SECONDS - p0)) s"
done
log "all done in $((SECONDS - t0)) s"

#!/usr/bin/env bash
# One GPU call for several parts: duet built once against PyTorch's LibTorch (all targets, tests
# included) into $B, then each part named in PARTS, in order, writing into $OUT:
#   check    unit suites; CUDA batched decoding against the CPU, graphs on and off; abc-folk greedy
#            on CUDA == transformers, monolithic and split (2 stages)
#   models   scripts/bench/gpu_models.sh   (issue 12: Llama-3.2-1B, Qwen3-0.6B, Gemma-3-1B shapes)
#   links    scripts/bench/gpu_links.sh    (issue 11: the link lab on llama-1b's shape)
#   notagen  scripts/bench/gpu_notagen.sh  (issue 14: NotaGen-X's shape)
#   kernels  issue 21: ctest -L gpu (each CUDA kernel of common/cuda/ against the LibTorch path)
#            and duet-kernel-bench's table (error, us, GB/s per kernel) in kernels-bench.md
#   cuda     the CUDA model checks of `check` without the unit suites (quicker)
#   e2e      issue 21: run_shared_server.sh (duet only) with the kernels on, then off
#            (DUET_CUDA_KERNELS=0), same build, same card; NS (1 64), NEW (256)
#   source .device/on-device.sh && PARTS="check models" bash scripts/bench/gpu_session.sh
# Knobs: B (/tmp/b), PARTS, TARGETS (all; else the targets to build), KEEP_GOING (1: build what
# builds and run the parts anyway), and each part's own.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-/tmp/b}; PARTS=${PARTS:-check}
OUT=${OUT:-$PWD/bench-out}; mkdir -p "$OUT"
log() { echo "[session $(date +%T)] $*" | tee -a "$OUT/session.log"; }
t0=$SECONDS
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/session.log"
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDUET_BUILD_FUZZERS=OFF >"$OUT/configure.log" 2>&1 ||
  { tail -30 "$OUT/configure.log"; log "CONFIGURE FAILED"; exit 1; }
cmake --build "$B" -j "$(nproc)" ${TARGETS:+--target $TARGETS} ${KEEP_GOING:+-- -k 0} >"$OUT/build.log" 2>&1 ||
  { grep -E "error|Error" -A3 "$OUT/build.log" | head -60; log "BUILD FAILED"; [ -n "${KEEP_GOING:-}" ] || exit 1; }
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
    kernels)
      ctest --test-dir "$B" -L gpu --output-on-failure >"$OUT/ctest-gpu.log" 2>&1
      log "ctest -L gpu exit $?: $(grep -E 'tests passed|tests failed' "$OUT/ctest-gpu.log")"
      grep -E "ERROR|rel err|test cases|assertions" "$OUT/ctest-gpu.log" | head -40 | tee -a "$OUT/session.log"
      "$B/tests/gpu/duet-kernel-bench" >"$OUT/kernels-bench.md" 2>&1
      log "duet-kernel-bench exit $?"; cat "$OUT/kernels-bench.md" | tee -a "$OUT/session.log" ;;
    cuda)
      { "$B/tests/common/test_common" -tc='on CUDA*' 2>&1 | tail -3
        DUET_CUDA_GRAPHS=0 "$B/tests/common/test_common" -tc='on CUDA*' 2>&1 | tail -3
        DUET_CUDA_KERNELS=0 "$B/tests/common/test_common" -tc='on CUDA*' 2>&1 | tail -3; } | tee -a "$OUT/session.log"
      bash scripts/device_check.sh --abc-only "$B" 2>&1 | tail -8 | tee -a "$OUT/session.log" ;;
    e2e)
      for k in 1 0; do
        DUET_CUDA_KERNELS=$k OUT="$OUT/e2e-kernels$k" BUILD="$B" NS="${NS:-1 64}" HF=0 T_BUILD=400 \
          bash scripts/bench/run_shared_server.sh >"$OUT/e2e-kernels$k.log" 2>&1
        log "kernels=$k:"; grep -h -A3 -E "^ +N +tok/s" "$OUT/e2e-kernels$k"/load-*.txt 2>/dev/null | tee -a "$OUT/session.log"
      done ;;
    models) bash scripts/bench/gpu_models.sh "$B" 2>&1 | tail -40 >"$OUT/models-tail.log" ;;
    links) bash scripts/bench/gpu_links.sh "$B" 2>&1 | tail -40 >"$OUT/links-tail.log" ;;
    notagen) bash scripts/bench/gpu_notagen.sh "$B" 2>&1 | tail -40 >"$OUT/notagen-tail.log" ;;
    *) log "unknown part $part" ;;
  esac
  log "$part done in $((SECONDS - p0)) s"
done
log "all done in $((SECONDS - t0)) s"

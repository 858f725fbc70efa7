#!/usr/bin/env bash
# Builds duet and runs duet-bench on the GPU machine; logs and JSON go to $OUT (or ./bench-out).
#   source .device/on-device.sh && scripts/bench/run_gpu.sh
# Knobs (environment): MODELS ("llama-1b gpt2-large"), GRAPHS ("1 0": CUDA graphs on, then off),
# HF (1: also transformers eager/static for the graphs-on run), REPEATS (5), BUILD (/tmp/b).
set -uo pipefail
OUT=${OUT:-$PWD/bench-out}
B=${BUILD:-/tmp/b}
M=/tmp/bench-models
MODELS=${MODELS:-"llama-1b gpt2-large"}
GRAPHS=${GRAPHS:-"1 0"}
HF=${HF:-1}
REPEATS=${REPEATS:-5}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
log() { echo "[run_gpu $(date +%T)] $*" | tee -a "$OUT/run.log"; }

log "device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
log "configure + build"
t0=$SECONDS
if ! { cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDUET_BUILD_FUZZERS=OFF &&
       cmake --build "$B" -j16; } >"$OUT/build.log" 2>&1; then
  grep -E "error|Error|CMake Error" -A3 "$OUT/build.log" | head -80
  log "BUILD FAILED"
  exit 1
fi
log "built in $((SECONDS - t0)) s"

python3 scripts/bench/make_bench_models.py --out "$M" --only "$(echo $MODELS | tr ' ' ',')" 2>&1 | tee -a "$OUT/run.log"

for m in $MODELS; do
  case $m in llama-1b) dt=bf16 ;; gpt2-large) dt=fp16 ;; *) dt=bf16 ;; esac
  for g in $GRAPHS; do
    tag=$m-graphs$g
    extra=()
    if [ "$g" = 1 ] && [ "$HF" = 1 ]; then extra=(--hf); fi
    log "duet-bench $tag"
    DUET_CUDA_GRAPHS=$g timeout 400 "$B/bench/duet-bench" --model "$M/$m" --name "$m" --dtype $dt --device cuda \
      --repeats "$REPEATS" --json "$OUT/$tag.json" "${extra[@]}" >"/tmp/$tag.txt" 2>&1
    log "exit $?"
    cat "/tmp/$tag.txt" >>"$OUT/run.log"
    tail -n 12 "/tmp/$tag.txt"
  done
done
# the graph path must produce what the eager path produces (monolithic tokens, graphs on vs off)
python3 - "$OUT" $MODELS <<'PY' 2>&1 | tee -a "$OUT/run.log"
import json, os, sys
out = sys.argv[1]
for m in sys.argv[2:]:
    try:
        a, b = (json.load(open(os.path.join(out, f"{m}-graphs{g}.json"))) for g in (0, 1))
    except OSError:
        continue
    ta, tb = a["rows"][0]["tokens"], b["rows"][0]["tokens"]
    n = next((i for i, (x, y) in enumerate(zip(ta, tb)) if x != y), len(ta))
    print(f"{m}: mono tokens, graphs on vs off: first {n} of {len(ta)} equal; distinct ids {len(set(ta))}/{len(set(tb))}")
PY
if [ "${DEBUG_EXIT:-0}" = 1 ]; then  # where does the teardown crash come from?
  log "cuda-gdb: duet-bench teardown"
  DUET_BENCH_NORMAL_EXIT=1 timeout 120 cuda-gdb -batch -ex run -ex bt -ex "info threads" --args "$B/bench/duet-bench" \
    --model "$M/$(echo $MODELS | cut -d' ' -f1)" --modes mono,insecure --prompt-len 8 --new-tokens 4 --repeats 1 --warmup 0 \
    >"$OUT/teardown.txt" 2>&1
  grep -E "^#|signal|SIG" "$OUT/teardown.txt" | head -40
fi
log "done"

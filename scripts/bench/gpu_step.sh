#!/usr/bin/env bash
# One GPU call for the step's speed (issue 21) after the engine's reshape (issue 20): llama.cpp's
# llama-batched-bench builds in the background while duet builds (daemon, load driver, benches,
# the gpu tests when the kernels are built) and is checked; then, all on the same card:
#   gpu      ctest -L gpu (each CUDA kernel against the LibTorch path) when built
#   fp32     batched == single-session greedy tokens at 1, 8, 64 sessions (fp32, duet-load checks)
#   shared   run_shared_server.sh at NS sessions: duet (defaults) and transformers static cache
#   ab       the daemon at 64 and 128 sessions with one ZeroMQ I/O thread (as before) or the default,
#            and the batching window off or half a measured decode step (--batch-wait-step-fraction)
#   split    duet-bench at batch 1: monolithic vs split over CURVE (the split's own cost)
#   llama    llama-batched-bench at NS sequences
# Everything lands in $OUT; the engine's "stopping" lines give rows per step and the step's parts.
#   source .device/on-device.sh && bash scripts/bench/gpu_step.sh      (carry .device and .anchors)
# Knobs: NS ("1 8 64 128"), PROMPT (128), NEW (256), B (/tmp/b), PARTS ("gpu fp32 shared ab split llama").
set -uo pipefail
OUT=${OUT:-$PWD/bench-out}; mkdir -p "$OUT"
B=${B:-/tmp/b}; NS=${NS:-"1 8 64 128"}; PROMPT=${PROMPT:-128}; NEW=${NEW:-256}
PARTS=${PARTS:-"gpu fp32 shared ab split llama"}
A=$PWD/.anchors; M=/tmp/bench-models
log() { echo "[step $(date +%T)] $*" | tee -a "$OUT/step.log"; }
has() { [[ " $PARTS " == *" $1 "* ]]; }
ns_csv=$(echo $NS | tr ' ' ','); max_n=$(echo $NS | tr ' ' '\n' | sort -n | tail -1)
log "device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
LPID=
if has llama && [ -f "$A/llama/CMakeLists.txt" ]; then
  setsid bash -c "cmake -S '$A/llama' -B /tmp/lb -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DGGML_NATIVE=OFF &&
    nice cmake --build /tmp/lb -j10 --target llama-batched-bench && python3 '$A/write_gguf.py' /tmp/l1b.gguf" \
    >"$OUT/llama-build.log" 2>&1 &
  LPID=$!
fi
t0=$SECONDS
targets="duet-cloud duet-load duet-keygen duet-bench"
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDUET_BUILD_FUZZERS=OFF >"$OUT/cfg.log" 2>&1 ||
  { tail -20 "$OUT/cfg.log"; log "CONFIGURE FAILED"; exit 1; }
ninja -C "$B" -t targets all 2>/dev/null | grep -q '^test_gpu:' && targets="$targets test_gpu"
cmake --build "$B" -j14 --target $targets >"$OUT/build.log" 2>&1 ||
  { grep -E "error" -A3 "$OUT/build.log" | head -40; log "BUILD FAILED"; exit 1; }
log "duet built in $((SECONDS - t0)) s ($targets)"
python3 scripts/bench/make_bench_models.py --out $M --only llama-1b >"$OUT/models.log" 2>&1

if has gpu && [ -x "$B/tests/gpu/test_gpu" ]; then
  ctest --test-dir "$B" -L gpu --output-on-failure >"$OUT/ctest-gpu.log" 2>&1
  log "ctest -L gpu exit $?: $(grep -E 'tests passed|tests failed' "$OUT/ctest-gpu.log")"
fi

K=/tmp/step-keys; rm -rf $K; mkdir -p $K/clients
$B/protocol/duet-keygen --out $K --name server >/dev/null; $B/protocol/duet-keygen --out $K/clients --name load >/dev/null
cloud() {  # PORT DTYPE EXTRA... ; sets CP
  local port=$1 dt=$2; shift 2
  $B/cloud/duet-cloud --model $M/llama-1b --listen tcp://127.0.0.1:$port --devices cuda --dtype $dt \
    --secret-key $K/server.key_secret --authorized-keys $K/clients --max-sessions $((max_n + 8)) \
    --max-positions $((PROMPT + NEW)) --kv-memory-mb 32768 --idle-timeout 600 "$@" >"$OUT/cloud-$port.log" 2>&1 &
  CP=$!
  for _ in $(seq 120); do grep -q "listening on" "$OUT/cloud-$port.log" && return 0; sleep 0.5; done
  log "duet-cloud on $port did not start"; tail -5 "$OUT/cloud-$port.log"; return 1
}
load() {  # PORT NAME DTYPE SESSIONS NEW
  timeout 200 $B/bench/duet-load --endpoint tcp://127.0.0.1:$1 --server-key $K/server.key \
    --client-key $K/clients/load.key_secret --model $M/llama-1b --name $2 --dtype $3 --edge-device cuda \
    --sessions $4 --prompts 4 --prompt-len $PROMPT --new-tokens $5 --daemon-pid $CP --json "$OUT/load-$2.json" \
    >"$OUT/load-$2.txt" 2>&1
  log "duet-load $2 exit $?"; grep -E "^ +[0-9]+ +[0-9.]+ " "$OUT/load-$2.txt" | tail -6
}
stop_cloud() { kill $CP; wait $CP; grep -h "engine stopping" "$OUT"/cloud-$1.log | tee -a "$OUT/step.log"; }

if has fp32 && cloud 7795 fp32; then
  load 7795 fp32-check fp32 1,8,64 96; stop_cloud 7795
fi
if has shared; then
  OUT=$OUT/shared BUILD=$B NS="$NS" HF=1 HF_VARIANTS=static T_HF=${T_HF:-150} CLOUD_EXTRA="--log-level info" \
    bash scripts/bench/run_shared_server.sh >"$OUT/shared.log" 2>&1
  grep -E "^ +[0-9]+ +[0-9.]+ |tok/s" "$OUT/shared.log" | tail -14
  grep -h "engine stopping\|per-key quota" "$OUT"/shared/cloud-*.log
fi
if has ab; then
  port=7796
  for io in 1 0; do for frac in 0 0.5; do
    if cloud $port bf16 --io-threads $io --batch-wait-step-fraction $frac; then
      load $port "ab-io$io-wait$frac" bf16 64,128 $NEW; stop_cloud $port
    fi
    port=$((port + 1))
  done; done
fi
if has split; then
  timeout 60 $B/bench/duet-bench --model $M/llama-1b --dtype bf16 --device cuda --modes mono,curve --name llama-1b \
    >"$OUT/split.txt" 2>&1
  log "duet-bench exit $?"; tail -8 "$OUT/split.txt"
fi
if [ -n "$LPID" ]; then
  while kill -0 $LPID 2>/dev/null && [ $SECONDS -lt 520 ]; do sleep 2; done
  if [ -x /tmp/lb/bin/llama-batched-bench ] && [ -f /tmp/l1b.gguf ]; then
    (cd /tmp/lb/bin && timeout 80 ./llama-batched-bench -m /tmp/l1b.gguf -ngl 99 -fa on -c $((max_n * (PROMPT + NEW))) \
      -npp $PROMPT -ntg $NEW -npl "$ns_csv" --output-format jsonl) >"$OUT/llamacpp.txt" 2>&1
    log "llama-batched-bench exit $?"; grep -E "^\{" "$OUT/llamacpp.txt" | tail -6
  else log "llama.cpp not built in time"; tail -5 "$OUT/llama-build.log"; fi
fi
tar -C "$OUT" -czf "$OUT/step-all.tar.gz" --exclude step-all.tar.gz . 2>/dev/null
log "done in $SECONDS s"

#!/usr/bin/env bash
# One GPU call for issue 16's figures: llama.cpp's llama-batched-bench builds in the background
# while duet builds and runs (a greedy fp32 check of batched decoding, then run_shared_server.sh
# with transformers), then llama.cpp runs. Everything lands in $OUT.
#   source .device/on-device.sh && bash scripts/bench/gpu_shared_all.sh
# Knobs: MODELS (llama-1b), NS ("1 8 32 64 128"), PROMPT (128), NEW (256), B (/tmp/b).
set -uo pipefail
OUT=${OUT:-$PWD/bench-out}; mkdir -p "$OUT"
B=${B:-/tmp/b}; NS=${NS:-"1 8 32 64 128"}; PROMPT=${PROMPT:-128}; NEW=${NEW:-256}
A=$PWD/.anchors
log() { echo "[all $(date +%T)] $*" | tee -a "$OUT/all.log"; }
ns_csv=$(echo $NS | tr ' ' ','); max_n=$(echo $NS | tr ' ' '\n' | sort -n | tail -1)
LPID=
if [ -f "$A/llama/CMakeLists.txt" ]; then
  setsid bash -c "cmake -S '$A/llama' -B /tmp/lb -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DGGML_NATIVE=OFF &&
    nice cmake --build /tmp/lb -j12 --target llama-batched-bench && python3 '$A/write_gguf.py' /tmp/l1b.gguf" \
    >"$OUT/llama-build.log" 2>&1 &
  LPID=$!
fi
t0=$SECONDS
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDUET_BUILD_FUZZERS=OFF -DDUET_BUILD_TESTS=OFF >"$OUT/cfg.log" 2>&1 &&
  cmake --build "$B" -j16 --target duet-cloud duet-load duet-keygen >"$OUT/build.log" 2>&1 ||
  { grep -E "error" -A3 "$OUT/build.log" | head -40; log "BUILD FAILED"; exit 1; }
log "duet built in $((SECONDS - t0)) s"
# correctness: fp32 batched decoding gives the single-session greedy tokens (no bf16 near-ties)
python3 scripts/bench/make_bench_models.py --out /tmp/bench-models --only llama-1b >/dev/null 2>&1
K=/tmp/fp32-keys; rm -rf $K; mkdir -p $K/clients
$B/protocol/duet-keygen --out $K --name server >/dev/null; $B/protocol/duet-keygen --out $K/clients --name load >/dev/null
$B/cloud/duet-cloud --model /tmp/bench-models/llama-1b --listen tcp://127.0.0.1:7795 --devices cuda --dtype fp32 \
  --secret-key $K/server.key_secret --authorized-keys $K/clients --max-sessions 72 --max-positions 256 \
  --kv-memory-mb 16384 >"$OUT/cloud-fp32.log" 2>&1 &
CP=$!; sleep 8
timeout 120 $B/bench/duet-load --endpoint tcp://127.0.0.1:7795 --server-key $K/server.key --client-key \
  $K/clients/load.key_secret --model /tmp/bench-models/llama-1b --name llama-1b-fp32 --dtype fp32 --wire-dtype fp32 \
  --edge-device cuda --sessions 1,8,64 --prompts 4 --prompt-len 128 --new-tokens 96 --json "$OUT/load-fp32.json" \
  >"$OUT/load-fp32.txt" 2>&1; log "fp32 check exit $?"; tail -6 "$OUT/load-fp32.txt"
kill $CP; wait $CP
OUT=$OUT BUILD=$B NS="$NS" T_HF=${T_HF:-150} CLOUD_EXTRA="--log-level info" bash scripts/bench/run_shared_server.sh 2>&1 | tail -25
grep -h "engine stopping" "$OUT"/cloud-*.log
if [ -n "$LPID" ]; then
  while kill -0 $LPID 2>/dev/null && [ $SECONDS -lt 500 ]; do sleep 2; done
  if [ -x /tmp/lb/bin/llama-batched-bench ] && [ -f /tmp/l1b.gguf ]; then
    (cd /tmp/lb/bin && timeout 80 ./llama-batched-bench -m /tmp/l1b.gguf -ngl 99 -fa on -c $((max_n * (PROMPT + NEW))) \
      -npp $PROMPT -ntg $NEW -npl "$ns_csv" --output-format jsonl) >"$OUT/llamacpp.txt" 2>&1
    log "llama-batched-bench exit $?"; grep -E "^\{" "$OUT/llamacpp.txt" | tail -6
  else log "llama.cpp not built in time"; tail -5 "$OUT/llama-build.log"; fi
fi
log "done in $SECONDS s"

#!/usr/bin/env bash
# Issue 16's shared-server benchmark on the GPU machine (one H200): duet-cloud over CURVE on
# loopback driven by duet-load at N concurrent sessions, transformers generate() at batch N
# (eager and static cache), and llama.cpp's llama-batched-bench at N sequences when
# LLAMACPP_RUN names the anchor's run.sh: its folder must hold llama/ and write_gguf.py, as
# .anchors/ does after ../shared/anchors/llamacpp/prep.sh (run on the CPU machine; carry .anchors).
# Logs and JSON go to $OUT; plot them with scripts/bench/plot_shared_server.py.
#   source .device/on-device.sh && LLAMACPP_RUN=$PWD/.anchors/run.sh scripts/bench/run_shared_server.sh
# Knobs (environment): MODELS ("llama-1b"; gpt2-large too), NS ("1 8 32 64 128"), PROMPT (128),
# NEW (256), HF (1), HF_VARIANTS ("eager,static"), BUILD (/tmp/b), NO_BUILD (0; 1: BUILD's binaries as
# they are, as gpu_step.sh runs it); limits in seconds: T_BUILD
# (300, duet), T_LBUILD (330 from the start, llama.cpp's build), T_LOAD (240 per model, all N),
# T_HF (200 per model), T_LLAMA (120).
# Budget: ~4-5 min of builds (in parallel), then ~4 min of measurements with a batched daemon.
# Today's one-forward-at-a-time daemon needs ~N x 255 x 3.5 ms at each N (~115 s at 128):
# T_LOAD then cuts the largest N (the JSON keeps every N that finished).
set -uo pipefail
OUT=${OUT:-$PWD/bench-out}
B=${BUILD:-/tmp/b}
M=/tmp/bench-models
MODELS=${MODELS:-llama-1b}
NS=${NS:-"1 8 32 64 128"}
PROMPT=${PROMPT:-128}
NEW=${NEW:-256}
HF=${HF:-1}
HF_VARIANTS=${HF_VARIANTS:-eager,static}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
log() { echo "[shared $(date +%T)] $*" | tee -a "$OUT/run.log"; }
t_all=$SECONDS
ns_csv=$(echo $NS | tr ' ' ',')
max_n=$(echo $NS | tr ' ' '\n' | sort -n | tail -1)

log "device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
# llama.cpp builds in its own process group while duet builds; nothing is measured until it ends
LPID=
if [ -n "${LLAMACPP_RUN:-}" ]; then
  A=$(cd "$(dirname "$LLAMACPP_RUN")" && pwd)
  if [ -f "$A/llama/CMakeLists.txt" ]; then
    log "llama.cpp: building llama-batched-bench from $A/llama in /tmp/lb (background)"
    # the anchor's run.sh configuration, one target
    setsid bash -c "{ [ -f /tmp/lb/build.ninja ] || cmake -S '$A/llama' -B /tmp/lb -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_RPC=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DGGML_NATIVE=OFF; } &&
      cmake --build /tmp/lb -j$(nproc) --target llama-batched-bench &&
      { [ -f /tmp/l1b.gguf ] || python3 '$A/write_gguf.py' /tmp/l1b.gguf; }" >"$OUT/llama-build.log" 2>&1 &
    LPID=$!
  else
    log "llama.cpp: no source at $A/llama (run prep.sh on the CPU machine and carry .anchors); skipped"
  fi
fi

log "configure + build duet"
t0=$SECONDS
if [ "${NO_BUILD:-0}" = 1 ]; then
  [ -x "$B/cloud/duet-cloud" ] && [ -x "$B/bench/duet-load" ] || { log "NO_BUILD=1 but no duet-cloud/duet-load in $B"; exit 1; }
elif ! timeout "${T_BUILD:-300}" bash -c "cmake -S . -B '$B' -G Ninja -DCMAKE_BUILD_TYPE=Release -DDUET_BUILD_FUZZERS=OFF \
     -DDUET_BUILD_TESTS=OFF && cmake --build '$B' -j16 --target duet-cloud duet-load duet-keygen" >"$OUT/build.log" 2>&1; then
  grep -E "error|Error" -A3 "$OUT/build.log" | head -60
  log "BUILD FAILED"
  [ -n "$LPID" ] && kill -- -"$LPID" 2>/dev/null
  exit 1
fi
log "built in $((SECONDS - t0)) s"
python3 scripts/bench/make_bench_models.py --out "$M" --only "$(echo $MODELS | tr ' ' ',')" 2>&1 | tee -a "$OUT/run.log"

LRC=1
if [ -n "$LPID" ]; then
  log "llama.cpp: waiting for its build (until $((${T_LBUILD:-330})) s after the start)"
  while kill -0 "$LPID" 2>/dev/null && [ $((SECONDS - t_all)) -lt "${T_LBUILD:-330}" ]; do sleep 2; done
  if kill -0 "$LPID" 2>/dev/null; then
    kill -- -"$LPID" 2>/dev/null; wait "$LPID" 2>/dev/null
    log "llama.cpp build not done in time: stopped (a later call on a warm machine resumes it in /tmp/lb)"
  else
    wait "$LPID"; LRC=$?
    log "llama.cpp build exit $LRC"; [ $LRC = 0 ] || tail -20 "$OUT/llama-build.log"
  fi
fi

K=/tmp/shared-keys
rm -rf "$K" && mkdir -p "$K/clients"
"$B/protocol/duet-keygen" --out "$K" --name server >/dev/null &&
  "$B/protocol/duet-keygen" --out "$K/clients" --name load >/dev/null || { log "duet-keygen failed"; exit 1; }

for m in $MODELS; do
  case $m in gpt2-large) dt=fp16 ;; *) dt=bf16 ;; esac
  # KV budget far above max_n sessions of PROMPT+NEW positions (capacity grows in 256-position
  # chunks: 512 per session here); sessions: the warm-up's and the run's never overlap
  log "duet-cloud $m ($dt), CURVE on loopback"
  "$B/cloud/duet-cloud" --model "$M/$m" --listen tcp://127.0.0.1:7790 --devices cuda --dtype $dt \
    --secret-key "$K/server.key_secret" --authorized-keys "$K/clients" --max-sessions $((max_n + 8)) \
    --max-positions $((PROMPT + NEW)) --kv-memory-mb 65536 --idle-timeout 600 --metrics-listen 127.0.0.1:7791 ${CLOUD_EXTRA:-} \
    >"$OUT/cloud-$m.log" 2>&1 &
  CP=$!
  for _ in $(seq 240); do grep -q "listening on" "$OUT/cloud-$m.log" && break; kill -0 $CP 2>/dev/null || break; sleep 0.5; done
  if ! grep -q "listening on" "$OUT/cloud-$m.log"; then log "duet-cloud did not start"; tail -20 "$OUT/cloud-$m.log"; continue; fi
  log "duet-load $m N=$ns_csv"
  # one process for every N (one reference); its JSON is rewritten after each N
  timeout "${T_LOAD:-240}" "$B/bench/duet-load" --endpoint tcp://127.0.0.1:7790 --server-key "$K/server.key" \
    --client-key "$K/clients/load.key_secret" --model "$M/$m" --name $m --dtype $dt --edge-device cuda \
    --sessions "$ns_csv" --prompts 4 --prompt-len $PROMPT --new-tokens $NEW --daemon-pid $CP --metrics 127.0.0.1:7791 \
    --json "$OUT/load-$m.json" 2>&1 | tee "$OUT/load-$m.txt"
  log "duet-load exit ${PIPESTATUS[0]}"
  kill $CP; wait $CP; log "duet-cloud exit $?"
  if [ "$HF" = 1 ]; then
    log "transformers generate() $m at batch $ns_csv ($HF_VARIANTS)"
    timeout "${T_HF:-200}" python3 bench/hf_batched.py --model "$M/$m" --dtype $dt --batch-sizes "$ns_csv" \
      --variants "$HF_VARIANTS" --prompt-len $PROMPT --new-tokens $NEW --deadline-s $(( ${T_HF:-200} - 45 )) \
      --json "$OUT/hf-$m.json" >"$OUT/hf-$m.log" 2>&1
    log "hf_batched exit $?"
    grep -E "tok/s|Error|skipped" "$OUT/hf-$m.log" | tail -12
  fi
done

if [ -n "$LPID" ] && [ $LRC = 0 ]; then
  # llama-1b shape, f16 (write_gguf.py). KV not unified: each of the max_n sequences gets
  # c / max_n positions, PROMPT + NEW here; the bench skips an N that does not fit.
  log "llama-batched-bench -npl $ns_csv"
  (cd /tmp/lb/bin && timeout "${T_LLAMA:-120}" ./llama-batched-bench -m /tmp/l1b.gguf -ngl 99 -fa on \
    -c $(( max_n * (PROMPT + NEW) )) -npp $PROMPT -ntg $NEW -npl "$ns_csv" --output-format jsonl) \
    >"$OUT/llamacpp.txt" 2>&1
  log "llama-batched-bench exit $?"
  grep -E "^\{" "$OUT/llamacpp.txt" | tail -8
fi
log "done in $((SECONDS - t_all)) s"

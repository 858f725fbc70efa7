#!/usr/bin/env bash
# One GPU call for the step's speed (issues 20 and 21), everything on the same card: llama.cpp's
# llama-batched-bench builds in the background while duet builds (with its CUDA kernels; if they
# do not build, again without them, said in the log), then
#   gpu      ctest -L gpu (each kernel against the LibTorch path) and duet-kernel-bench's table
#   cuda     batched CUDA decoding == the CPU's (graphs on), kernels on and off
#   shared   run_shared_server.sh at NS sessions: duet (defaults) and transformers static cache
#   duet     (not by default) duet-load at NS sessions on the defaults, no peers: for a short lease
#   ab       duet at 64 and 128 sessions with the batching window off and a whole decode step
#            long (the default, half a step, is the shared part's); AB_KERNELS=1: kernels off too;
#            AB_SPIN=US: daemon and clients with --spin-us US at 1 and AB_NS sessions
#   split    duet-bench at batch 1: monolithic vs split over CURVE (the split's own cost), with
#            --spin-us 0 and SPLIT_SPIN (200): wake-ups spared by polling after each message
#   lbuild   llama.cpp built first, in the foreground on every core (llama-bench, ggml-rpc-server,
#            llama-batched-bench), duet after it: the build call of a session's back-to-back calls
#   llama    llama.cpp beside duet: llama-bench tg NEW after pp PROMPT (one sequence), the same
#            through ggml-rpc-server on loopback (its own split), llama-batched-bench at NS
#   music    (issue 24) scripts/abc/run_gpu_sizes.sh on the GPU in the background from the start
#            (its files in $MUSIC_OUT, default $OUT/music; needs .abcdata carried), builds niced
#   notagen  (not by default) gpu_notagen.sh: NotaGen-X's shape, the reference loop, duet with
#            characters sampled on the device and on the host (DUET_NOTAGEN_HOST_SAMPLING=1)
#   hop      (issue 22) the front door with every layer in one duet-stage worker on the same GPU
#            through Gloo vs the daemon alone, duet-load at 1, 8, 64 sessions (rebuilds
#            cluster_link with Debian's gloo headers: carry them, EXTRA_DEBS=libgloo-dev)
# Everything lands in $OUT (rewritten as it goes); the daemons' "engine stopping" lines give rows
# per step and the step's parts.
#   source .device/on-device.sh && bash scripts/bench/gpu_step.sh      (carry .device and .anchors)
# Knobs: NS ("1 64 128"), PROMPT (128), NEW (256), B (.gpuwork/b), PARTS ("gpu cuda shared ab split llama hop"),
# TARGETS (what is built besides the kernels' tests; "test_common" for PARTS="gpu cuda"), BUILD (1;
# 0: use the binaries a call before left on this warm machine, no configure, no ninja), REHEARSE
# (1: on the CPU machine with BUILD=0 B=build, the parts duet, ab, split and hop on a fixture
# model), HOP_NS ("1,8,64").
# Each daemon serves /metrics on its port + 100, and duet-load reads each run's rows per step,
# live sessions per step, step ms and the batching window's wait from it.
set -uo pipefail
OUT=${OUT:-$PWD/bench-out}; mkdir -p "$OUT" "$PWD/.gpuwork"
# builds under .gpuwork/ (git-ignored): a warm machine keeps them between calls, so a second call
# fired within its 30 s reuses duet's build and llama.cpp's (which rarely finishes beside duet's
# inside one 10-minute call: 194 of 283 objects in 470 s on 2026-12-07)
W=$PWD/.gpuwork; LB=$W/lb; GGUF=$W/l1b.gguf
B=${B:-$W/b}; NS=${NS:-"1 64 128"}; PROMPT=${PROMPT:-128}; NEW=${NEW:-256}
PARTS=${PARTS:-"gpu cuda shared ab split llama hop"}
A=$PWD/.anchors; M=/tmp/bench-models; DEV=cuda; DT=bf16
# REHEARSE=1 (the CPU machine, BUILD=0 B=build): the script's own plumbing on the llama_gqa
# fixture in fp32 on the CPU, standing in for llama-1b, so a mistake here costs no device time
if [ "${REHEARSE:-0}" = 1 ]; then
  DEV=cpu; DT=fp32; M=$OUT/rehearse-models; mkdir -p "$M"; ln -sfn "$PWD/tests/fixtures/models/llama_gqa" "$M/llama-1b"
fi
log() { echo "[step $(date +%T) +$SECONDS s] $*" | tee -a "$OUT/step.log"; }
has() { [[ " $PARTS " == *" $1 "* ]]; }
ns_csv=$(echo $NS | tr ' ' ','); max_n=$(echo $NS | tr ' ' '\n' | sort -n | tail -1)
log "device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
if has music; then  # GPU-bound training while the CPU builds; the builds below run niced
  MUSIC_OUT=${MUSIC_OUT:-$OUT/music}; mkdir -p "$MUSIC_OUT"
  [ -f out/abc-data/train.jsonl ] || { mkdir -p out && tar xJf .abcdata/abc-data.tar.xz -C out; }
  OUT=$MUSIC_OUT setsid bash scripts/abc/run_gpu_sizes.sh >"$OUT/music.log" 2>&1 &
  MUSIC_PID=$!
fi
NICE=$(has music && echo "nice -n 19")
llama_configure() {
  [ -f "$LB/build.ninja" ] || cmake -S "$A/llama" -B "$LB" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_RPC=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DGGML_NATIVE=OFF
}
LTARGETS="llama-bench ggml-rpc-server llama-batched-bench"
LPID=
if has lbuild && [ -f "$A/llama/CMakeLists.txt" ]; then
  { llama_configure && $NICE cmake --build "$LB" -j16 --target $LTARGETS && { [ -f "$GGUF" ] || python3 "$A/write_gguf.py" "$GGUF"; }; } \
    >"$OUT/llama-build.log" 2>&1
  log "llama.cpp build exit $? ($(ls $LB/bin 2>/dev/null | tr '\n' ' '))"
elif has llama && [ -f "$A/llama/CMakeLists.txt" ] && [ ! -x "$LB/bin/llama-batched-bench" ]; then
  setsid bash -c "$(declare -f llama_configure); LB='$LB' A='$A'; llama_configure &&
    nice cmake --build '$LB' -j8 --target $LTARGETS && { [ -f '$GGUF' ] || python3 '$A/write_gguf.py' '$GGUF'; }" \
    >"$OUT/llama-build.log" 2>&1 &
  LPID=$!
fi
export CUDACXX=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
MPID=
[ "${REHEARSE:-0}" = 1 ] || { python3 scripts/bench/make_bench_models.py --out $M --only llama-1b >"$OUT/models.log" 2>&1 & MPID=$!; }
# gloo's headers (Debian's, older than the gloo inside PyTorch) only for the hop part's rebuild: a
# mismatch there must not cost the main build
configure() { $NICE cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDUET_BUILD_FUZZERS=OFF \
  -DDUET_GLOO_INCLUDE_DIR=DUET_GLOO_INCLUDE_DIR-NOTFOUND "$@" >"$OUT/cfg.log" 2>&1; }
build() {
  $NICE cmake --build "$B" -j14 --target ${TARGETS:-duet-cloud duet-load duet-keygen duet-bench duet-edge duet-stage test_common} \
    $([ $KERNELS = 1 ] && [ -z "${NO_KERNEL_TESTS:-}" ] && echo test_gpu_kernels duet-kernel-bench) -- -k 0 \
    >"$OUT/build.log" 2>&1
}
if [ "${BUILD:-1}" = 0 ] && [ -x "$B/cloud/duet-cloud" ]; then
  KERNELS=$([ -x "$B/tests/gpu/test_gpu_kernels" ] && echo 1 || echo 0)
  log "BUILD=0: the binaries already in $B (kernels $KERNELS)"
else
  # the kernels and the files that call them first, every error collected (-k 0): a failure here
  # costs one reconfigure, not a second full build
  KERNELS=1
  O=common/CMakeFiles/duet_common.dir
  if ! { configure -DDUET_BUILD_CUDA_KERNELS=ON &&
         { grep -q "CUDA kernels ON" "$OUT/cfg.log" || { grep "duet:" "$OUT/cfg.log"; false; }; } &&
         $NICE cmake --build "$B" -j14 --target duet_cuda_kernels $O/cuda/torch_kernels.cpp.o $O/attention.cpp.o $O/ops.cpp.o \
           -- -k 0 >"$OUT/build-kernels.log" 2>&1; }; then
    grep -E "error|Error" -A6 "$OUT/build-kernels.log" | head -40
    log "BUILD OF THE KERNELS FAILED (build-kernels.log): building without them"
    KERNELS=0
    configure -DDUET_BUILD_CUDA_KERNELS=OFF || { tail -20 "$OUT/cfg.log"; exit 1; }
  fi
  if ! build; then
    grep -E "error" -B2 -A6 "$OUT/build.log" | head -60 >"$OUT/build-errors.log"; head -30 "$OUT/build-errors.log"
    if [ $KERNELS = 1 ]; then
      log "BUILD WITH KERNELS FAILED: building without them"; KERNELS=0
      configure -DDUET_BUILD_CUDA_KERNELS=OFF && build || { log "BUILD FAILED"; exit 1; }
    else log "BUILD FAILED"; exit 1; fi
  fi
fi
log "duet built (kernels $KERNELS)"
[ -n "$MPID" ] && wait $MPID

if has gpu && [ $KERNELS = 1 ]; then
  timeout 120 ctest --test-dir "$B" -L gpu --output-on-failure >"$OUT/ctest-gpu.log" 2>&1
  log "ctest -L gpu exit $?: $(grep -E 'tests passed|tests failed' "$OUT/ctest-gpu.log")"
  grep -E "ERROR|FATAL|test cases|assertions" "$OUT/ctest-gpu.log" | head -20 | tee -a "$OUT/step.log"
  if ! grep -q "100% tests passed" "$OUT/ctest-gpu.log"; then
    grep -B3 -A12 "ERROR\|CHECK\|REQUIRE" "$OUT/ctest-gpu.log" | head -60
    export DUET_CUDA_KERNELS=0; log "KERNEL TESTS FAILED: everything below runs with DUET_CUDA_KERNELS=0"
  fi
  timeout 60 "$B/tests/gpu/duet-kernel-bench" >"$OUT/kernels-bench.md" 2>&1
  log "duet-kernel-bench exit $?"; cat "$OUT/kernels-bench.md" | tee -a "$OUT/step.log"
fi
if has cuda; then
  { timeout 60 "$B/tests/common/test_common" -tc='on CUDA*' 2>&1 | tail -3
    DUET_CUDA_KERNELS=0 timeout 60 "$B/tests/common/test_common" -tc='on CUDA*' 2>&1 | tail -3; } | tee -a "$OUT/step.log"
fi

K=/tmp/step-keys; rm -rf $K; mkdir -p $K/clients
$B/protocol/duet-keygen --out $K --name server >/dev/null; $B/protocol/duet-keygen --out $K/clients --name load >/dev/null
cloud() {  # PORT EXTRA... ; sets CP
  local port=$1; shift
  $B/cloud/duet-cloud --model $M/llama-1b --listen tcp://127.0.0.1:$port --devices $DEV --dtype $DT \
    --secret-key $K/server.key_secret --authorized-keys $K/clients --max-sessions $((max_n + 8)) \
    --max-positions $((PROMPT + NEW)) --kv-memory-mb 32768 --idle-timeout 600 --metrics-listen 127.0.0.1:$((port + 100)) \
    "$@" >"$OUT/cloud-$port.log" 2>&1 &
  CP=$!
  for _ in $(seq 120); do grep -q "listening on" "$OUT/cloud-$port.log" && return 0; sleep 0.5; done
  log "duet-cloud on $port did not start"; tail -5 "$OUT/cloud-$port.log"; return 1
}
load() {  # PORT NAME SESSIONS
  timeout 120 $B/bench/duet-load --endpoint tcp://127.0.0.1:$1 --server-key $K/server.key \
    --client-key $K/clients/load.key_secret --model $M/llama-1b --name $2 --dtype $DT --edge-device $DEV \
    --sessions $3 --prompts 4 --prompt-len $PROMPT --new-tokens $NEW --daemon-pid $CP --json "$OUT/load-$2.json" \
    --metrics 127.0.0.1:$(($1 + 100)) ${LOAD_EXTRA:-} \
    >"$OUT/load-$2.txt" 2>&1
  log "duet-load $2 exit $?"; grep -E "^ +[0-9]+ +[0-9.]+ " "$OUT/load-$2.txt" | tail -4 | tee -a "$OUT/step.log"
}
stop_cloud() { kill $CP; wait $CP; grep -h "engine stopping" "$OUT"/cloud-$1.log | tee -a "$OUT/step.log"; }

if has shared; then
  OUT=$OUT/shared BUILD=$B NO_BUILD=1 NS="$NS" HF=1 HF_VARIANTS=static T_HF=${T_HF:-80} T_BUILD=200 CLOUD_EXTRA="--log-level info" \
    bash scripts/bench/run_shared_server.sh >"$OUT/shared.log" 2>&1
  grep -E "^ +[0-9]+ +[0-9.]+ |tok/s" "$OUT/shared.log" | tail -10 | tee -a "$OUT/step.log"
  grep -h "engine stopping" "$OUT"/shared/cloud-*.log | tee -a "$OUT/step.log"
fi
if has duet; then  # duet alone at NS sessions (defaults), without the peers (a short lease)
  cloud 7795 && { load 7795 duet-default "$ns_csv"; stop_cloud 7795; }
fi
if has ab; then
  [ $KERNELS = 1 ] && [ -n "${AB_KERNELS:-}" ] && { DUET_CUDA_KERNELS=0 cloud 7796 && { load 7796 ab-kernels-off 64,128; stop_cloud 7796; }; }
  # the batching window off (every step starts at once) and a whole decode step long, beside the
  # default (half a step) in the shared part
  cloud 7797 --batch-wait-step-fraction 0 && { load 7797 ab-window-off ${AB_NS:-64,128}; stop_cloud 7797; }
  [ -z "${AB_NO_ONE:-}" ] && cloud 7798 --batch-wait-step-fraction 1.0 && { load 7798 ab-window-one ${AB_NS:-64,128}; stop_cloud 7798; }
  # the daemon's and the clients' threads polling without sleeping after activity (wake-ups spared)
  [ -n "${AB_SPIN:-}" ] && cloud 7801 --spin-us $AB_SPIN &&
    { LOAD_EXTRA="--spin-us $AB_SPIN" load 7801 ab-spin-$AB_SPIN 1,${AB_NS:-64}; stop_cloud 7801; }
fi
if has split; then  # and again with the daemon and the edge polling SPLIT_SPIN µs after each message
  for spin in 0 ${SPLIT_SPIN:-200}; do
    timeout 45 $B/bench/duet-bench --model $M/llama-1b --dtype $DT --device $DEV --modes mono,curve --name llama-1b \
      --prompt-len $PROMPT --new-tokens $NEW \
      --spin-us $spin --json "$OUT/split-spin$spin.json" >"$OUT/split-spin$spin.txt" 2>&1
    log "duet-bench --spin-us $spin exit $?"; tail -8 "$OUT/split-spin$spin.txt" | tee -a "$OUT/step.log"
  done
fi
if has llama; then
  [ -n "$LPID" ] && while kill -0 $LPID 2>/dev/null && [ $SECONDS -lt 470 ]; do sleep 2; done
  if [ -x $LB/bin/llama-batched-bench ] && [ -f $GGUF ]; then
    (cd $LB/bin && timeout 60 ./llama-batched-bench -m $GGUF -ngl 99 -fa on -c $((max_n * (PROMPT + NEW))) \
      -npp $PROMPT -ntg $NEW -npl "$ns_csv" --output-format jsonl) >"$OUT/llamacpp.txt" 2>&1
    log "llama-batched-bench exit $?"; grep -E "^\{" "$OUT/llamacpp.txt" | tail -6 | tee -a "$OUT/step.log"
    if [ -x $LB/bin/llama-bench ]; then  # one sequence: alone, and through its own RPC split
      (cd $LB/bin && timeout 60 ./llama-bench -m $GGUF -ngl 99 -fa 1 -p $PROMPT -n $NEW -r 3 -o md) \
        >"$OUT/llama-bench.md" 2>&1
      log "llama-bench exit $?"; grep -E "^\|" "$OUT/llama-bench.md" | tee -a "$OUT/step.log"
      if [ -x $LB/bin/ggml-rpc-server ]; then
        (cd $LB/bin && exec ./ggml-rpc-server -H 127.0.0.1 -p 50552) >"$OUT/llama-rpc.log" 2>&1 &
        RP=$!; sleep 3
        (cd $LB/bin && timeout 90 ./llama-bench -m $GGUF --rpc 127.0.0.1:50552 -ngl 99 -fa 1 -p $PROMPT -n $NEW -r 3 -o md) \
          >"$OUT/llama-bench-rpc.md" 2>&1
        log "llama-bench over rpc exit $?"; grep -E "^\|" "$OUT/llama-bench-rpc.md" | tee -a "$OUT/step.log"
        kill $RP 2>/dev/null; wait $RP 2>/dev/null
      fi
    fi
  else log "llama.cpp not built"; tail -5 "$OUT/llama-build.log"; [ -n "$LPID" ] && kill -- -$LPID 2>/dev/null; fi
fi
if has hop && [ $SECONDS -lt ${HOP_BEFORE:-460} ]; then
  # with BUILD=0 (a warm machine's build), only when the reconfigure leaves a small rebuild: a
  # copied tree with new file times would rebuild everything here
  if [ "${REHEARSE:-0}" = 1 ] || { [ -f /opt/deps/usr/include/gloo/algorithm.h ] &&
     cmake -S . -B "$B" -DDUET_GLOO_INCLUDE_DIR=/opt/deps/usr/include >"$OUT/cfg-gloo.log" 2>&1 &&
     edges=$(cmake --build "$B" --target duet-cloud duet-stage -- -n 2>/dev/null | grep -c '^\[') &&
     { [ "${BUILD:-1}" != 0 ] || [ "$edges" -le 40 ] || { log "hop: $edges build steps to redo, skipped"; false; }; } &&
     cmake --build "$B" -j14 --target duet-cloud duet-stage >"$OUT/build-gloo.log" 2>&1; }; then
    layers=$(python3 -c "import json; print(json.load(open('$M/llama-1b/config.json'))['num_hidden_layers'])")
    d0=$([ $DEV = cuda ] && echo cuda:0 || echo $DEV)
    cloud 7799 --plan "$d0=0-$((layers - 1))" && { load 7799 hop-alone ${HOP_NS:-1,8,64}; stop_cloud 7799; }
    # Debian's LibTorch 1.13 (a rehearsal) cannot bind its store to one address
    if cloud 7800 --plan "$d0@w1=0-$((layers - 1))" --cluster-address 127.0.0.1 --cluster-port 0 \
         $([ "${REHEARSE:-0}" = 1 ] && echo --cluster-allow-wildcard-store); then
      store=$(grep -oE "store on [0-9.]+:[0-9]+" "$OUT/cloud-7800.log" | grep -oE "[0-9]+$")
      $B/cloud/duet-stage --model $M/llama-1b --name w1 --front 127.0.0.1:$store --address 127.0.0.1 \
        >"$OUT/stage-w1.log" 2>&1 &
      WP=$!
      for _ in $(seq 240); do grep -q "stage cluster ready" "$OUT/cloud-7800.log" && break; sleep 0.25; done
      if grep -q "stage cluster ready" "$OUT/cloud-7800.log"; then load 7800 hop-worker ${HOP_NS:-1,8,64}
      else log "the worker did not join"; tail -5 "$OUT/stage-w1.log"; fi
      stop_cloud 7800; kill $WP 2>/dev/null; wait $WP 2>/dev/null
    fi
  else log "hop: no gloo build ($(grep -m3 -E 'error' "$OUT/build-gloo.log" "$OUT/cfg-gloo.log" 2>/dev/null | cut -c1-300))"; fi
fi
if has notagen && [ $SECONDS -lt ${NOTAGEN_BEFORE:-380} ]; then  # ~2 minutes: NotaGen-X's shape, host vs device sampling
  OUT=$OUT/notagen timeout 150 bash scripts/bench/gpu_notagen.sh "$B" >"$OUT/notagen.log" 2>&1
  log "gpu_notagen.sh exit $?"; tail -15 "$OUT/notagen/notagen-bench.md" 2>/dev/null | tee -a "$OUT/step.log"
fi
if [ -n "${MUSIC_PID:-}" ]; then
  while kill -0 $MUSIC_PID 2>/dev/null && [ $SECONDS -lt ${MUSIC_UNTIL:-560} ]; do sleep 2; done
  log "music sizes: $(kill -0 $MUSIC_PID 2>/dev/null && echo 'still running (stopped)' || echo 'ended')"
  kill -- -$MUSIC_PID 2>/dev/null; grep -E "^h[0-9]|BEST|SMOKE|skipped|FAILED" "$OUT/music.log" | tee -a "$OUT/step.log"
fi
log "done"

#!/usr/bin/env bash
# Issue 12's figures on the GPU machine, for Llama-3.2-1B, Qwen3-0.6B and Gemma-3-1B shapes with
# random weights in bf16 (scripts/bench/make_bench_models.py):
#   memory  the daemon's stage plan table (1 and 2 stages: weight and KV bytes per stage) and the
#           edge's load report (duet-bench-load --pieces edge: file bytes read, resident growth)
#   speed   batch 1: duet mono and split (CURVE, loopback; duet-bench); 1 and 64 sessions: duet-load
#           against the shared daemon; transformers generate() with the static cache at batch 1
#           and 64 (bench/hf_batched.py; its compile warm-up is not timed)
# $1: an already-built CUDA build folder with duet-cloud, duet-load, duet-bench, duet-bench-load
# and duet-keygen. Results land in $OUT (models.tar.gz holds everything, rewritten as parts end).
#   bash scripts/bench/gpu_models.sh /tmp/b     # ~3-4 minutes (every step has a timeout: <= 6 min)
# Knobs: MODELS ("llama32-1b qwen3-0.6b gemma3-1b"), PROMPT (64), NEW (64), N (64), PARTS ("memory
# bench load hf": which steps run), LOAD_DTYPE (bf16; fp32 checks batched == single-session tokens
# without bf16 near-ties on random weights), HF_BATCHES (1,$N), HF_TIMEOUT (120 s); for a dry
# run of the commands elsewhere: DEVICE=cpu M=tests/fixtures/models MODELS="gemma3 qwen3" MAKE=0.
set -uo pipefail
B=${1:?usage: gpu_models.sh BUILD_DIR}
OUT=${OUT:-$PWD/bench-out}; R=$OUT/models; mkdir -p "$R"
M=${M:-/tmp/bench-models}; DEVICE=${DEVICE:-cuda}
MODELS=${MODELS:-"llama32-1b qwen3-0.6b gemma3-1b"}
PROMPT=${PROMPT:-64}; NEW=${NEW:-64}; N=${N:-64}
PARTS=${PARTS:-"memory bench load hf"}; LOAD_DTYPE=${LOAD_DTYPE:-bf16}
HF_BATCHES=${HF_BATCHES:-1,$N}; HF_TIMEOUT=${HF_TIMEOUT:-120}
want() { [[ " $PARTS " == *" $1 "* ]]; }
export PYTHONUNBUFFERED=1
pack() { tar -C "$OUT" -czf "$OUT/models.tar.gz" models; }
log() { echo "[models $(date +%T)] $*" | tee -a "$R/models.log"; }
t0=$SECONDS
for t in cloud/duet-cloud bench/duet-load bench/duet-bench bench/duet-bench-load protocol/duet-keygen; do
  [ -x "$B/$t" ] || { log "missing $B/$t: build the targets named above"; exit 1; }
done
log "device: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null)"
[ "${MAKE:-1}" = 0 ] || python3 scripts/bench/make_bench_models.py --out "$M" --only "$(echo $MODELS | tr ' ' ',')" 2>&1 | tee -a "$R/models.log"
K=/tmp/models-keys; rm -rf "$K"; mkdir -p "$K/clients"
"$B/protocol/duet-keygen" --out "$K" --name server >/dev/null && "$B/protocol/duet-keygen" --out "$K/clients" --name load >/dev/null
start_cloud() {  # NAME MODEL DEVICES [DTYPE]: starts duet-cloud, waits until it listens; CP = its pid
  "$B/cloud/duet-cloud" --model "$2" --listen tcp://127.0.0.1:7791 --devices "$3" --dtype "${4:-bf16}" \
    --secret-key "$K/server.key_secret" --authorized-keys "$K/clients" --max-sessions $((N + 8)) \
    --max-positions $((PROMPT + NEW)) --kv-memory-mb 16384 --idle-timeout 600 >"$R/cloud-$1.log" 2>&1 &
  CP=$!
  for _ in $(seq 240); do grep -q "listening on" "$R/cloud-$1.log" && return 0; kill -0 $CP 2>/dev/null || break; sleep 0.25; done
  log "duet-cloud $1 did not start"; tail -5 "$R/cloud-$1.log"; return 1
}
for m in $MODELS; do
  [ -d "$M/$m" ] || { log "$m: no model folder"; continue; }
  if want memory; then
    # memory: the edge's pieces alone, and the daemon's plan over 1 and 2 stages
    "$B/bench/duet-bench-load" --model "$M/$m" --pieces edge --dtype bf16 >"$R/edge-load-$m.txt" 2>&1
    log "$m edge load: $(cat "$R/edge-load-$m.txt")"
    if start_cloud "$m-2stages" "$M/$m" "$DEVICE,$DEVICE"; then kill $CP; wait $CP; fi
    sed -n '/stage plan/,/^KV:/p' "$R/cloud-$m-2stages.log" | tee -a "$R/models.log"
  fi
  if want bench; then
    # batch 1: mono, split (CURVE), transformers static
    timeout 35 "$B/bench/duet-bench" --model "$M/$m" --dtype bf16 --device "$DEVICE" --modes mono,curve \
      --prompt-len $PROMPT --new-tokens $NEW --repeats 2 --warmup 1 --json "$R/bench-$m.json" \
      >"$R/bench-$m.txt" 2>&1
    log "$m duet-bench exit $?"; tail -8 "$R/bench-$m.txt" | tee -a "$R/models.log"
    pack
  fi
  if want load; then
    # N sessions against one daemon (1 stage), then transformers at batch N
    if start_cloud "$m-$LOAD_DTYPE" "$M/$m" "$DEVICE" "$LOAD_DTYPE"; then
      sed -n '/stage plan/,/^KV:/p' "$R/cloud-$m-$LOAD_DTYPE.log" >>"$R/models.log"
      timeout 60 "$B/bench/duet-load" --endpoint tcp://127.0.0.1:7791 --server-key "$K/server.key" \
        --client-key "$K/clients/load.key_secret" --model "$M/$m" --name "$m" --dtype $LOAD_DTYPE --wire-dtype $LOAD_DTYPE --edge-device "$DEVICE" \
        --sessions 1,$N --prompts 4 --prompt-len $PROMPT --new-tokens $NEW --daemon-pid $CP \
        --json "$R/load-$m-$LOAD_DTYPE.json" >"$R/load-$m-$LOAD_DTYPE.txt" 2>&1
      log "$m duet-load exit $?"; tail -4 "$R/load-$m-$LOAD_DTYPE.txt" | tee -a "$R/models.log"
      kill $CP; wait $CP
    fi
  fi
  if want hf; then
    timeout $HF_TIMEOUT python3 bench/hf_batched.py --model "$M/$m" --device "$DEVICE" --dtype bf16 --batch-sizes $HF_BATCHES --variants static \
      --prompt-len $PROMPT --new-tokens $NEW --deadline-s 30 --json "$R/hf-$m-$HF_BATCHES.json" >"$R/hf-$m-$HF_BATCHES.log" 2>&1
    log "$m hf_batched exit $?"; grep -E "tok/s|Error" "$R/hf-$m-$HF_BATCHES.log" | tail -3 | tee -a "$R/models.log"
  fi
  pack
done
log "done in $((SECONDS - t0)) s"
pack

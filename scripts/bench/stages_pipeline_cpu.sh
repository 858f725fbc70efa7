#!/usr/bin/env bash
# The engine with stage workers, end to end (issue 22's "stages pipelined"): a duet-cloud front
# door whose plan puts every layer in two duet-stage workers, each pinned to its own core with one
# LibTorch thread (stages that own their cores, as on separate hosts), driven by duet-load over
# loopback. The same load with one step at a time (--steps-in-flight 1) and with the automatic
# two (one per stage). Prints duet-load's tables and the engine's stop line for each.
#   bash scripts/bench/stages_pipeline_cpu.sh            (after a build in build/)
# Knobs: MODEL (models/abc-folk), NS (1,8,32), NEW (64), PROMPT (16), BUILD (build), CORES ("0 1")
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${BUILD:-build}; MODEL=${MODEL:-models/abc-folk}; NS=${NS:-1,8,32}; NEW=${NEW:-64}; PROMPT=${PROMPT:-16}
read -r -a CORES <<<"${CORES:-0 1}"
OUT=$(mktemp -d /tmp/duet-stages-bench.XXXXXX)
layers=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]+'/config.json'))['num_hidden_layers'])" "$MODEL")
half=$((layers / 2))
plan="cpu@w1=0-$((half - 1)),cpu@w2=$half-$((layers - 1))"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

run_one() {  # STEPS_IN_FLIGHT PORT
  local sif=$1 port=$2 log=$OUT/cloud-$1.log
  OMP_NUM_THREADS=1 "$B/cloud/duet-cloud" --model "$MODEL" --listen "tcp://127.0.0.1:$port" --insecure \
    --plan "$plan" --cluster-address 127.0.0.1 --cluster-port 0 --cluster-allow-wildcard-store \
    --steps-in-flight "$sif" --max-sessions 80 --log-level info >"$log" 2>&1 &
  local cp=$!; pids+=("$cp")
  local store=""
  for _ in $(seq 100); do
    store=$(grep -oE "store on 127\.0\.0\.1:[0-9]+" "$log" | grep -oE "[0-9]+$" || true)
    [ -n "$store" ] && break; sleep 0.1
  done
  [ -n "$store" ] || { echo "front door did not start:"; cat "$log"; exit 1; }
  for w in 1 2; do
    OMP_NUM_THREADS=1 taskset -c "${CORES[$((w - 1))]}" "$B/cloud/duet-stage" --model "$MODEL" --name "w$w" \
      --front "127.0.0.1:$store" --address 127.0.0.1 >"$OUT/w$w-$sif.log" 2>&1 &
    pids+=("$!")
  done
  for _ in $(seq 200); do grep -q "stage cluster ready" "$log" && break; sleep 0.1; done
  grep -q "stage cluster ready" "$log" || { echo "workers did not join:"; tail -5 "$log"; exit 1; }
  echo "== steps in flight: $sif ($( [ "$sif" = 0 ] && echo "automatic: one per stage" || echo "one at a time")), plan $plan"
  "$B/bench/duet-load" --endpoint "tcp://127.0.0.1:$port" --insecure --model "$MODEL" --sessions "$NS" \
    --prompt-len "$PROMPT" --new-tokens "$NEW" --no-check 2>&1 | grep -E "^ *(sessions|[0-9]+) " || true
  kill "$cp"; wait "$cp" 2>/dev/null || true
  grep -h "engine stopping" "$log" | sed 's/.*engine stopping: /  engine: /'
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

echo "$(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
run_one 1 7851
run_one 0 7852

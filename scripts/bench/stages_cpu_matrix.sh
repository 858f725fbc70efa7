#!/usr/bin/env bash
# Issue 22's CPU benchmark: aggregate tok/s of the bundled model served by 1 process (the daemon
# alone), 2 (front door + one duet-stage worker holding every layer) and 3 (front door + two
# workers, half the layers each), one step at a time and pipelined, over loopback and between
# network namespaces ("hosts" joined by veth to a bridge) with tc tbf at RATE Mbit/s on every
# host's link. duet-load drives the front door over loopback in the front door's namespace.
# Every process runs one LibTorch thread; each worker is pinned to its own core (the daemon alone
# to core 0): a stage owns a core, as on separate hosts.
#   sudo bash scripts/bench/stages_cpu_matrix.sh        (after a build in build/; root for netns)
# Knobs: MODEL (models/abc-folk), NS (1,8,64), NEW (32), PROMPT (16), RATE (1000), BUILD (build),
#        NETNS (1: also the namespaces; 0: loopback only), ROWS (all, or some of: lo1 lo2 lo2p lo3
#        lo3p ns2 ns2p ns3 ns3p). The whole matrix takes about 30 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${BUILD:-build}; MODEL=${MODEL:-models/abc-folk}; NS=${NS:-1,8,64}; NEW=${NEW:-32}; PROMPT=${PROMPT:-16}
RATE=${RATE:-1000}; NETNS=${NETNS:-1}
OUT=$(mktemp -d /tmp/duet-stages-matrix.XXXXXX)
layers=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]+'/config.json'))['num_hidden_layers'])" "$MODEL")
half=$((layers / 2))
n="dm$(( $$ % 100000 ))"
pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
cleanup() {
  stop_all
  if [ "$NETNS" = 1 ]; then bridge_down "$n" front w1 w2; fi
}
trap cleanup EXIT
# shellcheck source=../lab/bridge.sh
source scripts/lab/bridge.sh

# namespaces: front 10.79.0.1, w1 .2, w2 .3 on a bridge; tbf on each host's end of its veth
if [ "$NETNS" = 1 ]; then
  if ! reason=$(bash scripts/lab/netns.sh check 2>&1); then
    echo "no namespaces here ($reason): loopback only"; NETNS=0
  else
    bridge_up "$n" 10.79.0 "$RATE" front w1 w2
  fi
fi

# run_one LABEL WHERE PROCS STEPS_IN_FLIGHT PORT   (WHERE: lo | ns)
run_one() {
  local label=$1 where=$2 procs=$3 sif=$4 port=$5 log=$OUT/$1.log
  local exf=() exw1=() exw2=() front=127.0.0.1 a1=127.0.0.1 a2=127.0.0.1
  if [ "$where" = ns ]; then
    exf=(ip netns exec "$n-front"); exw1=(ip netns exec "$n-w1"); exw2=(ip netns exec "$n-w2")
    front=10.79.0.1; a1=10.79.0.2; a2=10.79.0.3
  fi
  local args=(--model "$MODEL" --listen "tcp://127.0.0.1:$port" --insecure --max-sessions 80 --log-level info)
  case $procs in
    1) args+=(--plan "cpu=0-$((layers - 1))") ;;
    2) args+=(--plan "cpu@w1=0-$((layers - 1))") ;;
    3) args+=(--plan "cpu@w1=0-$((half - 1)),cpu@w2=$half-$((layers - 1))") ;;
  esac
  [ "$procs" -gt 1 ] && args+=(--cluster-address "$front" --cluster-port 0 --cluster-allow-wildcard-store --steps-in-flight "$sif")
  if [ "$procs" = 1 ]; then
    OMP_NUM_THREADS=1 "${exf[@]}" taskset -c 0 "$B/cloud/duet-cloud" "${args[@]}" >"$log" 2>&1 &
  else
    OMP_NUM_THREADS=1 "${exf[@]}" "$B/cloud/duet-cloud" "${args[@]}" >"$log" 2>&1 &
  fi
  pids+=("$!")
  for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
  grep -q "listening on" "$log" || { echo "$label: the daemon did not start:"; tail -5 "$log"; exit 1; }
  if [ "$procs" -gt 1 ]; then
    local store; store=$(grep -oE "store on [0-9.]+:[0-9]+" "$log" | grep -oE "[0-9]+$")
    OMP_NUM_THREADS=1 "${exw1[@]}" taskset -c 0 "$B/cloud/duet-stage" --model "$MODEL" --name w1 \
      --front "$front:$store" --address "$a1" >"$OUT/$label-w1.log" 2>&1 &
    pids+=("$!")
    if [ "$procs" = 3 ]; then
      OMP_NUM_THREADS=1 "${exw2[@]}" taskset -c 1 "$B/cloud/duet-stage" --model "$MODEL" --name w2 \
        --front "$front:$store" --address "$a2" >"$OUT/$label-w2.log" 2>&1 &
      pids+=("$!")
    fi
    for _ in $(seq 300); do grep -q "stage cluster ready" "$log" && break; sleep 0.1; done
    grep -q "stage cluster ready" "$log" || { echo "$label: the workers did not join:"; tail -5 "$log"; exit 1; }
  fi
  "${exf[@]}" "$B/bench/duet-load" --endpoint "tcp://127.0.0.1:$port" --insecure --model "$MODEL" --sessions "$NS" \
    --prompt-len "$PROMPT" --new-tokens "$NEW" --no-check >"$OUT/$label-load.txt" 2>&1 || true
  stop_all
  # sessions and aggregate tok/s from duet-load's table; the engine's stop line
  local row; row=$(awk '/^ *[0-9]+ / {printf "%s=%s ", $1, $2}' "$OUT/$label-load.txt")
  printf "%-34s %s\n" "$label" "${row:-(no result: see $OUT/$label-load.txt)}"
  grep -h "engine stopping" "$log" | sed 's/.*engine stopping: /    engine: /' | cut -c1-170
}

echo "$(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model $MODEL ($layers layers), prompt $PROMPT + $NEW new tokens, sessions $NS; columns: sessions=aggregate tok/s"
want() { [ "${ROWS:-all}" = all ] || [[ " $ROWS " == *" $1 "* ]]; }
want lo1 && run_one "1 process" lo 1 1 7861
want lo2 && run_one "2 processes, one step in flight" lo 2 1 7862
want lo2p && run_one "2 processes, two in flight" lo 2 2 7863
want lo3 && run_one "3 processes, one step in flight" lo 3 1 7864
want lo3p && run_one "3 processes, one per stage" lo 3 0 7865
if [ "$NETNS" = 1 ]; then
  want ns2 && run_one "netns ${RATE}M: 2 proc, one in flight" ns 2 1 7866
  want ns2p && run_one "netns ${RATE}M: 2 proc, two in flight" ns 2 2 7867
  want ns3 && run_one "netns ${RATE}M: 3 proc, one in flight" ns 3 1 7868
  want ns3p && run_one "netns ${RATE}M: 3 proc, one per stage" ns 3 0 7869
fi
true
echo "logs: $OUT"

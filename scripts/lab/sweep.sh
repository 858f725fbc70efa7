#!/usr/bin/env bash
# The link lab's sweep: one daemon, then for every RTT x bandwidth x wire dtype x drafting mode a
# `duet-edge generate --json` across the emulated link; writes results.csv / results.json and the
# plots (plot_sweep.py) into --out. docs/LINKS.md explains the set-up and the columns.
#
#   bash scripts/lab/sweep.sh                       # the whole grid (see the defaults below)
#   bash scripts/lab/sweep.sh --quick               # CI scale: 2 RTTs x 2 rates x fp32, 6 tokens
#   bash scripts/lab/sweep.sh --rtt 0,80 --bw 0 --wire fp32,bf16 --draft none --tokens 64
#
# The link: with root and iproute2 (scripts/lab/netns.sh check), the daemon runs in namespace
# NAME-cloud, the edge and duet-relay in NAME-edge, tc tbf on the veth sets the rate and the relay
# adds RTT/2 each way. Otherwise (or with --relay-only) everything runs on loopback and the relay
# emulates the rate too; the sweep says which it used, and so do the results ("link" column).
#
# Options (lists are comma-separated):
#   --rtt LIST      round trips to emulate, ms              (0,1,5,20,50,80,150)
#   --bw LIST       rates, Mbit/s each way, 0 = unlimited   (10,100,1000,0)
#   --wire LIST     duet-edge --wire-dtype values           (fp32,bf16,fp16)
#   --draft LIST    drafting modes, names in DRAFT_FLAGS    (none)
#   --draft-flags NAME=FLAGS  define or redefine a mode without editing this file
#   --tokens N      tokens per run (--ignore-eos)           (32)
#   --repeats N     runs per cell                           (1)
#   --model DIR     (models/abc-folk)    --prompt-args "..."  how the edge is prompted
#   --build DIR     (build)              --out DIR            (out/lab-sweep)
#   --devices D --dtype T   the daemon's (cpu, fp32)     --cloud-arg X / --edge-arg X  extra flags (repeatable)
#   --relay-only    no namespaces even where possible    --name N  namespace name (duetlab)
#   --insecure      plain TCP instead of CURVE           --no-plot  CSV/JSON only
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
lab=$src/scripts/lab

# Drafting modes: name -> duet-edge flags. Adding a mode is one line here (or --draft-flags).
# (ngram: prompt lookup, duet-edge --draft from the speculative-decoding work; a duet-edge without
# that flag refuses it with its own sentence)
declare -A DRAFT_FLAGS=(
  [none]=""
  [ngram]="--draft ngram"
)

rtts=0,1,5,20,50,80,150 bws=10,100,1000,0 wires=fp32,bf16,fp16 drafts=none tokens=32 repeats=1
model=$src/models/abc-folk prompt_args="" build=$src/build out=$src/out/lab-sweep
devices=cpu dtype=fp32 relay_only=0 name=duetlab insecure=0 plot=1
cloud_extra=() edge_extra=()
die() { echo "sweep.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case $1 in
    --rtt) rtts=$2; shift 2 ;;
    --bw) bws=$2; shift 2 ;;
    --wire) wires=$2; shift 2 ;;
    --draft) drafts=$2; shift 2 ;;
    --draft-flags) [[ "$2" == *=* ]] || die "--draft-flags wants NAME=FLAGS"; DRAFT_FLAGS[${2%%=*}]=${2#*=}; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --prompt-args) prompt_args=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --devices) devices=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    --cloud-arg) cloud_extra+=("$2"); shift 2 ;;
    --edge-arg) edge_extra+=("$2"); shift 2 ;;
    --relay-only) relay_only=1; shift ;;
    --name) name=$2; shift 2 ;;
    --insecure) insecure=1; shift ;;
    --no-plot) plot=0; shift ;;
    --quick) rtts=0,20; bws=100,0; wires=fp32; tokens=6; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (--help lists them)" ;;
  esac
done
IFS=, read -ra RTTS <<<"$rtts"; IFS=, read -ra BWS <<<"$bws"
IFS=, read -ra WIRES <<<"$wires"; IFS=, read -ra DRAFTS <<<"$drafts"
num='^[0-9]+([.][0-9]+)?$'
for x in "${RTTS[@]}" "${BWS[@]}"; do [[ "$x" =~ $num ]] || die "'$x' is not a number (--rtt in ms, --bw in Mbit/s)"; done
for w in "${WIRES[@]}"; do [[ "$w" =~ ^(fp32|bf16|fp16|[a-z0-9]+)$ ]] || die "wire dtype '$w' is not a name"; done
for d in "${DRAFTS[@]}"; do [ -n "${DRAFT_FLAGS[$d]+set}" ] || die "drafting mode '$d' is unknown: add it to DRAFT_FLAGS in $0 or give --draft-flags '$d=FLAGS' (known: ${!DRAFT_FLAGS[*]})"; done
[[ "$tokens" =~ ^[1-9][0-9]*$ ]] || die "--tokens must be a positive integer"
[[ "$repeats" =~ ^[1-9][0-9]*$ ]] || die "--repeats must be a positive integer"
for b in cloud/duet-cloud edge/client/duet-edge tools/duet-relay protocol/duet-keygen; do
  [ -x "$build/$b" ] || die "$build/$b is missing: build first (bash scripts/build.sh, or cmake --build $build --target duet-cloud duet-edge duet-relay duet-keygen)"
done
[ -d "$model" ] || die "model folder $model does not exist"
if [ -z "$prompt_args" ]; then  # a music model gets a tune prompt; others three token ids
  if [ -f "$model/duet.json" ]; then prompt_args="--style oneills-jig --meter 6/8 --key D --temperature 0"
  else prompt_args="--prompt-ids 1,2,3 --temperature 0"; fi
fi

mode=netns
if [ $relay_only = 1 ]; then mode=relay-only
elif ! why=$(bash "$lab/netns.sh" check 2>&1); then
  mode=relay-only
  echo "sweep.sh: no namespaces here ($why): relay-only on loopback, the relay emulates the rate too"
fi

mkdir -p "$out/runs"
rm -f "$out"/runs/*.json "$out/cells.jsonl" "$out"/*.png "$out/results.csv" "$out/results.json"
tmp=$(mktemp -d)
pids=()
cleanup() {
  printf '%s\n' "${pids[@]}" >"$out/pids"  # what it started, for checks that nothing outlives it
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ $mode = netns ] && bash "$lab/netns.sh" down --name "$name" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_edge() { if [ $mode = netns ]; then ip netns exec "$name-edge" "$@"; else "$@"; fi; }
# For background jobs, as `( exec_in SIDE CMD... ) >LOG 2>&1 &`: the subshell becomes the command
# (ip netns exec execs it too), so $! is the process to stop, not a shell that would leave it running.
exec_in() {
  local side=$1
  shift
  if [ $mode = netns ]; then exec ip netns exec "$name-$side" "$@"; else exec "$@"; fi
}
wait_line() {  # FILE PATTERN PID WHAT
  for _ in $(seq 600); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { cat "$1" >&2; die "$4 exited before it was ready"; }
    sleep 0.1
  done
  cat "$1" >&2; die "$4 was not ready within 60 s"
}

# keys, the daemon, the echo server for link pings
sec=(); esec=()
if [ $insecure = 1 ]; then sec=(--insecure); esec=(--insecure)
else
  "$build/protocol/duet-keygen" --out "$tmp/keys" --name server >/dev/null
  "$build/protocol/duet-keygen" --out "$tmp/keys/clients" --name edge >/dev/null
  sec=(--secret-key "$tmp/keys/server.key_secret" --authorized-keys "$tmp/keys/clients")
  esec=(--server-key "$tmp/keys/server.key" --client-key "$tmp/keys/clients/edge.key_secret")
fi
if [ $mode = netns ]; then
  bash "$lab/netns.sh" down --name "$name" >/dev/null 2>&1 || true
  bash "$lab/netns.sh" up --name "$name" --rate 0
  cloud_host=10.77.0.1
else
  cloud_host=127.0.0.1
fi
wire_list=$(IFS=,; echo "${WIRES[*]}")
( exec_in cloud "$build/cloud/duet-cloud" --model "$model" --listen "tcp://$cloud_host:*" --devices "$devices" \
  --dtype "$dtype" --wire-dtypes "$wire_list" "${sec[@]}" "${cloud_extra[@]}" ) >"$out/cloud.log" 2>&1 &
cloud_pid=$!; pids+=($cloud_pid)
wait_line "$out/cloud.log" "^listening on" $cloud_pid duet-cloud
cloud_ep=$(sed -n 's/^listening on \(tcp:[^ ]*\).*/\1/p' "$out/cloud.log" | head -1)
cloud_port=${cloud_ep##*:}
( exec_in cloud python3 "$lab/linkping.py" echo --listen "$cloud_host:0" ) >"$tmp/echo.log" 2>&1 &
echo_pid=$!; pids+=($echo_pid)
wait_line "$tmp/echo.log" "^listening on" $echo_pid "the echo server"
echo_port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/echo.log")

start_relay() {  # LOG UPSTREAM_PORT DELAY RATE -> sets relay_port, relay_pid
  local rate_args=()
  [ $mode = relay-only ] && rate_args=(--rate-mbit "$4")
  : >"$1"  # emptied here, not by the child's redirection: wait_line must not see the last cell's line
  ( exec_in edge "$build/tools/duet-relay" --listen 127.0.0.1:0 --connect "$cloud_host:$2" --delay-ms "$3" \
    "${rate_args[@]}" ) >"$1" 2>&1 &
  relay_pid=$!; pids+=($relay_pid)
  wait_line "$1" "listening on" $relay_pid duet-relay
  relay_port=$(sed -n 's/^duet-relay: listening on 127.0.0.1:\([0-9]*\) .*/\1/p' "$1")
  [ -n "$relay_port" ] || { cat "$1" >&2; die "no port in duet-relay's listening line"; }
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

host=$(hostname); started=$(date -u +%FT%TZ); t_start=$SECONDS
cells=$(( ${#RTTS[@]} * ${#BWS[@]} * ${#WIRES[@]} * ${#DRAFTS[@]} ))
echo "sweep: $cells cells x $repeats, $tokens tokens each, model $model, link: $mode, daemon $devices/$dtype, out $out"
n=0
for bw in "${BWS[@]}"; do
  [ $mode = netns ] && bash "$lab/netns.sh" rate --name "$name" "$bw"
  for rtt in "${RTTS[@]}"; do
    delay=$(awk -v r="$rtt" 'BEGIN{printf "%.4f", r / 2}')
    start_relay "$tmp/relay-daemon.log" "$cloud_port" "$delay" "$bw"; daemon_relay=$relay_pid; dport=$relay_port
    start_relay "$tmp/relay-echo.log" "$echo_port" "$delay" "$bw"; echo_relay=$relay_pid
    ping=$(in_edge python3 "$lab/linkping.py" ping --connect "127.0.0.1:$relay_port" --count 10 --json)
    for wire in "${WIRES[@]}"; do
      for draft in "${DRAFTS[@]}"; do
        for rep in $(seq "$repeats"); do
          n=$((n + 1))
          f="runs/rtt${rtt}_bw${bw}_${wire}_${draft}_${rep}.json"
          # shellcheck disable=SC2086  # prompt and draft flags are word lists
          if ! in_edge timeout 600 "$build/edge/client/duet-edge" generate --model "$model" --server "tcp://127.0.0.1:$dport" \
               "${esec[@]}" --wire-dtype "$wire" -n "$tokens" --ignore-eos --json $prompt_args ${DRAFT_FLAGS[$draft]} \
               "${edge_extra[@]}" >"$out/$f" 2>"$tmp/edge.err"; then
            cat "$tmp/edge.err" >&2; die "duet-edge failed at rtt $rtt ms, $bw Mbit/s, $wire, draft $draft"
          fi
          python3 - "$out" "$f" "$rtt" "$bw" "$wire" "$draft" "$rep" "$mode" "$ping" <<'PY'
import json, sys
out, f, rtt, bw, wire, draft, rep, mode, ping = sys.argv[1:]
cell = {"file": f, "rtt_ms": float(rtt), "bw_mbit": float(bw), "wire": wire, "draft": draft, "repeat": int(rep),
        "link": mode, "ping": json.loads(ping)}
with open(f"{out}/cells.jsonl", "a") as o:
    o.write(json.dumps(cell) + "\n")
s = json.load(open(f"{out}/{f}"))["summary"]
print(f"  rtt {rtt:>5} ms  {('unlimited' if float(bw) == 0 else bw + ' Mbit/s'):>14}  {wire}  {draft:<6}  "
      f"ping {cell['ping']['rtt_ms']['median']:8.2f} ms  {s['decode_tok_s'] or 0:8.2f} tok/s  "
      f"{s['tokens_per_round'] or 0:.2f} tok/round")
PY
        done
      done
    done
    stop_pid $daemon_relay; stop_pid $echo_relay
  done
done
echo "sweep: $n runs in $((SECONDS - t_start)) s"
python3 - "$out" "$host" "$started" "$mode" "$devices" "$dtype" "$model" "$tokens" <<'PY'
import json, sys
out, host, started, mode, devices, dtype, model, tokens = sys.argv[1:]
json.dump({"host": host, "started": started, "link": mode, "devices": devices, "dtype": dtype, "model": model,
           "tokens": int(tokens)}, open(f"{out}/sweep.json", "w"), indent=1)
PY
args=("$out")
[ $plot = 1 ] || args+=(--no-plot)
# the plots need matplotlib: Debian's python3-matplotlib is /usr/bin/python3's (PLOT_PYTHON overrides)
plot_py=${PLOT_PYTHON:-}
if [ -z "$plot_py" ]; then
  plot_py=python3
  for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null && "$p" -c "import matplotlib" 2>/dev/null; then plot_py=$p; break; fi
  done
fi
"$plot_py" "$lab/plot_sweep.py" "${args[@]}"

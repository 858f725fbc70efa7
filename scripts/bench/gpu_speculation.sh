#!/usr/bin/env bash
# Speculative decoding on the GPU machine (issue 11): a daemon on cuda serving llama-1b's shape
# (random weights, fp32 so that greedy can be compared token for token) and the bundled abc-folk;
# the edge on cuda generates with --draft none and --draft ngram (adaptive, and fixed k = 4, 8)
# from a repetitive prompt: tokens identical?, round trips, ms per token, the daemon's compute per
# round by positions (what a verification of k drafts costs against one position).
#   bash scripts/bench/gpu_speculation.sh BUILD_DIR      (results in $OUT, ~3 minutes)
set -uo pipefail
B=${1:?usage: gpu_speculation.sh CUDA_BUILD_DIR}
DEV=${DEV:-cuda}  # DEV=cpu: a dry run of the script on a CPU build
OUT=${OUT:-$PWD/spec-out}; mkdir -p "$OUT"
log() { echo "[spec $(date +%T)] $*" | tee -a "$OUT/spec.log"; }
python3 scripts/bench/make_bench_models.py --out /tmp/bench-models --only llama-1b >"$OUT/models.log" 2>&1 ||
  { log "make_bench_models failed"; tail -5 "$OUT/models.log"; }
K=/tmp/spec-keys; rm -rf $K; mkdir -p $K/clients
$B/protocol/duet-keygen --out $K --name server >/dev/null; $B/protocol/duet-keygen --out $K/clients --name edge >/dev/null
run_model() {  # NAME MODEL DTYPE PROMPT-ARGS...
  local name=$1 model=$2 dtype=$3; shift 3
  $B/cloud/duet-cloud --model "$model" --listen tcp://127.0.0.1:7796 --devices $DEV --dtype "$dtype" \
    --secret-key $K/server.key_secret --authorized-keys $K/clients --max-positions 1024 >"$OUT/cloud-$name.log" 2>&1 &
  local cp=$!; sleep 8
  local edge=($B/edge/client/duet-edge generate --model "$model" --server tcp://127.0.0.1:7796 --server-key $K/server.key
              --client-key $K/clients/edge.key_secret --device $DEV --dtype "$dtype" --json --temperature 0 --ignore-eos "$@")
  for mode in "none" "ngram" "ngram --draft-k 4 --draft-fixed" "ngram --draft-k 8 --draft-fixed"; do
    local tag=$(echo "$mode" | tr -d ' -')
    timeout 100 "${edge[@]}" --draft $mode >"$OUT/$name-$tag.json" 2>"$OUT/$name-$tag.err"; log "$name --draft $mode: exit $?"
  done
  kill $cp; wait $cp 2>/dev/null
}
# llama-1b: a prompt of random ids repeated (greedy on random weights settles into loops too)
ids=$(python3 -c "import random; r=random.Random(3); p=[r.randrange(3,32000) for _ in range(24)]; print(','.join(map(str,[1]+p*3)))")
[ -d /tmp/bench-models/llama-1b ] && run_model llama-1b /tmp/bench-models/llama-1b fp32 --prompt-ids "$ids" -n 256
run_model abc-folk models/abc-folk fp32 --prompt "$(printf 'X:1\nM:4/4\nL:1/8\nK:D\n|:A2FA DAFA|A2FA d2cB|A2FA DAFA|')" -n 256
python3 - "$OUT" <<'PY' | tee "$OUT/summary.txt"
import json, sys, glob, os, statistics as st
out = sys.argv[1]
for name in ["llama-1b", "abc-folk"]:
    files = sorted(glob.glob(f"{out}/{name}-*.json"), key=lambda f: not f.endswith("-none.json"))  # plain first
    if not files: continue
    plain = None
    print(f"== {name}")
    for f in files:
        try: r = json.loads(open(f).read().splitlines()[0])
        except Exception as e: print(f"  {os.path.basename(f)}: no record ({e})"); continue
        tag = os.path.basename(f)[len(name) + 1:-5]
        if tag == "none": plain = r
        steps = r["steps"][1:]
        ms = sum(s["edge_ms"] + s["round_trip_ms"] for s in steps) / max(len(r["tokens"]) - 1, 1)
        by_pos = {}
        for s in steps: by_pos.setdefault(s["positions"], []).append(s["cloud_ms"])
        cost = ", ".join(f"{p}:{st.median(v):.2f}" for p, v in sorted(by_pos.items()))
        same = "" if plain is None else ("identical" if r["tokens"] == plain["tokens"] else "DIFFERENT")
        print(f"  {tag:<20} tokens {len(r['tokens'])} round trips {len(r['steps'])} tok/rt {r.get('tokens_per_round_trip', 1):.2f} "
              f"{ms:.2f} ms/token {same}; daemon ms by positions {cost}")
PY
log "done in $SECONDS s"

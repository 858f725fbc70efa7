#!/usr/bin/env bash
# The link lab on the GPU machine (issue 11): llama-1b's shape with random weights, the daemon on
# the GPU, the edge beside it, duet-relay on loopback for the round trip. Namespaces + tc tbf for
# the rate where this machine allows them (root, iproute2: scripts/lab/netns.sh check), otherwise
# relay-only (the relay emulates the rate too) -- link-mode.txt says which, and so does every row.
#   bash scripts/bench/gpu_links.sh BUILD_DIR      (a CUDA build with duet-cloud, duet-edge, duet-relay, duet-keygen)
# Writes $OUT/links/ (results.csv, results.json, plots, logs) and $OUT/links.tar.gz. About 2.5 min.
# Knobs: RTTS (0,1,5,20,50,80,150), BWS (10,1000,0), WIRES (bf16,fp32), DRAFTS (none), TOKENS (16),
#        DAEMON_DEVICES (cuda), DAEMON_DTYPE (bf16), EDGE_DEVICE (cuda), MODELS_DIR (/tmp/bench-models),
#        PROMPT_IDS (1,450,4996,17354,1701).
# Dry run on a CPU machine: MODELS_DIR with a small model as llama-1b/, DAEMON_DEVICES=cpu EDGE_DEVICE=cpu.
set -uo pipefail
B=${1:?give the CUDA build dir, e.g. bash scripts/bench/gpu_links.sh /tmp/b}
OUT=${OUT:-$PWD/bench-out}; R=$OUT/links; mkdir -p "$R"
M=${MODELS_DIR:-/tmp/bench-models}
log() { echo "[links $(date +%T)] $*" | tee -a "$R/links.log"; }
t0=$SECONDS
missing=()
for t in cloud/duet-cloud edge/client/duet-edge tools/duet-relay protocol/duet-keygen; do
  [ -x "$B/$t" ] || missing+=("$(basename "$t")")
done
if [ ${#missing[@]} -gt 0 ]; then  # e.g. a build dir made for other benchmarks: duet-relay has no LibTorch, seconds
  log "building ${missing[*]} in $B"
  cmake --build "$B" -j"$(nproc)" --target "${missing[@]}" >"$R/build.log" 2>&1 ||
    { grep -E "error" -A3 "$R/build.log" | head -30; log "BUILD FAILED"; exit 1; }
fi
if bash scripts/lab/netns.sh check >"$R/link-mode.txt" 2>&1; then echo "netns: namespaces + tc tbf + duet-relay" >>"$R/link-mode.txt"
else echo "relay-only: duet-relay on loopback emulates delay and rate (no namespaces here, reason above)" >>"$R/link-mode.txt"; fi
log "$(tail -1 "$R/link-mode.txt")"
[ -f "$M/llama-1b/config.json" ] || python3 scripts/bench/make_bench_models.py --out "$M" --only llama-1b >"$R/models.log" 2>&1 ||
  { log "make_bench_models.py failed"; tail -5 "$R/models.log"; exit 1; }
log "model ready after $((SECONDS - t0)) s"
timeout 420 bash scripts/lab/sweep.sh --build "$B" --model "$M/llama-1b" --out "$R" \
  --rtt "${RTTS:-0,1,5,20,50,80,150}" --bw "${BWS:-10,1000,0}" --wire "${WIRES:-bf16,fp32}" --draft "${DRAFTS:-none}" \
  --tokens "${TOKENS:-16}" --devices "${DAEMON_DEVICES:-cuda}" --dtype "${DAEMON_DTYPE:-bf16}" --prompt-args "--prompt-ids ${PROMPT_IDS:-1,450,4996,17354,1701} --temperature 0" \
  --edge-arg --device --edge-arg "${EDGE_DEVICE:-cuda}" 2>&1 | tee "$R/sweep.log" | tail -30
log "sweep exit ${PIPESTATUS[0]} after $((SECONDS - t0)) s"
tar -czf "$OUT/links.tar.gz" -C "$OUT" links
log "wrote $OUT/links.tar.gz"

#!/usr/bin/env bash
# A second GPU call for issue 16 (after gpu_shared_all.sh): the batching window on and off for
# llama-1b, transformers' static cache, the gpt2-large shape, and the chat-template fixtures
# from transformers (issue 13). $OUT/shared-more.tar.gz holds every log and JSON (rewritten after
# each part, so a cut-off run still returns what finished).
#   source .device/on-device.sh && bash scripts/bench/gpu_shared_more.sh
set -uo pipefail
OUT=${OUT:-$PWD/bench-out}; mkdir -p "$OUT/more"; R=$OUT/more
B=${B:-/tmp/b}
pack() { tar -C "$OUT" -czf "$OUT/shared-more.tar.gz" more; }
log() { echo "[more $(date +%T)] $*" | tee -a "$R/more.log"; }
t0=$SECONDS
python3 scripts/make_chat_template_fixtures.py >"$R/chat_templates.log" 2>&1; log "chat templates exit $?"
cp tests/fixtures/chat_templates.json "$R/" 2>/dev/null
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDUET_BUILD_FUZZERS=OFF -DDUET_BUILD_TESTS=OFF >"$R/cfg.log" 2>&1 &&
  cmake --build "$B" -j16 --target duet-cloud duet-load duet-keygen >"$R/build.log" 2>&1 ||
  { grep -E "error" -A3 "$R/build.log" | head -40; log "BUILD FAILED"; pack; exit 1; }
log "duet built in $((SECONDS - t0)) s"
run() {  # NAME MODELS HF HF_VARIANTS CLOUD_EXTRA
  mkdir -p "$R/$1"
  OUT=$R/$1 BUILD=$B MODELS=$2 HF=$3 HF_VARIANTS=$4 T_HF=${T_HF:-160} CLOUD_EXTRA="--log-level info $5" \
    bash scripts/bench/run_shared_server.sh >"$R/$1/stdout.txt" 2>&1
  grep -E "^ +[0-9]+ +[0-9.]+ " "$R/$1"/load-*.txt | tail -6
  grep -h "engine stopping" "$R/$1"/cloud-*.log; grep -h "tok/s" "$R/$1"/hf-*.log 2>/dev/null | tail -6
  pack
}
log "llama-1b, batching window off"; run wait0 llama-1b 0 none "--batch-wait-us 0"
log "llama-1b, batching window 1 ms (default), transformers static"; run wait1000 llama-1b 1 static ""
log "gpt2-large, transformers eager and static"; run gpt2 gpt2-large 1 eager,static ""
log "done in $((SECONDS - t0)) s"

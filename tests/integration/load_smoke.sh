#!/usr/bin/env bash
# duet-load against a CPU daemon over CURVE: 1 then 2 sessions on the llama_gqa fixture, every
# session's tokens checked against its single-session run (duet-load exits 1 on a mismatch).
#   load_smoke.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
"$build/protocol/duet-keygen" --out "$tmp" --name server >/dev/null
"$build/protocol/duet-keygen" --out "$tmp/clients" --name load >/dev/null
"$build/cloud/duet-cloud" --model "$src/tests/fixtures/models/llama_gqa" --listen 'tcp://127.0.0.1:*' --devices cpu \
  --dtype fp32 --secret-key "$tmp/server.key_secret" --authorized-keys "$tmp/clients" >"$tmp/cloud.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/cloud.log" && break; sleep 0.1; done
ep=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$tmp/cloud.log" | head -1)
[ -n "$ep" ] || { echo "duet-cloud did not start:"; cat "$tmp/cloud.log"; exit 1; }
"$build/bench/duet-load" --endpoint "$ep" --server-key "$tmp/server.key" --client-key "$tmp/clients/load.key_secret" \
  --model "$src/tests/fixtures/models/llama_gqa" --sessions 1,2 --prompts 2 --prompt-len 8 --new-tokens 12 \
  --json "$tmp/load.json"
grep -q '"sessions_ok": 2' "$tmp/load.json" || { echo "load.json does not report 2 sessions ok"; exit 1; }

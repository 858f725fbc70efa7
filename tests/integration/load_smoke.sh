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
  --dtype fp32 --secret-key "$tmp/server.key_secret" --authorized-keys "$tmp/clients" --metrics-listen 127.0.0.1:0 \
  >"$tmp/cloud.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/cloud.log" && break; sleep 0.1; done
ep=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$tmp/cloud.log" | head -1)
[ -n "$ep" ] || { echo "duet-cloud did not start:"; cat "$tmp/cloud.log"; exit 1; }
for _ in $(seq 50); do grep -q "metrics (Prometheus text) on" "$tmp/cloud.log" && break; sleep 0.1; done
metrics=$(sed -n 's|.*metrics (Prometheus text) on http://\([0-9.:]*\)/metrics.*|\1|p' "$tmp/cloud.log" | head -1)
[ -n "$metrics" ] || { echo "no metrics address in the daemon's log:"; cat "$tmp/cloud.log"; exit 1; }
"$build/bench/duet-load" --endpoint "$ep" --server-key "$tmp/server.key" --client-key "$tmp/clients/load.key_secret" \
  --model "$src/tests/fixtures/models/llama_gqa" --sessions 1,2 --prompts 2 --prompt-len 8 --new-tokens 12 \
  --metrics "$metrics" --json "$tmp/load.json"
grep -q '"sessions_ok": 2' "$tmp/load.json" || { echo "load.json does not report 2 sessions ok"; exit 1; }
# each run's own steps from /metrics (warm-ups before it excluded): 8 prompt positions and 11
# decodes a session; one row a step with one session, one or two with two
python3 - "$tmp/load.json" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
one, two = (r["daemon_steps"] for r in runs)
assert one["rows_per_step"] == 1.0 and one["steps"] >= 12 and one["prefill_tokens"] == 8, one
assert two["steps"] >= 12 and 1.0 <= two["rows_per_step"] <= 2.0 and two["prefill_tokens"] == 16, two
for r in (one, two):  # the daemon's thread hand-overs, per message, in both directions
    assert 0 < r["handoff_in_ms"] < 1000 and 0 < r["handoff_out_ms"] < 1000, r
print("daemon steps per run:", one, two)
PY
# a wrong metrics address is refused up front, with what was wrong
if "$build/bench/duet-load" --endpoint "$ep" --server-key "$tmp/server.key" --client-key "$tmp/clients/load.key_secret" \
  --model "$src/tests/fixtures/models/llama_gqa" --metrics 127.0.0.1 2>"$tmp/bad.txt"; then
  echo "duet-load took --metrics without a port"; exit 1
fi
grep -q -- "--metrics 127.0.0.1: give the daemon's metrics address as IPv4:PORT" "$tmp/bad.txt" || { cat "$tmp/bad.txt"; exit 1; }

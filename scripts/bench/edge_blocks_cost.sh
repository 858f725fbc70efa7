#!/usr/bin/env bash
# What --edge-blocks K costs the edge: peak memory (max RSS of duet-edge) and decode time per
# token, against a CPU daemon on loopback run with --first-block K (CURVE on), greedy, 256 tokens.
#   bash scripts/bench/edge_blocks_cost.sh [BUILD_DIR] [MODEL] [K ...]     (defaults: build, abc-folk, 0 2 4)
set -euo pipefail
B=${1:-build}; M=${2:-models/abc-folk}; shift $(( $# > 2 ? 2 : $# )) || true
KS=${*:-"0 2 4"}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
$B/protocol/duet-keygen --out $T --name server >/dev/null; mkdir -p $T/c; $B/protocol/duet-keygen --out $T/c --name edge >/dev/null
printf "%-3s %12s %16s %16s\n" K "edge RSS MiB" "decode p50 ms" "tokens"
for k in $KS; do
  $B/cloud/duet-cloud --model $M --listen "tcp://127.0.0.1:*" --secret-key $T/server.key_secret --authorized-keys $T/c \
    --first-block $k >$T/cloud.log 2>&1 &
  cp=$!
  for _ in $(seq 100); do ep=$(grep -o "listening on tcp://[0-9.:]*" $T/cloud.log 2>/dev/null | head -1 | cut -d" " -f3 || true); [ -n "$ep" ] && break; sleep 0.1; done
  /usr/bin/time -f "%M" -o $T/rss $B/edge/client/duet-edge generate --model $M --server $ep --server-key $T/server.key \
    --client-key $T/c/edge.key_secret --edge-blocks $k --prompt-ids 1,46,27 -n 256 --ignore-eos --temperature 0 --json >$T/out.json
  python3 - "$k" "$(cat $T/rss)" $T/out.json <<'PY'
import json, sys
r = json.loads(open(sys.argv[3]).readline())
print(f"{sys.argv[1]:<3} {int(sys.argv[2]) / 1024:12.1f} {r['decode_ms_p50']:16.2f} {len(r['tokens']):16d}")
PY
  kill $cp; wait $cp 2>/dev/null || true
done

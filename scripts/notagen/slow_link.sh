#!/usr/bin/env bash
# The round-trip saving of the patch-level split on an emulated slow link (CPU is enough):
# abc-folk (one round trip per character) and notagen-folk (one per patch of up to 16
# characters) write a tune split over CURVE through scripts/notagen/delay_proxy.py, at RTT 0 and
# RTT_MS (default 20) ms. Prints characters, round trips and wall time of each.
#   bash scripts/notagen/slow_link.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build}; RTT=${RTT_MS:-20}; SEED=${SEED:-7}
K=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$K"' EXIT
"$B/protocol/duet-keygen" --out "$K" --name server >/dev/null
"$B/protocol/duet-keygen" --out "$K/clients" --name edge >/dev/null
port=$((7820 + RANDOM % 100))
for model in abc-folk notagen-folk; do
  "$B/cloud/duet-cloud" --model models/$model --listen tcp://127.0.0.1:$port --secret-key "$K/server.key_secret" \
    --authorized-keys "$K/clients" >"$K/cloud-$model.log" 2>&1 &
  cp=$!
  for _ in $(seq 100); do grep -q '^listening on' "$K/cloud-$model.log" && break; sleep 0.1; done
  for rtt in 0 "$RTT"; do
    ep=tcp://127.0.0.1:$port
    if [ "$rtt" != 0 ]; then
      python3 scripts/notagen/delay_proxy.py --listen 127.0.0.1:$((port + 1)) --to 127.0.0.1:$port --rtt-ms "$rtt" >/dev/null &
      px=$!; sleep 0.5; ep=tcp://127.0.0.1:$((port + 1))
    fi
    extra=(--no-constraint)
    t0=$(date +%s.%N)
    out=$("$B/edge/client/duet-edge" generate --model models/$model --server "$ep" --server-key "$K/server.key" \
      --client-key "$K/clients/edge.key_secret" --style oneills-jig --key D --seed "$SEED" --json --timeout-ms 60000 "${extra[@]}")
    t1=$(date +%s.%N)
    python3 - "$model" "$rtt" "$t0" "$t1" "$out" <<'PY'
import json, sys
model, rtt, t0, t1, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
j = json.loads(out.strip().splitlines()[-1])
chars = j["chars"] if "chars" in j else len(j["text"])
trips = len(j["steps"])
gen = sum(s["edge_ms"] + s["round_trip_ms"] for s in j["steps"]) / 1000
print("%-13s RTT %4.0f ms: %4d characters, %4d round trips, generation %6.2f s (%6.1f chars/s), wall %6.2f s" % (
    model, rtt, chars, trips, gen, chars / gen if gen else 0, t1 - t0))
PY
    [ "$rtt" != 0 ] && kill $px
  done
  kill $cp; wait $cp 2>/dev/null || true
done

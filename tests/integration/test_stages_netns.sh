#!/usr/bin/env bash
# Stage workers as separate "hosts" (issue 22): the front door and two duet-stage workers each in
# its own network namespace, joined by veth pairs to a bridge (10.78.0.1 front door, .2 and .3 the
# workers; the edge talks to the front door on loopback inside its namespace, the cluster links
# use only 10.78.0.0/24). Checks: greedy and sampled abc-folk tokens == the monolithic reference;
# Gloo listens only on the cluster addresses. Needs root and iproute2 (exit 77 with the reason
# otherwise).   test_stages_netns.sh BUILD_DIR SOURCE_DIR [RATE_MBIT]
set -euo pipefail
build=$1 src=$2 rate=${3:-0}
if ! reason=$(bash "$src/scripts/lab/netns.sh" check 2>&1); then
  echo "SKIPPED: network namespaces are not available here: $reason"
  exit 77
fi
n="ds$(( $$ % 100000 ))"
tmp=$(mktemp -d)
# shellcheck source=../../scripts/lab/bridge.sh
source "$src/scripts/lab/bridge.sh"
cleanup() {
  bridge_down "$n" front w1 w2
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do echo "== $f"; tail -n 20 "$f"; done; exit 1; }

bridge_up "$n" 10.78.0 "$rate" front w1 w2

model=$src/models/abc-folk
ip netns exec "$n-front" "$build/cloud/duet-cloud" --model "$model" --insecure --listen tcp://127.0.0.1:7700 \
  --plan cpu@w1=0-2,cpu@w2=3-5 --cluster-address 10.78.0.1 --cluster-port 7710 --cluster-allow-wildcard-store \
  >"$tmp/front.log" 2>&1 &
for _ in $(seq 100); do grep -q "listening on" "$tmp/front.log" && break; sleep 0.1; done
grep -q "listening on" "$tmp/front.log" || fail "the front door did not start"
ip netns exec "$n-w1" "$build/cloud/duet-stage" --model "$model" --name w1 --front 10.78.0.1:7710 --address 10.78.0.2 >"$tmp/w1.log" 2>&1 &
ip netns exec "$n-w2" "$build/cloud/duet-stage" --model "$model" --name w2 --front 10.78.0.1:7710 --address 10.78.0.3 >"$tmp/w2.log" 2>&1 &
for _ in $(seq 200); do grep -q "stage cluster ready" "$tmp/front.log" && break; sleep 0.1; done
grep -q "stage cluster ready" "$tmp/front.log" || fail "the workers did not join"

gen() { ip netns exec "$n-front" "$build/edge/client/duet-edge" generate --model "$model" --prompt-ids 1,17,42,60,7 \
  -n 24 --json "$@" 2>>"$tmp/edge.log" | python3 -c "import json,sys; print(json.load(sys.stdin)['tokens'])"; }
for opts in "--temperature 0" "--temperature 0.9 --seed 7"; do
  # shellcheck disable=SC2086
  want=$(gen --local $opts) || fail "local generation failed"
  # shellcheck disable=SC2086
  got=$(gen --server tcp://127.0.0.1:7700 --insecure $opts) || fail "split generation failed"
  [ "$want" = "$got" ] || fail "tokens differ ($opts): local $want, workers $got"
  echo "ok: $opts: $got"
done
# Gloo's listeners are on the cluster addresses only (the store: see docs/STAGES.md on 1.13)
for ns in w1 w2; do
  ip netns exec "$n-$ns" ss -ltnH | awk '{print $4}' | grep -v '^10\.78\.0\.' && fail "$ns listens beyond its cluster address"
done
echo "front door listeners:"; ip netns exec "$n-front" ss -ltnH | awk '{print "  " $4}'
echo "PASS"

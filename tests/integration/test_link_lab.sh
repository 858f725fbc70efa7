#!/usr/bin/env bash
# The link lab end to end (needs root and iproute2; exit 77 = skipped, with the reason, otherwise):
#   1. scripts/lab/netns.sh up makes two namespaces joined by a veth pair with tbf at 10 Mbit/s, and
#      running it again changes nothing;
#   2. a bulk transfer across the veth runs at the tbf rate (within 10 % of 10 Mbit/s on the wire);
#   3. duet-relay in the edge namespace, 20 ms one way: a TCP ping-pong through it measures a
#      40 ms round trip (median within 10 %); with --jitter-ms and --loss it still carries every
#      byte, in order (bulk transfer completes, pings answer);
#   4. netns.sh down stops what runs inside and removes both namespaces; down again is fine.
#   test_link_lab.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
lab=$src/scripts/lab
if ! reason=$(bash "$lab/netns.sh" check 2>&1); then
  echo "SKIPPED: the link lab cannot run here: $reason"
  exit 77
fi
name="dl$(( $$ % 1000000 ))"
tmp=$(mktemp -d)
cleanup() { bash "$lab/netns.sh" down --name "$name" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; bash "$lab/netns.sh" status --name "$name" || true; exit 1; }
ping_json() { ip netns exec "$name-edge" python3 "$lab/linkping.py" ping --json "$@"; }
field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, d))" "$1" "$2"; }
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN{exit !(x >= lo && x <= hi)}'; }

# 1. up, twice
bash "$lab/netns.sh" up --name "$name" --rate 10
bash "$lab/netns.sh" up --name "$name" --rate 10
ip netns list | grep -q "^$name-cloud" || fail "no $name-cloud namespace"
ip netns list | grep -q "^$name-edge" || fail "no $name-edge namespace"
[ "$(ip -n "$name-cloud" -4 -o addr show dev lab0 | wc -l)" = 1 ] || fail "cloud side does not have exactly one address"
ip -n "$name-cloud" -4 -o addr show dev lab0 | grep -q "10.77.0.1/30" || fail "cloud side is not 10.77.0.1"
ip -n "$name-edge" -4 -o addr show dev lab0 | grep -q "10.77.0.2/30" || fail "edge side is not 10.77.0.2"
for side in cloud edge; do
  ip netns exec "$name-$side" tc qdisc show dev lab0 | grep -q "tbf.*rate 10Mbit" || fail "no tbf at 10 Mbit on $side"
done
if ip -o link show | grep -q " lab0"; then fail "lab0 leaked into the host's namespace"; fi

# the echo server on the cloud side, the relay on the edge side
ip netns exec "$name-cloud" python3 "$lab/linkping.py" echo --listen 10.77.0.1:7790 >"$tmp/echo.log" 2>&1 &
echo_pid=$!
ip netns exec "$name-edge" "$build/tools/duet-relay" --listen 127.0.0.1:7791 --connect 10.77.0.1:7790 \
  --delay-ms 20 >"$tmp/relay.log" 2>&1 &
relay_pid=$!
ip netns exec "$name-edge" "$build/tools/duet-relay" --listen 127.0.0.1:7792 --connect 10.77.0.1:7790 \
  --delay-ms 5 --jitter-ms 3 --loss 0.02 --seed 4 >"$tmp/relay_lossy.log" 2>&1 &
for _ in $(seq 50); do
  grep -q listening "$tmp/echo.log" && grep -q listening "$tmp/relay.log" && grep -q listening "$tmp/relay_lossy.log" && break
  sleep 0.1
done
grep -q listening "$tmp/relay.log" || fail "duet-relay did not start: $(cat "$tmp/relay.log")"

# 2. the rate: 1 MiB each way across the veth (goodput is 1448/1514 of the line rate: 9.56 Mbit/s)
out=$(ping_json --connect 10.77.0.1:7790 --count 5 --bulk-kib 1024)
up=$(field "$out" up_mbit); down=$(field "$out" down_mbit)
echo "veth at tbf 10 Mbit/s: up $up Mbit/s, down $down Mbit/s (goodput)"
within "$up" 8.6 10.0 || fail "up $up Mbit/s is not within 10 % of 9.56"
within "$down" 8.6 10.0 || fail "down $down Mbit/s is not within 10 % of 9.56"
bash "$lab/netns.sh" rate --name "$name" 0
if ip netns exec "$name-edge" tc qdisc show dev lab0 | grep -q tbf; then fail "rate 0 left a tbf behind"; fi

# 3. the delayed link: 40 ms round trip
out=$(ping_json --connect 127.0.0.1:7791 --count 30)
rtt=$(field "$out" "rtt_ms['median']")
echo "relay at 20 ms one way: round trip median $rtt ms (min $(field "$out" "rtt_ms['min']"), max $(field "$out" "rtt_ms['max']"))"
within "$rtt" 36 44 || fail "round trip $rtt ms is not within 10 % of 40 ms"
# jitter and loss still deliver every byte in order (linkping compares each ping with its echo)
out=$(ping_json --connect 127.0.0.1:7792 --count 30 --size 3000 --bulk-kib 512)
echo "relay at 5 +- 3 ms, 2 % loss: round trip median $(field "$out" "rtt_ms['median']") ms, bulk done"
kill -TERM "$relay_pid"
wait "$relay_pid" || true
grep -q "stopped; 1 connections" "$tmp/relay.log" || fail "the relay's stop line: $(cat "$tmp/relay.log")"

# 4. down: processes inside are gone, then the namespaces; twice is fine
bash "$lab/netns.sh" down --name "$name"
for _ in $(seq 20); do kill -0 "$echo_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$echo_pid" 2>/dev/null; then fail "the echo server outlived netns.sh down"; fi
if ip netns list | grep -q "^$name-"; then fail "namespaces left after down"; fi
bash "$lab/netns.sh" down --name "$name"
echo "link lab: set-up, rate, delay, tear-down all as set"

#!/usr/bin/env bash
# The link lab's network: two namespaces, NAME-cloud and NAME-edge, joined by a veth pair (lab0 in
# each; 10.77.0.1 on the cloud side, 10.77.0.2 on the edge side; nothing in the host's namespace),
# the rate set with tc tbf on both ends. Needs root and iproute2. Every command is idempotent.
#
#   netns.sh check                      can this machine do it? (exit 0, or 1 with the reason)
#   netns.sh up     [--name N] [--rate MBIT]   create what is missing, set the rate (0: unlimited)
#   netns.sh rate   [--name N] MBIT            change the rate both ways (0: no shaping)
#   netns.sh status [--name N]                 namespaces, addresses, qdiscs, processes inside
#   netns.sh down   [--name N]                 stop what runs inside (SIGTERM, then SIGKILL), delete both
#
# Run things inside with `ip netns exec N-cloud CMD` / `ip netns exec N-edge CMD`. Delay, jitter and
# loss come from duet-relay (this kernel has no netem; docs/LINKS.md says how to use netem where
# there is one). Default name: duetlab.
set -euo pipefail

CLOUD_ADDR=10.77.0.1
EDGE_ADDR=10.77.0.2
DEV=lab0

die() { echo "netns.sh: $*" >&2; exit 1; }

# probe CMD...: runs CMD; when it fails, sets `why` to the command and what it wrote on stderr
probe() {
  local said
  if ! said=$("$@" 2>&1 >/dev/null); then
    why="'$*' failed: ${said:-(no message)}"
    why=${why//$'\n'/; }
    return 1
  fi
}

check() {
  [ "$(id -u)" = 0 ] || { echo "netns.sh: needs root (network namespaces and tc)" >&2; return 1; }
  command -v ip >/dev/null || { echo "netns.sh: iproute2's ip is not installed" >&2; return 1; }
  command -v tc >/dev/null || { echo "netns.sh: iproute2's tc is not installed" >&2; return 1; }
  local probe="duetprobe$$" why="" hint=""
  # each step what the lab itself does, in its order; the first failure is the reason, given as
  # the command and its own message (a chroot fails at `ip netns exec`, which mounts /sys)
  if ! probe ip netns add "$probe-a"; then
    hint="creating a network namespace needs CAP_SYS_ADMIN and a writable /run/netns"
  elif ! probe ip netns add "$probe-b"; then
    hint="cannot create a second namespace"
  elif ! probe ip link add $DEV netns "$probe-a" type veth peer name $DEV netns "$probe-b"; then
    hint="no veth pair (no veth module?)"
  elif ! probe ip netns exec "$probe-a" true; then
    hint="ip netns exec cannot enter a namespace: it needs its own mount namespace and to mount /sys, which a "
    hint+="chroot or a container without CAP_SYS_ADMIN does not allow"
  elif ! probe ip netns exec "$probe-a" tc qdisc add dev $DEV root tbf rate 10mbit burst 16kb latency 100ms; then
    hint="tc tbf is not available (no sch_tbf?)"
  fi
  ip netns del "$probe-a" >/dev/null 2>&1 || true
  ip netns del "$probe-b" >/dev/null 2>&1 || true
  [ -z "$why" ] || { echo "netns.sh: $hint: $why" >&2; return 1; }
}

valid_name() {
  [[ "$1" =~ ^[a-z][a-z0-9]{0,11}$ ]] || die "name '$1': 1-12 lowercase letters and digits, starting with a letter"
}

has_ns() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

# tbf both ways; burst: 2 full frames or 2 ms of the rate, whichever is more (tbf's timer is fine-
# grained, so a small bucket keeps small messages at the rate); queue: 100 ms worth
valid_rate() { [[ "$1" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "rate '$1' is not a number of Mbit/s (0: unlimited)"; }

set_rate() {
  local name=$1 mbit=$2
  valid_rate "$mbit"
  for side in cloud edge; do
    if awk "BEGIN{exit !($mbit == 0)}"; then
      ip netns exec "$name-$side" tc qdisc del dev $DEV root 2>/dev/null || true
    else
      local burst
      burst=$(awk "BEGIN{b = $mbit * 1e6 / 8 * 0.002; if (b < 3028) b = 3028; printf \"%d\", b}")
      ip netns exec "$name-$side" tc qdisc replace dev $DEV root tbf rate "${mbit}mbit" burst "$burst" latency 100ms
    fi
  done
}

up() {
  local name=$1 rate=$2
  valid_name "$name"
  valid_rate "$rate"
  # a failure half-way leaves nothing behind (a second `up` would mend it too)
  trap 'echo "netns.sh: up failed; removing $name-cloud and $name-edge" >&2; down "$name"' ERR
  has_ns "$name-cloud" || ip netns add "$name-cloud"
  has_ns "$name-edge" || ip netns add "$name-edge"
  if ! ip -n "$name-cloud" link show $DEV >/dev/null 2>&1 || ! ip -n "$name-edge" link show $DEV >/dev/null 2>&1; then
    ip -n "$name-cloud" link del $DEV 2>/dev/null || true  # half a pair: start the pair over
    ip -n "$name-edge" link del $DEV 2>/dev/null || true
    ip link add $DEV netns "$name-cloud" type veth peer name $DEV netns "$name-edge"
  fi
  ip -n "$name-cloud" addr replace $CLOUD_ADDR/30 dev $DEV
  ip -n "$name-edge" addr replace $EDGE_ADDR/30 dev $DEV
  for side in cloud edge; do
    ip -n "$name-$side" link set lo up
    ip -n "$name-$side" link set $DEV up
  done
  set_rate "$name" "$rate"
  trap - ERR
}

down() {
  local name=$1
  valid_name "$name"
  local pids=""
  for side in cloud edge; do
    has_ns "$name-$side" && pids="$pids $(ip netns pids "$name-$side" 2>/dev/null | tr '\n' ' ')"
  done
  pids=$(echo $pids)
  if [ -n "$pids" ]; then
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 30); do
      local alive=""
      for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
      [ -z "$alive" ] && break
      sleep 0.1
    done
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  fi
  for side in cloud edge; do
    has_ns "$name-$side" && ip netns del "$name-$side"
  done
  return 0
}

status() {
  local name=$1
  valid_name "$name"
  for side in cloud edge; do
    if ! has_ns "$name-$side"; then echo "$name-$side: absent"; continue; fi
    echo "$name-$side:"
    ip -n "$name-$side" -brief addr show dev $DEV 2>/dev/null | sed 's/^/  /' || echo "  no $DEV"
    ip netns exec "$name-$side" tc qdisc show dev $DEV 2>/dev/null | sed 's/^/  /'
    echo "  processes: $(ip netns pids "$name-$side" | tr '\n' ' ')"
  done
}

cmd=${1:-}
[ -n "$cmd" ] || die "give a command: check, up, rate, status or down (see the top of this file)"
shift
name=duetlab rate=0 arg=""
while [ $# -gt 0 ]; do
  case $1 in
    --name) name=${2:?--name needs a value}; shift 2 ;;
    --rate) rate=${2:?--rate needs Mbit/s}; shift 2 ;;
    -*) die "unknown option $1" ;;
    *) arg=$1; shift ;;
  esac
done
case $cmd in
  check) check ;;
  up) check >/dev/null 2>&1 || { check; exit 1; }; up "$name" "$rate" ;;
  rate) [ -n "$arg" ] || die "rate: give Mbit/s (0: unlimited)"; set_rate "$name" "$arg" ;;
  status) status "$name" ;;
  down) down "$name" ;;
  *) die "unknown command '$cmd': check, up, rate, status or down" ;;
esac

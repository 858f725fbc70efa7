# Sourced, not run: "hosts" as network namespaces on one bridge (issue 22's stage tests and
# benchmark). bridge_up PREFIX SUBNET RATE_MBIT HOST... makes PREFIX-sw with a bridge and, per
# HOST, the namespace PREFIX-HOST at SUBNET.i/24 (i = 1, 2, ... in the order given) with a veth to
# the bridge, tc tbf at RATE_MBIT Mbit/s on the host's end (0: unlimited). bridge_down PREFIX
# HOST... kills what runs in them and removes them. Needs root and iproute2.
bridge_up() {
  local prefix=$1 subnet=$2 rate=$3; shift 3
  ip netns add "$prefix-sw"
  ip -n "$prefix-sw" link add br0 type bridge
  ip -n "$prefix-sw" link set br0 up
  local i=1 ns
  for ns in "$@"; do
    ip netns add "$prefix-$ns"
    ip link add "c$i" netns "$prefix-$ns" type veth peer name "p$i" netns "$prefix-sw"
    ip -n "$prefix-sw" link set "p$i" master br0 up
    ip -n "$prefix-$ns" addr add "$subnet.$i/24" dev "c$i"
    ip -n "$prefix-$ns" link set "c$i" up
    ip -n "$prefix-$ns" link set lo up
    if [ "$rate" != 0 ]; then
      ip netns exec "$prefix-$ns" tc qdisc replace dev "c$i" root tbf rate "${rate}mbit" burst 256kb latency 100ms
    fi
    i=$((i + 1))
  done
}

bridge_down() {
  local prefix=$1 ns; shift
  for ns in "$@"; do ip netns pids "$prefix-$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true; done
  sleep 0.3
  for ns in "$@" sw; do ip netns del "$prefix-$ns" 2>/dev/null || true; done
}

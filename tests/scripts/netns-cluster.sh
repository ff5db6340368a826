#!/usr/bin/env bash
# A farm across separate hosts without a container engine: network namespaces joined by a
# bridge, each with its own address. A master and three workers, each in its own namespace;
# mid-job one worker is killed (kill -9) and another is cut off from the network (its link
# goes down: a partition). The job must still give the exact result.
#
# usage: tests/scripts/netns-cluster.sh PATH/TO/farm
# Needs root and iproute2 (ip netns); without them it says so and exits 0 (skipped).
# Prints PASS or FAIL; exits non-zero on FAIL.
set -euo pipefail

farm=${1:?usage: $0 PATH/TO/farm}
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
  echo "SKIPPED: netns cluster needs root and iproute2"
  exit 0
fi
if ! ip netns add "farmprobe$$" 2>/dev/null; then
  echo "SKIPPED: cannot create network namespaces here (no CAP_NET_ADMIN)"
  exit 0
fi
ip netns del "farmprobe$$"

id=$$
net=10.$((id % 200 + 20)).$((id / 200 % 250)).0  # a /24 private to this run's namespaces
prefix=${net%.0}
hosts=(master w1 w2 w3)
declare -A addr=([master]=$prefix.1 [w1]=$prefix.11 [w2]=$prefix.12 [w3]=$prefix.13)
bridge_ns=farmbr$id
pids=()
logdir=$(mktemp -d)

ns() { echo "farm$1$id"; }

cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for h in "${hosts[@]}"; do ip netns del "$(ns "$h")" 2>/dev/null || true; done
  ip netns del "$bridge_ns" 2>/dev/null || true
  { wait; } 2>/dev/null || true
  rm -rf "$logdir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  echo "FAIL: $*"
  echo "--- logs"
  tail -n 20 "$logdir"/*.log 2>/dev/null || true
  exit 1
}

ip netns add "$bridge_ns"
ip -n "$bridge_ns" link add br0 type bridge
ip -n "$bridge_ns" link set br0 up
for h in "${hosts[@]}"; do
  n=$(ns "$h")
  ip netns add "$n"
  ip link add "v$h$id" type veth peer name "b$h$id"
  ip link set "v$h$id" netns "$n"
  ip link set "b$h$id" netns "$bridge_ns"
  ip -n "$bridge_ns" link set "b$h$id" master br0
  ip -n "$bridge_ns" link set "b$h$id" up
  ip -n "$n" addr add "${addr[$h]}/24" dev "v$h$id"
  ip -n "$n" link set "v$h$id" up
  ip -n "$n" link set lo up
done

master_url=http://${addr[master]}:7070
export RUST_LOG=${RUST_LOG:-warn} FARM_TOKEN=netns-test-token
ip netns exec "$(ns master)" "$farm" master --listen "${addr[master]}:7070" --heartbeat 500ms \
  >"$logdir/master.out" 2>"$logdir/master.log" &
pids+=($!)
for w in w1 w2 w3; do
  ip netns exec "$(ns "$w")" "$farm" worker --master "$master_url" --threads 1 --name "$w" \
    >/dev/null 2>"$logdir/$w.log" &
  pids+=($!)
done
w1_pid=${pids[1]}

client() { timeout 120 ip netns exec "$(ns master)" "$farm" --master "$master_url" "$@"; }

# Every worker registered, from its own address.
for _ in $(seq 1 200); do
  n=$(client workers --json 2>/dev/null | grep -o '"worker":' | wc -l || true)
  [ "$n" = 3 ] && break
  sleep 0.1
done
[ "$n" = 3 ] || fail "expected 3 workers, saw $n"
client workers --json | grep -q "\"address\":\"${addr[w2]}:" || fail "worker w2 not seen at ${addr[w2]}"

job=$(client submit spin --range 0..300 --shard-size 1 --param ms=20) || fail "submit failed"
for _ in $(seq 1 200); do
  done_now=$(client status "$job" --json 2>/dev/null | grep -o '"done":[0-9]*' | cut -d: -f2 || true)
  [ "${done_now:-0}" -ge 30 ] && break
  sleep 0.05
done
kill -9 "$w1_pid"                                          # a host dies
{ wait "$w1_pid"; } 2>/dev/null || true
ip -n "$(ns w2)" link set "vw2$id" down                    # a host is cut off
result=$(client watch "$job" --json) || fail "watch failed: $result"
echo "$result" | grep -q '"state":"succeeded"' || fail "job did not succeed: $result"
echo "$result" | grep -q '"result":300,' || fail "wrong result: $result"
reruns=$(echo "$result" | grep -o '"reruns":[0-9]*' | cut -d: -f2)
echo "PASS: netns cluster, 3 workers on their own addresses, one killed and one partitioned mid-job; result 300 exact, $reruns shards re-run"

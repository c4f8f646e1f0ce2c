#!/usr/bin/env bash
# bench/static_membership.sh -- what static group membership (KIP-345) spares `kesm poller`
# pods, measured on the real broker (tests/e2e/kafka.sh, Apache Kafka 4.4).
#
#   bench/static_membership.sh [--kesm PATH] [--restart-delay SECONDS] [--partitions N]
#                              [--session-timeout-ms MS]
#
# Four `kesm poller` processes (ids sm-0..sm-3, one poller each) of one mapping share a
# topic. For each membership (dynamic, static) and each path:
#   restart:    SIGTERM sm-3, wait --restart-delay (default 2 s), start sm-3 again, same id
#   scale-down: SIGTERM sm-3, no restart
# it prints the rebalances the three other processes saw (kesm_rebalances_total, assign and
# revoke callbacks, summed) and how long some partition of the topic had no owner (sampled
# from every process's /status every 100 ms). Needs java (the broker) and python3.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
kesm=${KESM:-$here/build/app/kesm}
delay=2
partitions=8
session_ms=6000
while [[ $# -gt 0 ]]; do
  case $1 in
  --kesm) kesm=$2; shift 2 ;;
  --restart-delay) delay=$2; shift 2 ;;
  --partitions) partitions=$2; shift 2 ;;
  --session-timeout-ms) session_ms=$2; shift 2 ;;
  *) echo "usage: $0 [--kesm PATH] [--restart-delay S] [--partitions N] [--session-timeout-ms MS]" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d /tmp/kesm-static-membership.XXXXXX)
kdir=$work/kafka
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  "$here/tests/e2e/kafka.sh" stop --dir "$kdir" >/dev/null 2>&1 || true
}
trap cleanup EXIT

bootstrap=$("$here/tests/e2e/kafka.sh" start --no-secure --dir "$kdir" | tail -1)
fn_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$kesm" sample-function --listen "127.0.0.1:$fn_port" >"$work/function.log" 2>&1 &
pids+=($!)

declare -A port pid
for i in 0 1 2 3; do
  port[$i]=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
done

# Sum of kesm_rebalances_total of process i.
rebalances() {
  curl -sf "http://127.0.0.1:${port[$1]}/metrics" |
    awk '/^kesm_rebalances_total/ { s += $2 } END { print s + 0 }'
}
# Every 50 ms until killed: "<unix time> <partitions owned by all four processes>" (from
# /status; a process that is down owns none).
owned() {
  local total=0 n p
  for p in "${port[@]}"; do
    n=$(curl -sf --max-time 1 "http://127.0.0.1:$p/status" 2>/dev/null |
      grep -o '"partitions":[0-9]*' | awk -F: '{ s += $2 } END { print s + 0 }')
    total=$((total + n))
  done
  echo "$total"
}
sampler() {
  while :; do
    local t=$EPOCHREALTIME
    echo "$t $(owned)"
    sleep 0.05
  done
}
start_poller() { # index membership config
  "$kesm" poller --config "$3" --mapping sm --instance-id "sm-$1" --membership "$2" \
    --listen "127.0.0.1:${port[$1]}" >>"$work/poller-$1.log" 2>&1 &
  pid[$1]=$!
  pids+=($!)
}
wait_ready() {
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:${port[$1]}/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "sm-$1 not ready in 60 s" >&2
  return 1
}
now() { date +%s.%N; }

run() { # membership path
  local membership=$1 path=$2 topic="sm-$1-$2-$RANDOM"
  "$here/tests/e2e/kafka.sh" topic-create --dir "$kdir" "$topic" "$partitions" >/dev/null
  local config=$work/$topic.yaml
  cat >"$config" <<EOF
server:
  listen: 127.0.0.1:0
mappings:
  - name: sm
    source:
      bootstrapServers: $bootstrap
      topics: [$topic]
      consumerGroupId: $topic
      librdkafka:
        session.timeout.ms: $session_ms
    function:
      url: http://127.0.0.1:$fn_port/
EOF
  for i in 0 1 2 3; do start_poller "$i" "$membership" "$config"; done
  for i in 0 1 2 3; do wait_ready "$i"; done
  # Settled: every partition owned, and no rebalance for 3 s.
  local before after
  for _ in $(seq 1 100); do
    before=$(( $(rebalances 0) + $(rebalances 1) + $(rebalances 2) ))
    sleep 3
    after=$(( $(rebalances 0) + $(rebalances 1) + $(rebalances 2) ))
    [[ $before == "$after" && $(owned) == "$partitions" ]] && break
  done
  sampler >"$work/$topic.samples" &
  local spid=$!
  sleep 0.5
  kill -TERM "${pid[3]}"
  if [[ $path == restart ]]; then
    wait "${pid[3]}" 2>/dev/null || true
    sleep "$delay" # a pod's restart: the new process starts $delay s after the SIGTERM ended
    start_poller 3 "$membership" "$config"
  fi
  # Long enough for a static member's session to expire and the rebalance that follows.
  sleep $((session_ms / 1000 + 8))
  kill "$spid"
  wait "$spid" 2>/dev/null || true
  after=$(( $(rebalances 0) + $(rebalances 1) + $(rebalances 2) ))
  # The time during which some partition had no owner (summed over the sampling intervals
  # that start with such a sample).
  local gap
  gap=$(awk -v n="$partitions" '
    NR > 1 && prev_bad { sum += $1 - prev_t }
    { prev_t = $1; prev_bad = ($2 < n) }
    END { printf "%.1f", sum }
  ' "$work/$topic.samples")
  printf '%-8s %-10s rebalance callbacks on the other 3: %3d   partitions without owner for %5ss\n' \
    "$membership" "$path" $((after - before)) "$gap"
  for i in 0 1 2 3; do kill -TERM "${pid[$i]}" 2>/dev/null || true; done
  for i in 0 1 2 3; do wait "${pid[$i]}" 2>/dev/null || true; done
}

echo "logs and samples: $work"
echo "kesm poller x4, $partitions partitions, session.timeout.ms $session_ms, restart after ${delay}s"
for membership in dynamic static; do
  for path in restart scale-down; do
    run "$membership" "$path"
  done
done

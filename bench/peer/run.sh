#!/usr/bin/env bash
# bench/peer/run.sh -- drain a topic with a peer of kesm (Redpanda Connect, a minimal build
# of kafka_franz + http_client, bench/peer/README.md) and report what kesm's bench reports.
#
#   bench/peer/run.sh --bootstrap H:P --topic T --group G --function-url URL \
#                     --batch-size N --partitions P [options]
#
# Two configurations (--mode), both with http_client max_in_flight = --partitions:
#   ordered (default)  the `redpanda` input, ordered: one batch per partition in flight, in
#                      offset order (kesm's guarantee); batches cut at --batch-size x
#                      --record-bytes bytes, no batching window
#   franz              the `kafka_franz` input: per-partition batching by count (--batch-size)
#                      and period (--window); several batches of one partition may be in flight
#                      at once (checkpoint_limit only pauses fetching), commits stay in order
#
# Builds the peer into .cache/peer/ if it is missing or older than its sources, starts it
# with a fresh consumer group (the topic is read from its start), polls the group's lag
# until it is 0 on every partition, then stops the peer and prints:
#   drain_s         start of the peer process -> lag 0 seen (poll every --poll, 0.2 s)
#   bound_s         ceil(records / batch / partitions) x --latency (when --latency is given)
#   cpu_s           the peer's user+system CPU seconds (/proc/PID/stat)
#   peak_rss_mib    the peer's VmHWM (/proc/PID/status)
#
# Options:
#   --mode M            ordered | franz (default ordered)
#   --record-bytes N    key + value bytes of one record, for --mode ordered (default 1024)
#   --window D          franz: batching period (default 500ms, kesm's maximumBatchingWindow)
#   --max-in-flight N   concurrent HTTP requests (default: --partitions)
#   --checkpoint-limit N  franz: checkpoint_limit (default: --batch-size)
#   --keepalive N       keep up to N idle connections to the function (RPCN_PEER_MAX_IDLE_CONNS_PER_HOST,
#                       main.go); default: Go's stock 2, so most requests open a new connection
#   --latency D         the function's latency, only to print the bound (e.g. 100ms)
#   --records N         records in the topic, for the bound (default: the log-end sum)
#   --commit-period D   how often marked offsets are committed (default 100ms; franz-go cancels a
#                       commit still in flight when the next starts, so on a starved broker a
#                       longer period, e.g. 1s, is safer, at up to that much detection delay)
#   --timeout S         give up after S seconds (default 600)
#   --poll S            lag poll period in seconds (default 0.2)
#   --kafka-dir DIR     also print Kafka's own view at the end (tests/e2e/kafka.sh group-lag)
#   --http-port N       the peer's HTTP server (/metrics, /ready) (default 4195)
#   --trace FILE        write "seconds lag committed_partitions" at every poll
#   --log FILE          the peer's log (default: a temp file, printed on failure)
#   --config FILE       config template (default: redpanda-connect/redpanda-ordered.yaml or
#                       redpanda-connect/kafka_franz.yaml by --mode)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SRC=$HERE/redpanda-connect
BIN=${KESM_PEER_BIN:-$REPO/.cache/peer/rpcn-peer}

die() { echo "peer: error: $*" >&2; exit 1; }
log() { echo "peer: $*" >&2; }

bootstrap= topic= group= url= batch= partitions=
window=500ms max_in_flight= checkpoint_limit= latency= records= timeout=600 poll=0.2
kafka_dir= http_port=4195 logfile= config= mode=ordered record_bytes=1024 trace= keepalive= commit_period=100ms
while (($#)); do
  case $1 in
    --bootstrap) bootstrap=$2; shift 2 ;;
    --topic) topic=$2; shift 2 ;;
    --group) group=$2; shift 2 ;;
    --function-url) url=$2; shift 2 ;;
    --batch-size) batch=$2; shift 2 ;;
    --partitions) partitions=$2; shift 2 ;;
    --mode) mode=$2; shift 2 ;;
    --record-bytes) record_bytes=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --max-in-flight) max_in_flight=$2; shift 2 ;;
    --checkpoint-limit) checkpoint_limit=$2; shift 2 ;;
    --latency) latency=$2; shift 2 ;;
    --keepalive) keepalive=$2; shift 2 ;;
    --records) records=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --commit-period) commit_period=$2; shift 2 ;;
    --poll) poll=$2; shift 2 ;;
    --kafka-dir) kafka_dir=$2; shift 2 ;;
    --http-port) http_port=$2; shift 2 ;;
    --log) logfile=$2; shift 2 ;;
    --trace) trace=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (--help)" ;;
  esac
done
for v in bootstrap topic group url batch partitions; do
  [[ -n ${!v} ]] || die "--${v/url/function-url} is required (--help)"
done
case $mode in
  ordered) config=${config:-$SRC/redpanda-ordered.yaml} ;;
  franz) config=${config:-$SRC/kafka_franz.yaml} ;;
  *) die "--mode must be ordered or franz" ;;
esac
max_in_flight=${max_in_flight:-$partitions}
checkpoint_limit=${checkpoint_limit:-$batch}

# ---------------------------------------------------------------- build
if [[ ! -x $BIN || $SRC/main.go -nt $BIN || $SRC/go.mod -nt $BIN || $SRC/go.sum -nt $BIN ]]; then
  command -v go >/dev/null || die "go not found (Go >= $(sed -n 's/^go //p' "$SRC/go.mod") is needed)"
  mkdir -p "$(dirname "$BIN")"
  log "building $BIN (Redpanda Connect $(sed -n 's#.*redpanda-data/connect/v4 \(v[^ ]*\).*#\1#p' "$SRC/go.mod" | head -1); a few minutes the first time)"
  t0=$SECONDS
  (cd "$SRC" && go build -trimpath -ldflags='-s -w' -o "$BIN.tmp" .) || die "go build failed"
  mv "$BIN.tmp" "$BIN"
  log "built in $((SECONDS - t0)) s, $(du -m "$BIN" | cut -f1) MiB"
fi

# ---------------------------------------------------------------- helpers
now() { date +%s.%N; }
lag() { "$BIN" lag "$bootstrap" "$group" "$topic"; }   # "LAG COMMITTED_PARTS PARTS"
clk_tck=$(getconf CLK_TCK)
cpu_seconds() {  # utime + stime (fields 14, 15; the comm field may hold spaces)
  local stat
  stat=$(cat "/proc/$1/stat") || return 1
  stat=${stat##*) }
  awk -v t="$clk_tck" '{ printf "%.2f", ($12 + $13) / t }' <<<"$stat"
}
peak_rss_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# A fresh broker answers COORDINATOR_NOT_AVAILABLE until __consumer_offsets exists: retry.
for try in $(seq 30); do
  if read -r lag0 committed0 parts0 < <(lag 2>/dev/null); then break; fi
  ((try < 30)) || { lag || true; die "cannot read offsets of $topic on $bootstrap"; }
  sleep 1
done
((parts0 == partitions)) || log "warning: topic $topic has $parts0 partitions, --partitions says $partitions"
((committed0 == 0)) || log "warning: group $group already committed on $committed0 partitions (not a fresh group)"
if [[ -z $records ]]; then records=$lag0; fi
log "topic $topic: $parts0 partitions, lag $lag0 for group $group"

tmp=$(mktemp -d)
[[ -n $logfile ]] || logfile=$tmp/peer.log
peer_pid=
[[ -z $trace ]] || : >"$trace"
cleanup() {
  if [[ -n $peer_pid ]] && kill -0 "$peer_pid" 2>/dev/null; then
    kill -TERM "$peer_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$peer_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$peer_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---------------------------------------------------------------- run
t_start=$(now)
PEER_BOOTSTRAP=$bootstrap PEER_TOPIC=$topic PEER_GROUP=$group PEER_FUNCTION_URL=$url \
PEER_BATCH_SIZE=$batch PEER_WINDOW=$window PEER_MAX_IN_FLIGHT=$max_in_flight \
PEER_CHECKPOINT_LIMIT=$checkpoint_limit PEER_HTTP_PORT=$http_port PEER_COMMIT_PERIOD=$commit_period \
PEER_BATCH_BYTES=$((batch * record_bytes)) RPCN_PEER_MAX_IDLE_CONNS_PER_HOST=$keepalive \
  "$BIN" run "$config" >"$logfile" 2>&1 &
peer_pid=$!

drained=0 last_report=$SECONDS l=? c=0 p=0
while :; do
  kill -0 "$peer_pid" 2>/dev/null || { tail -n 30 "$logfile" >&2; die "the peer exited"; }
  if read -r l c p < <(lag 2>/dev/null); then
    [[ -z $trace ]] || echo "$(awk -v a="$(now)" -v b="$t_start" 'BEGIN { printf "%.2f", a - b }') $l $c" >>"$trace"
    if ((l == 0 && c == p && p > 0)); then drained=1; break; fi
    if ((SECONDS - last_report >= 5)); then
      log "$(awk -v a="$(now)" -v b="$t_start" 'BEGIN { printf "%.1f", a - b }') s: lag $l ($c/$p partitions committed)"
      last_report=$SECONDS
    fi
  fi
  awk -v a="$(now)" -v b="$t_start" -v t="$timeout" 'BEGIN { exit !(a - b > t) }' && break
  sleep "$poll"
done
t_end=$(now)
cpu=$(cpu_seconds "$peer_pid") rss=$(peak_rss_mib "$peer_pid")
metrics=$(curl -s --max-time 2 "http://127.0.0.1:$http_port/metrics" || true)
# json_api metrics: one message reaches the output per batch (archive), input_received counts
# records (a replayed batch counts again), output_error counts failed requests.
metrics_summary() {
  [[ -n $metrics ]] && command -v python3 >/dev/null || return 0
  python3 -c '
import json, sys
m = json.loads(sys.argv[1])
def total(prefix):
    return sum(v for k, v in m.items() if k.split("{")[0] == prefix and isinstance(v, (int, float)))
recs, batches, errs = total("input_received"), total("output_sent"), total("output_error")
mean = recs / batches if batches else 0
print(f"batches: {batches:.0f}  mean_batch: {mean:.1f}  records_read: {recs:.0f}  output_errors: {errs:.0f}")
' "$metrics" || true
}
((drained)) || { tail -n 30 "$logfile" >&2; metrics_summary >&2; echo "$metrics" >"$logfile.metrics.json"
  die "lag not 0 after ${timeout}s (last: lag $l on $((p - c)) uncommitted partitions; metrics in $logfile.metrics.json)"; }

drain=$(awk -v a="$t_end" -v b="$t_start" 'BEGIN { printf "%.2f", a - b }')
connect_version=$(sed -n 's#.*redpanda-data/connect/v4 \(v[^ ]*\).*#\1#p' "$SRC/go.mod" | head -1)
if [[ $mode == ordered ]]; then
  echo "peer: Redpanda Connect $connect_version, redpanda input (ordered) -> http_client, idle conns per host ${keepalive:-2 (stock)}"
  echo "records: $records  partitions: $partitions  batch: $batch (max_yield_batch_bytes $((batch * record_bytes)))  max_in_flight: $max_in_flight"
else
  echo "peer: Redpanda Connect $connect_version, kafka_franz input -> http_client, idle conns per host ${keepalive:-2 (stock)}"
  echo "records: $records  partitions: $partitions  batch: $batch  window: $window  max_in_flight: $max_in_flight  checkpoint_limit: $checkpoint_limit"
fi
echo "drain_s: $drain"
if [[ -n $latency ]]; then
  lat_s=$(awk -v d="$latency" 'BEGIN {
    if (d ~ /ms$/) { sub(/ms$/, "", d); print d / 1000 } else if (d ~ /s$/) { sub(/s$/, "", d); print d } else print d }')
  bound=$(awk -v r="$records" -v b="$batch" -v p="$partitions" -v l="$lat_s" 'BEGIN {
    n = r / b / p; c = int(n); if (c < n) c++; printf "%.2f", c * l }')
  echo "bound_s: $bound  (ceil($records / $batch / $partitions) x $latency)"
  echo "ratio: $(awk -v d="$drain" -v b="$bound" 'BEGIN { printf "%.2f", d / b }')"
fi
echo "cpu_s: $cpu"
metrics_summary
echo "peak_rss_mib: $rss"
if [[ -n $kafka_dir ]]; then
  echo "kafka group-lag (ConsumerGroupCommand):"
  "$REPO/tests/e2e/kafka.sh" group-lag "$group" --dir "$kafka_dir" 2>/dev/null |
    awk 'NR > 1 && $6 ~ /^[0-9]+$/ { lag += $6; n++ } END { printf "  partitions %d, total lag %d\n", n, lag }'
fi

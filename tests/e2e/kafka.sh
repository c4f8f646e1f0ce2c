#!/usr/bin/env bash
# tests/e2e/kafka.sh -- a real single-node Apache Kafka 4.x broker (KRaft,
# combined broker+controller) run as a plain JVM process on 127.0.0.1, for
# end-to-end tests. No Docker, no downloads except Maven artifacts.
#
#   kafka.sh fetch                         jars -> .cache/kafka-4.4.0/{libs,tools-libs} (idempotent)
#   kafka.sh start [--port N] [--dir D]    format + start, wait until it serves;
#                                          last stdout line = bootstrap address
#   kafka.sh stop [--keep] [--dir D]       SIGTERM, wait, SIGKILL fallback, rm state
#                                          (a failed start leaves its state for a look;
#                                          stop removes it; --keep keeps it, and the next
#                                          start resumes it on the same ports and data)
#   kafka.sh status [--dir D]              "running ADDR pid N" (exit 0) / "stopped" (exit 1)
#   kafka.sh bootstrap [--dir D]           print the bootstrap address (exit 1 if stopped)
#   kafka.sh topic-create [--dir D] NAME PARTITIONS [TopicCommand args...]
#   kafka.sh group-lag [--dir D] GROUP [ConsumerGroupCommand args...]
#   kafka.sh run [--dir D] MAIN_CLASS [args...]   a class on the tools classpath
#   kafka.sh run-broker-class MAIN_CLASS [args...] a class on the broker classpath
#
# Environment:
#   KESM_KAFKA_DIR     state dir (default <repo>/.cache/kafka-run); --dir wins
#   KESM_KAFKA_CACHE   jar cache (default <repo>/.cache/kafka-4.4.0)
#   KESM_M2_REPO       Maven local repository (default: Maven's own, ~/.m2/repository)
#   KESM_KAFKA_START_TIMEOUT  seconds to wait for readiness (default 60)
#   JAVA_HOME, MVN     which java / mvn to use
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
KAFKA_VERSION=4.4.0
CACHE_DIR=${KESM_KAFKA_CACHE:-$REPO_ROOT/.cache/kafka-$KAFKA_VERSION}
LIBS_DIR=$CACHE_DIR/libs              # broker classpath
TOOLS_LIBS_DIR=$CACHE_DIR/tools-libs  # admin CLI classpath
POM=$SCRIPT_DIR/pom.xml
STATE_DIR=${KESM_KAFKA_DIR:-$REPO_ROOT/.cache/kafka-run}
START_TIMEOUT=${KESM_KAFKA_START_TIMEOUT:-60}
STOP_TIMEOUT=30
MARKER=.kesm-kafka-state      # only dirs holding this file are ever rm -rf'ed
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
MVN=${MVN:-mvn}
# Short-lived CLI JVMs: C1 only + serial GC start noticeably faster.
TOOL_JVM_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)

log() { echo "kafka.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- fetch
# Two classpaths from one pom (profiles): libs/ = broker 4.4.0, tools-libs/ =
# kafka-tools 4.3.1 stack (4.4.0 tools are not served here; see pom.xml).
pom_stamp() { { sha256sum "$POM"; echo "$KAFKA_VERSION"; } | sha256sum | cut -d' ' -f1; }

libs_cached() {
  [[ -f $CACHE_DIR/libs.stamp && -d $LIBS_DIR && -d $TOOLS_LIBS_DIR ]] &&
    [[ $(cat "$CACHE_DIR/libs.stamp") == "$(pom_stamp)" ]]
}

mvn_copy() {  # mvn_copy PROFILE OUTDIR
  local mvn_args=(-B -q -f "$POM" -P "$1" dependency:copy-dependencies
                  -DincludeScope=runtime -DoutputDirectory="$2")
  [[ -n ${KESM_M2_REPO:-} ]] && mvn_args+=(-Dmaven.repo.local="$KESM_M2_REPO")
  # Maven 3.8 prints bare colour resets even with -B -q: strip them. With
  # pipefail the pipeline's status is mvn's (the filter always succeeds).
  "$MVN" "${mvn_args[@]}" 2>&1 |
    { sed 's/\x1b\[[0-9;]*m//g' | grep -v '^$' || true; } >&2
}

cmd_fetch() {
  if libs_cached; then
    log "cached: $CACHE_DIR ($(ls "$LIBS_DIR" | wc -l) broker jars, $(ls "$TOOLS_LIBS_DIR" | wc -l) tools jars)"
    return 0
  fi
  command -v "$MVN" >/dev/null || die "mvn not found (set MVN=...)"
  mkdir -p "$CACHE_DIR"
  # Serialise concurrent fetches (parallel test runners).
  exec 9>"$CACHE_DIR/.fetch.lock"
  flock 9
  if libs_cached; then log "cached: $CACHE_DIR"; exec 9>&-; return 0; fi
  local tmp=$CACHE_DIR/fetch.tmp.$$
  rm -rf "$tmp"
  log "fetching Kafka $KAFKA_VERSION broker + tools jars with Maven -> $CACHE_DIR"
  if ! mvn_copy broker "$tmp/libs" || ! mvn_copy tools "$tmp/tools-libs"; then
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed"
  fi
  if ! compgen -G "$tmp/libs/kafka_2.13-*.jar" >/dev/null ||
     ! compgen -G "$tmp/tools-libs/kafka-tools-*.jar" >/dev/null; then
    rm -rf "$tmp"
    die "fetch produced no kafka_2.13 / kafka-tools jar"
  fi
  rm -rf "$LIBS_DIR" "$TOOLS_LIBS_DIR"
  mv "$tmp/libs" "$LIBS_DIR"
  mv "$tmp/tools-libs" "$TOOLS_LIBS_DIR"
  rmdir "$tmp"
  pom_stamp >"$CACHE_DIR/libs.stamp"
  exec 9>&-
  log "fetched $(ls "$LIBS_DIR" | wc -l) broker jars ($(du -sh "$LIBS_DIR" | cut -f1)), $(ls "$TOOLS_LIBS_DIR" | wc -l) tools jars ($(du -sh "$TOOLS_LIBS_DIR" | cut -f1))"
}

ensure_libs() { libs_cached || cmd_fetch; }

# ---------------------------------------------------------------- helpers
check_java() {
  command -v "$JAVA" >/dev/null || die "java not found (set JAVA_HOME)"
  local v
  v=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [[ -n $v && $v -ge 17 ]] || die "Kafka 4.x needs Java >= 17; $JAVA is '${v:-unknown}'"
}

# Two distinct free TCP ports on 127.0.0.1 (bind to port 0, let the kernel pick).
free_ports() {
  local n=$1
  if command -v python3 >/dev/null; then
    python3 - "$n" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
  else  # fallback: random high ports nobody answers on
    local out=() p
    while ((${#out[@]} < n)); do
      p=$((20000 + RANDOM % 30000))
      [[ " ${out[*]} " == *" $p "* ]] && continue
      (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || out+=("$p")
    done
    echo "${out[*]}"
  fi
}

port_open() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

# Kafka cluster ids are 16 random bytes, base64url without padding (22 chars);
# Kafka itself avoids ids that start with '-' (they look like CLI flags).
random_cluster_id() {
  local id
  while :; do
    id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    [[ $id != -* ]] && { echo "$id"; return; }
  done
}

broker_pid() {  # prints pid if the broker recorded in $STATE_DIR is alive
  local f=$STATE_DIR/kafka.pid pid
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against pid reuse: must be our kafka.Kafka with our server.properties.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
    grep -qF "kafka.Kafka $STATE_DIR/server.properties" || return 1
  echo "$pid"
}

bootstrap_addr() {
  [[ -f $STATE_DIR/bootstrap ]] || return 1
  cat "$STATE_DIR/bootstrap"
}

write_tools_log4j() {  # CLI tools: warnings and errors to stderr only
  cat >"$1" <<'EOF'
status = error
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = STDERR
EOF
}

# TOOL_ARGV = java command line for a CLI; $1 = classpath dir (default tools).
tool_argv() {
  local cfg=$CACHE_DIR/tools-log4j2.properties
  [[ -f $cfg ]] || write_tools_log4j "$cfg"
  TOOL_ARGV=("$JAVA" "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$cfg"
             -cp "${1:-$TOOLS_LIBS_DIR}/*")
}

run_class() {  # run_class MAIN args...   (admin tools classpath)
  tool_argv
  "${TOOL_ARGV[@]}" "$@"
}

run_broker_class() {  # run_broker_class MAIN args...   (broker classpath)
  tool_argv "$LIBS_DIR"
  "${TOOL_ARGV[@]}" "$@"
}

# Admin-client settings for the CLI tools: 30 s instead of the 60 s default.
admin_config() {
  local f=$STATE_DIR/admin.properties
  if [[ ! -f $f ]]; then
    # No "retries" cap: a fresh cluster answers COORDINATOR_NOT_AVAILABLE while
    # it creates __consumer_offsets, and the tools must retry through that.
    printf '%s\n' request.timeout.ms=10000 default.api.timeout.ms=30000 >"$f"
  fi
  echo "$f"
}

require_running() {
  broker_pid >/dev/null || die "no broker running in $STATE_DIR (run: $0 start)"
  ensure_libs
}

fail_start() {
  log "error: $*"
  if [[ -f $STATE_DIR/logs/server.log ]]; then
    log "---- tail of $STATE_DIR/logs/server.log ----"
    tail -n 40 "$STATE_DIR/logs/server.log" >&2
  fi
  if [[ -s $STATE_DIR/kafka.out ]]; then
    log "---- tail of $STATE_DIR/kafka.out ----"
    tail -n 20 "$STATE_DIR/kafka.out" >&2
  fi
  local pid
  if pid=$(broker_pid); then kill -KILL "$pid" 2>/dev/null || true; fi
  exit 1
}

# ---------------------------------------------------------------- start
cmd_start() {
  local port=""
  while (($#)); do
    case $1 in
      --port) port=${2:?--port needs a value}; shift 2 ;;
      --port=*) port=${1#*=}; shift ;;
      *) die "start: unknown argument '$1'" ;;
    esac
  done
  local pid
  if pid=$(broker_pid); then
    [[ -z $port || $(bootstrap_addr) == "127.0.0.1:$port" ]] ||
      die "a broker already runs in $STATE_DIR on $(bootstrap_addr), not port $port"
    log "already running (pid $pid)"
    bootstrap_addr
    return 0
  fi
  if [[ -n $port ]]; then
    if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
      die "bad port '$port'"
    fi
    port_open "$port" && die "port $port on 127.0.0.1 is already in use"
  fi
  check_java
  ensure_libs

  if [[ -f $STATE_DIR/$MARKER && -f $STATE_DIR/kept && -f $STATE_DIR/server.properties ]]; then
    local kept_bootstrap
    kept_bootstrap=$(bootstrap_addr) || die "kept state in $STATE_DIR has no bootstrap file"
    [[ -z $port || $kept_bootstrap == "127.0.0.1:$port" ]] ||
      die "kept state in $STATE_DIR is for $kept_bootstrap, not port $port"
    rm -f "$STATE_DIR/kept"
    log "resuming kept state in $STATE_DIR on $kept_bootstrap"
    launch_broker "${kept_bootstrap##*:}"
    return 0
  fi

  if [[ -d $STATE_DIR ]]; then
    [[ -f $STATE_DIR/$MARKER ]] ||
      [[ -z $(ls -A "$STATE_DIR") ]] ||
      die "$STATE_DIR exists and is not a kafka.sh state dir; refusing to reuse it"
    rm -rf "$STATE_DIR"    # stale state of a dead broker
  fi
  mkdir -p "$STATE_DIR/data" "$STATE_DIR/logs"
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  touch "$STATE_DIR/$MARKER"

  local ports cport
  if [[ -n $port ]]; then
    ports=$(free_ports 2); cport=${ports%% *}
    [[ $cport == "$port" ]] && cport=${ports##* }
  else
    ports=$(free_ports 2); port=${ports%% *}; cport=${ports##* }
  fi
  local bootstrap=127.0.0.1:$port

  cat >"$STATE_DIR/server.properties" <<EOF
# Written by tests/e2e/kafka.sh: single-node KRaft (broker+controller) on loopback.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://$bootstrap
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$STATE_DIR/data

# One broker: every internal topic must have replication factor 1.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
num.partitions=1
default.replication.factor=1
min.insync.replicas=1

# Tests create their topics explicitly (topic-create) with the partition count
# they mean; a typo must not silently create a 1-partition topic.
auto.create.topics.enable=false
# Join groups at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0

# Small machine (2 cores): fewer threads, smaller log-cleaner buffer (default
# 128 MiB, allocated on the heap at startup).
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
EOF

  cat >"$STATE_DIR/log4j2.properties" <<EOF
status = error
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $STATE_DIR/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
# The request logger is very chatty at DEBUG/TRACE; keep it quiet.
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.request.additivity = false
logger.request.appenderRef.file.ref = FILE
EOF

  local cluster_id
  cluster_id=$(random_cluster_id)
  echo "$cluster_id" >"$STATE_DIR/cluster.id"
  if ! run_broker_class kafka.tools.StorageTool format -t "$cluster_id" \
        -c "$STATE_DIR/server.properties" >"$STATE_DIR/format.out" 2>&1; then
    cat "$STATE_DIR/format.out" >&2
    fail_start "storage format failed"
  fi

  echo "$bootstrap" >"$STATE_DIR/bootstrap"
  launch_broker "$port"
}

# Starts the JVM on the formatted state dir and waits until it serves.
launch_broker() {
  local port=$1 bootstrap=127.0.0.1:$1
  local t0=$SECONDS
  rm -f "$STATE_DIR/kafka.pid" # a kept state holds the previous JVM's pid
  # setsid: own session, so the caller's Ctrl-C / process-group kill does not
  # hit it; bash records its own pid and then execs java, so the pid file
  # holds the JVM's pid. All fds redirected so $(kafka.sh start) returns.
  # shellcheck disable=SC2016  # $$ and $@ expand in the inner bash
  setsid bash -c 'echo $$ >"$1/kafka.pid"; shift; exec "$@"' _ "$STATE_DIR" \
    "$JAVA" -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$STATE_DIR/log4j2.properties" \
    -Dkafka.logs.dir="$STATE_DIR/logs" \
    -cp "$LIBS_DIR/*" kafka.Kafka "$STATE_DIR/server.properties" \
    </dev/null >"$STATE_DIR/kafka.out" 2>&1 &
  for _ in $(seq 50); do [[ -s $STATE_DIR/kafka.pid ]] && break; sleep 0.1; done
  local launched
  launched=$(cat "$STATE_DIR/kafka.pid" 2>/dev/null) || fail_start "the broker wrote no pid file"

  # Ready = an Admin metadata request (TopicCommand --list) succeeds, not merely
  # an open port. Cheap port polling first, then the real request.
  local cfg deadline=$((SECONDS + START_TIMEOUT))
  cfg=$(admin_config)
  while :; do
    # kill -0, not broker_pid: until bash has exec'd java the cmdline is not yet Kafka's.
    kill -0 "$launched" 2>/dev/null || fail_start "broker exited during startup"
    ((SECONDS < deadline)) || fail_start "broker not ready after ${START_TIMEOUT}s"
    if port_open "$port"; then
      tool_argv
      if timeout $((deadline - SECONDS + 1)) "${TOOL_ARGV[@]}" org.apache.kafka.tools.TopicCommand \
          --bootstrap-server "$bootstrap" --command-config "$cfg" --list \
          >"$STATE_DIR/ready-check.out" 2>&1; then
        break
      fi
    fi
    sleep 0.3
  done
  log "broker pid $(cat "$STATE_DIR/kafka.pid") ready on $bootstrap in $((SECONDS - t0))s (state: $STATE_DIR)"
  echo "$bootstrap"
}

# ---------------------------------------------------------------- stop / status
cmd_stop() {
  local keep=0
  while (($#)); do
    case $1 in
      --keep) keep=1; shift ;;
      *) die "stop: unknown argument '$1'" ;;
    esac
  done
  local pid
  if pid=$(broker_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid still alive after ${STOP_TIMEOUT}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    log "stopped pid $pid"
  else
    log "not running"
  fi
  if [[ -d $STATE_DIR ]]; then
    if [[ -f $STATE_DIR/$MARKER ]] && ((keep)); then
      touch "$STATE_DIR/kept"
      log "state kept in $STATE_DIR"
    elif [[ -f $STATE_DIR/$MARKER ]]; then
      rm -rf "$STATE_DIR"
    else
      log "warning: $STATE_DIR is not a kafka.sh state dir; left in place"
    fi
  fi
}

cmd_status() {
  [[ $# -eq 0 ]] || die "status: unknown argument '$1'"
  local pid
  if pid=$(broker_pid); then
    echo "running $(bootstrap_addr) pid $pid"
  else
    echo "stopped"
    return 1
  fi
}

cmd_bootstrap() {
  broker_pid >/dev/null || die "no broker running in $STATE_DIR"
  bootstrap_addr
}

# ---------------------------------------------------------------- tools
cmd_topic_create() {
  (($# >= 2)) || die "usage: topic-create NAME PARTITIONS [TopicCommand args...]"
  local name=$1 parts=$2; shift 2
  require_running
  run_class org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap_addr)" \
    --command-config "$(admin_config)" --create --topic "$name" \
    --partitions "$parts" --replication-factor 1 "$@"
}

cmd_group_lag() {
  (($# >= 1)) || die "usage: group-lag GROUP [ConsumerGroupCommand args...]"
  local group=$1; shift
  require_running
  # ConsumerGroupCommand exits 0 even when --describe fails ("Error: ..."),
  # so look at what it printed and turn that into a non-zero exit.
  local tmp rc=0
  tmp=$(mktemp -d)
  run_class org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
    --bootstrap-server "$(bootstrap_addr)" --command-config "$(admin_config)" \
    --describe --group "$group" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  cat "$tmp/out"
  cat "$tmp/err" >&2
  if ((rc == 0)) && grep -q '^Error' "$tmp/out" "$tmp/err"; then rc=1; fi
  rm -rf "$tmp"
  return "$rc"
}

cmd_run() {
  (($# >= 1)) || die "usage: run MAIN_CLASS [args...]"
  ensure_libs
  run_class "$@"
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

# ---------------------------------------------------------------- main
(($#)) || usage
sub=$1; shift
# --dir D may appear anywhere among a subcommand's arguments.
args=()
while (($#)); do
  case $1 in
    --dir) STATE_DIR=${2:?--dir needs a value}; shift 2 ;;
    --dir=*) STATE_DIR=${1#*=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- ${args[@]+"${args[@]}"}
case $STATE_DIR in /*) ;; *) STATE_DIR=$PWD/$STATE_DIR ;; esac
STATE_DIR=${STATE_DIR%/}
[[ -d $STATE_DIR ]] && STATE_DIR=$(cd "$STATE_DIR" && pwd -P)

case $sub in
  fetch) cmd_fetch ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  bootstrap) cmd_bootstrap "$@" ;;
  topic-create) cmd_topic_create "$@" ;;
  group-lag) cmd_group_lag "$@" ;;
  run) cmd_run "$@" ;;
  run-broker-class) ensure_libs; run_broker_class "$@" ;;
  -h|--help|help) usage ;;
  *) die "unknown subcommand '$sub' (fetch|start|stop|status|bootstrap|topic-create|group-lag|run)" ;;
esac

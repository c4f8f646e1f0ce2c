#!/usr/bin/env bash
# tests/e2e/kafka.sh -- a real single-node Apache Kafka broker (KRaft, combined
# broker+controller; 4.4.0, or 3.9.1 on request) run as a plain JVM process on
# 127.0.0.1, for end-to-end tests. No Docker, no downloads except Maven artifacts.
#
#   kafka.sh fetch                         jars -> .cache/kafka-<V>/{libs,tools-libs} (idempotent)
#   kafka.sh start [--port N] [--no-secure] [--dir D]
#                                          format + start, wait until it serves;
#                                          last stdout line = PLAINTEXT bootstrap address
#                                          (--port N: the PLAINTEXT port; --no-secure: no
#                                          SASL/TLS listeners, only PLAINTEXT)
#   kafka.sh stop [--keep] [--dir D]       SIGTERM, wait, SIGKILL fallback, rm state
#                                          (keys and certificates included; a failed start
#                                          leaves its state for a look; stop removes it;
#                                          --keep keeps it, and the next start resumes it
#                                          on the same ports of every listener, same data,
#                                          same certificates and SCRAM users)
#   kafka.sh status [--dir D]              "running ADDR pid N" (exit 0) / "stopped" (exit 1)
#   kafka.sh bootstrap [--listener L] [--dir D]
#                                          print a listener's address (exit 1 if stopped or
#                                          the broker has no such listener); L is one of
#                                          plaintext (default), sasl, ssl, sasl_ssl
#   kafka.sh tls-dir [--dir D]             print the directory holding ca.pem, client.pem,
#                                          client.key, client-encrypted.key (exit 1 if none)
#   kafka.sh topic-create [--dir D] NAME PARTITIONS [TopicCommand args...]
#   kafka.sh group-lag [--dir D] GROUP [ConsumerGroupCommand args...]
#   kafka.sh run [--dir D] MAIN_CLASS [args...]   a class on the tools classpath
#   kafka.sh run-broker-class MAIN_CLASS [args...] a class on the broker classpath
#   kafka.sh version [--dir D]             the Kafka version the other subcommands use there
#
# Kafka version: 4.4.0 by default; --kafka-version V (any subcommand, anywhere among its
# arguments) or KESM_KAFKA_VERSION=V selects V, one of 4.4.0 and 3.9.1. Each version has
# its own pom (4.4.0: pom.xml, 3.9.1: pom-3.9.xml), jar cache (.cache/kafka-<V>) and
# default state dir (4.4.0: .cache/kafka-run, 3.9.1: .cache/kafka-run-3.9.1). A state
# dir records its broker's version (<state>/kafka.version); without --kafka-version /
# KESM_KAFKA_VERSION, every subcommand on an existing state dir uses that version, so
# only start needs it: KESM_KAFKA_VERSION=3.9.1 kafka.sh start --dir D, then
# kafka.sh bootstrap --listener sasl --dir D. start refuses to resume (or to report as
# started) a kept or running broker of another version.
# Why 3.9.1: librdkafka < 2.6.1 (Debian 12's 2.0.2, which kesm links) repeats the client
# nonce in its SCRAM client-final-message (confluentinc/librdkafka#4895); Kafka 4.x
# rejects that as "invalid credentials", Kafka 3.8.1-3.9.x accept it. So SCRAM-SHA-256/512
# from kesm/librdkafka 2.0.2 works against 3.9.1 only (PLAIN and mTLS work on both).
# 3.9.1 differs inside: log4j 1.x (reload4j) config (-Dlog4j.configuration=file:...),
# no share-group settings, Java >= 11; its kafka-tools 3.9.1 CLIs keep older names and
# flags (ConsoleProducer is kafka.tools.ConsoleProducer on the broker classpath, with
# --producer.config; ConsoleConsumer takes --consumer.config, not --command-config).
#
# Listeners (each on a loopback port of its own, picked free at the first start):
#   plaintext  PLAINTEXT        no auth; inter-broker and admin tools use it
#   sasl       SASL_PLAINTEXT   SCRAM-SHA-256, SCRAM-SHA-512, PLAIN; user kesm / kesm-secret
#                               (SCRAM from librdkafka < 2.6.1: 3.9.1 broker only, see above)
#   ssl        SSL              mTLS: ssl.client.auth=required, client cert signed by ca.pem
#   sasl_ssl   SASL_SSL         TLS (no client cert) + SCRAM-SHA-256/512, PLAIN; kesm / kesm-secret
#   (plus CONTROLLER, PLAINTEXT, for KRaft only). Certificates: openssl, EC P-256, PEM,
#   made fresh at each clean start in <state>/tls/: ca.pem (+ca.key), broker cert with
#   subjectAltName DNS:localhost,IP:127.0.0.1, client.pem + client.key (CN=kesm, unencrypted
#   PKCS#8) and client-encrypted.key (the same key, PKCS#8 PBES2/AES-256-CBC encrypted
#   with password kesm-key-pass; client-encrypted-pbes1.key: the same as PBES1 3DES, which
#   Java can read); client-keystore.pem = client.key + client.pem + ca.pem (Java PEM keystore).
#   Without openssl on PATH the TLS listeners are left out (with a warning).
#   Example client settings: tests/e2e/security/README.md.
#
# Environment:
#   KESM_KAFKA_VERSION Kafka version (4.4.0 default, or 3.9.1); --kafka-version wins
#   KESM_KAFKA_DIR     state dir, any version (default <repo>/.cache/kafka-run, for 3.9.1
#                      <repo>/.cache/kafka-run-3.9.1); --dir wins
#   KESM_KAFKA_CACHE   jar cache of 4.4.0 (default <repo>/.cache/kafka-4.4.0)
#   KESM_KAFKA_CACHE_3_9  jar cache of 3.9.1 (default <repo>/.cache/kafka-3.9.1)
#   KESM_M2_REPO       Maven local repository (default: Maven's own, ~/.m2/repository)
#   KESM_KAFKA_START_TIMEOUT  seconds to wait for readiness (default 60)
#   JAVA_HOME, MVN     which java / mvn to use
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
DEFAULT_KAFKA_VERSION=4.4.0
# Set by select_kafka_version (main, once the arguments are read): KAFKA_VERSION,
# POM, CACHE_DIR, LIBS_DIR (broker classpath), TOOLS_LIBS_DIR (admin CLI classpath),
# LOG4J (2: log4j2, Kafka 4.x; 1: log4j 1.x API via reload4j, Kafka 3.x), MIN_JAVA.
KAFKA_VERSION="" POM="" CACHE_DIR="" LIBS_DIR="" TOOLS_LIBS_DIR="" LOG4J="" MIN_JAVA=""
KAFKA_VERSION_EXPLICIT=0      # 1: --kafka-version / KESM_KAFKA_VERSION chose it
STATE_DIR=""                  # --dir, else KESM_KAFKA_DIR, else a per-version default
START_TIMEOUT=${KESM_KAFKA_START_TIMEOUT:-60}
STOP_TIMEOUT=30
MARKER=.kesm-kafka-state      # only dirs holding this file are ever rm -rf'ed
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
MVN=${MVN:-mvn}
# Credentials of the secure listeners (test-only secrets, also in the header).
SASL_USER=kesm
SASL_PASSWORD=kesm-secret
TLS_KEY_PASSWORD=kesm-key-pass
SECURE_LISTENERS=(sasl ssl sasl_ssl)   # kafka.sh names; bootstrap.<name> holds the address
# Short-lived CLI JVMs: C1 only + serial GC start noticeably faster.
TOOL_JVM_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)

log() { echo "kafka.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# select_kafka_version V: the broker version whose jars, pom and cache are used.
# 4.4.0's pom, cache dir and cache stamp are what they were before 3.9.1 existed.
select_kafka_version() {
  case $1 in
    4.4.0)
      POM=$SCRIPT_DIR/pom.xml
      CACHE_DIR=${KESM_KAFKA_CACHE:-$REPO_ROOT/.cache/kafka-$1}
      LOG4J=2 MIN_JAVA=17 ;;
    3.9.1)
      # For SCRAM from librdkafka < 2.6.1 (see the header). Own pom, own cache.
      POM=$SCRIPT_DIR/pom-3.9.xml
      CACHE_DIR=${KESM_KAFKA_CACHE_3_9:-$REPO_ROOT/.cache/kafka-$1}
      LOG4J=1 MIN_JAVA=11 ;;
    *) die "unsupported Kafka version '$1' (supported: 4.4.0, the default, and 3.9.1)" ;;
  esac
  KAFKA_VERSION=$1
  LIBS_DIR=$CACHE_DIR/libs
  TOOLS_LIBS_DIR=$CACHE_DIR/tools-libs
}

# The Kafka version of the state dir's broker (state dirs made before kafka.sh knew
# versions hold no kafka.version file: those are 4.4.0).
state_version() {
  if [[ -f $STATE_DIR/kafka.version ]]; then cat "$STATE_DIR/kafka.version"
  else echo 4.4.0; fi
}

# ---------------------------------------------------------------- fetch
# Two classpaths from one pom (profiles): libs/ = the broker, tools-libs/ = the admin
# CLIs. 4.4.0 (pom.xml): broker 4.4.0, kafka-tools 4.3.1 stack (4.4.0 tools are not
# served here; see pom.xml). 3.9.1 (pom-3.9.xml): broker and kafka-tools 3.9.1.
pom_stamp() {  # the pom's content, not its path: worktrees share .cache
  { sha256sum <"$POM"; echo "$KAFKA_VERSION"; } | sha256sum | cut -d' ' -f1
}

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
  [[ -n $v && $v -ge $MIN_JAVA ]] ||
    die "Kafka $KAFKA_VERSION needs Java >= $MIN_JAVA; $JAVA is '${v:-unknown}'"
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

# bootstrap_addr [LISTENER]: the recorded address of a listener (default plaintext).
# PLAINTEXT's is in "bootstrap" (as before), the others' in "bootstrap.<listener>".
bootstrap_addr() {
  local f=$STATE_DIR/bootstrap
  [[ ${1:-plaintext} == plaintext ]] || f=$STATE_DIR/bootstrap.$1
  [[ -f $f ]] || return 1
  cat "$f"
}

# Listener names kafka.sh accepts -> its own names (plaintext|sasl|ssl|sasl_ssl).
listener_name() {
  case ${1,,} in
    plaintext) echo plaintext ;;
    sasl|sasl_plaintext) echo sasl ;;
    ssl|tls|mtls) echo ssl ;;
    sasl_ssl) echo sasl_ssl ;;
    *) return 1 ;;
  esac
}

# The secure listeners this state dir has (their bootstrap.<name> files), in order.
state_secure_listeners() {
  local l
  for l in "${SECURE_LISTENERS[@]}"; do
    [[ -f $STATE_DIR/bootstrap.$l ]] && echo "$l"
  done
  return 0
}

# make_tls DIR: a test CA, a broker certificate for localhost / 127.0.0.1 and a client
# certificate, all signed by the CA; PEM files, EC P-256 keys (an RSA key costs 0.1-0.5 s
# of CPU each on a small machine, an EC key a few ms), unencrypted PKCS#8 keys, plus
# client-encrypted.key: the client key as encrypted PKCS#8 (PBES2, AES-256-CBC, as
# openssl 3 makes by default) with password $TLS_KEY_PASSWORD, and
# client-encrypted-pbes1.key, the same for Java clients. Nothing is read from the
# system openssl.cnf.
make_tls() {
  local d=$1
  mkdir -p "$d"
  chmod 700 "$d"
  cat >"$d/openssl.cnf" <<'EOF'
# Written by tests/e2e/kafka.sh (test certificates; never use outside tests).
[req]
distinguished_name = req_dn
prompt = no
[req_dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[broker_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  local cnf=$d/openssl.cnf days=3650 name
  local newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  openssl req -config "$cnf" -x509 "${newkey[@]}" -sha256 -days "$days" \
    -subj "/O=kesm tests/CN=kesm test CA" -extensions ca_ext \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>>"$d/openssl.log" || return 1
  for name in broker client; do
    local subj="/O=kesm tests/CN=localhost"
    [[ $name == client ]] && subj="/O=kesm tests/CN=$SASL_USER"
    openssl req -config "$cnf" -new "${newkey[@]}" -subj "$subj" \
      -keyout "$d/$name.key" -out "$d/$name.csr" 2>>"$d/openssl.log" || return 1
    openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
      -set_serial "0x$(openssl rand -hex 12)" -sha256 -days "$days" \
      -extfile "$cnf" -extensions "${name}_ext" -out "$d/$name.pem" 2>>"$d/openssl.log" || return 1
    rm -f "$d/$name.csr"
    # A PEM keystore for Java (Kafka's ssl.keystore.type=PEM): key, then the chain.
    cat "$d/$name.key" "$d/$name.pem" "$d/ca.pem" >"$d/$name-keystore.pem"
  done
  openssl pkcs8 -topk8 -v2 aes-256-cbc -in "$d/client.key" \
    -passout "pass:$TLS_KEY_PASSWORD" -out "$d/client-encrypted.key" 2>>"$d/openssl.log" || return 1
  # Java (17) cannot decrypt PBES2 keys ("PBES2 SecretKeyFactory not available"), so
  # Java clients get the same key under PKCS#8 PBES1 pbeWithSHA1And3-KeyTripleDES-CBC.
  openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in "$d/client.key" \
    -passout "pass:$TLS_KEY_PASSWORD" -out "$d/client-encrypted-pbes1.key" 2>>"$d/openssl.log" || return 1
  openssl verify -CAfile "$d/ca.pem" "$d/broker.pem" "$d/client.pem" >>"$d/openssl.log" 2>&1 || return 1
  chmod 600 "$d"/*.key "$d"/*-keystore.pem
}

write_tools_log4j() {  # CLI tools: warnings and errors to stderr only
  if ((LOG4J == 1)); then  # Kafka 3.x: log4j 1.x properties (reload4j)
    cat >"$1" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
    return
  fi
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
  local cfg=$CACHE_DIR/tools-log4j2.properties log_opt
  ((LOG4J == 1)) && cfg=$CACHE_DIR/tools-log4j.properties
  [[ -f $cfg ]] || write_tools_log4j "$cfg"
  if ((LOG4J == 1)); then log_opt=-Dlog4j.configuration=file:$cfg
  else log_opt=-Dlog4j2.configurationFile=$cfg; fi
  TOOL_ARGV=("$JAVA" "${TOOL_JVM_OPTS[@]}" "$log_opt" -cp "${1:-$TOOLS_LIBS_DIR}/*")
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
# server.properties lines for one secure listener (kafka.sh name, TLS dir). Per-listener
# settings (listener.name.<lowercase kafka name>.*) only: nothing changes for PLAINTEXT
# and CONTROLLER, and inter-broker traffic stays on PLAINTEXT.
secure_listener_config() {
  local l=$1 tls=$2 pfx m
  case $l in
    sasl) pfx=listener.name.sasl_plaintext ;;
    ssl) pfx=listener.name.ssl ;;
    sasl_ssl) pfx=listener.name.sasl_ssl ;;
  esac
  echo
  if [[ $l == sasl || $l == sasl_ssl ]]; then
    echo "# $l: SCRAM users are made at format time (--add-scram); PLAIN's are listed here."
    echo "$pfx.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN"
    for m in scram-sha-256 scram-sha-512; do
      echo "$pfx.$m.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
    done
    echo "$pfx.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER=\"$SASL_PASSWORD\";"
  fi
  if [[ $l == ssl || $l == sasl_ssl ]]; then
    echo "# $l: TLS with PEM files made by openssl (no keytool, no store passwords)."
    echo "$pfx.ssl.keystore.type=PEM"
    echo "$pfx.ssl.keystore.location=$tls/broker-keystore.pem"
    echo "$pfx.ssl.truststore.type=PEM"
    echo "$pfx.ssl.truststore.location=$tls/ca.pem"
    if [[ $l == ssl ]]; then
      echo "$pfx.ssl.client.auth=required"
    else
      echo "$pfx.ssl.client.auth=none"
    fi
  fi
}

cmd_start() {
  local port="" secure=1
  while (($#)); do
    case $1 in
      --port) port=${2:?--port needs a value}; shift 2 ;;
      --port=*) port=${1#*=}; shift ;;
      --no-secure) secure=0; shift ;;
      *) die "start: unknown argument '$1'" ;;
    esac
  done
  local pid
  if pid=$(broker_pid); then
    [[ $(state_version) == "$KAFKA_VERSION" ]] ||
      die "a Kafka $(state_version) broker already runs in $STATE_DIR, not $KAFKA_VERSION"
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
    [[ $(state_version) == "$KAFKA_VERSION" ]] ||
      die "kept state in $STATE_DIR is of Kafka $(state_version), not $KAFKA_VERSION (stop --dir it without --keep to discard it)"
    local kept_bootstrap
    kept_bootstrap=$(bootstrap_addr) || die "kept state in $STATE_DIR has no bootstrap file"
    [[ -z $port || $kept_bootstrap == "127.0.0.1:$port" ]] ||
      die "kept state in $STATE_DIR is for $kept_bootstrap, not port $port"
    # Every listener comes back on its recorded port (server.properties holds them
    # all); say clearly which one is taken rather than let the broker fail to bind.
    local l addr
    for l in plaintext $(state_secure_listeners); do
      addr=$(bootstrap_addr "$l")
      port_open "${addr##*:}" && die "cannot resume $STATE_DIR: its $l port ${addr##*:} on 127.0.0.1 is in use"
    done
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
  echo "$KAFKA_VERSION" >"$STATE_DIR/kafka.version"

  # Which secure listeners: SASL_PLAINTEXT needs nothing; the TLS ones need openssl
  # for their certificates (left out, with a warning, when it is missing).
  local secure_listeners=()
  if ((secure)); then
    if command -v openssl >/dev/null; then
      secure_listeners=("${SECURE_LISTENERS[@]}")
    else
      log "warning: openssl not found: no ssl / sasl_ssl listeners, only plaintext and sasl"
      secure_listeners=(sasl)
    fi
  fi

  # Ports: the controller's and one per secure listener, all distinct from --port.
  local need=$((1 + ${#secure_listeners[@]})) p free=()
  [[ -z $port ]] && need=$((need + 1))
  for p in $(free_ports $((need + 1))); do
    [[ $p == "$port" ]] || free+=("$p")
  done
  ((${#free[@]} >= need)) || fail_start "could not find $need free ports"
  if [[ -z $port ]]; then port=${free[0]}; free=("${free[@]:1}"); fi
  local cport=${free[0]}
  local bootstrap=127.0.0.1:$port
  local -A lport=()
  local i=1 l
  for l in ${secure_listeners[@]+"${secure_listeners[@]}"}; do
    lport[$l]=${free[i]}
    i=$((i + 1))
  done

  # Kafka listener names (= security protocols) for the listeners kafka.sh names.
  local -A kname=([sasl]=SASL_PLAINTEXT [ssl]=SSL [sasl_ssl]=SASL_SSL)
  local listeners="PLAINTEXT://$bootstrap,CONTROLLER://127.0.0.1:$cport"
  local advertised="PLAINTEXT://$bootstrap"
  local protomap="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  for l in ${secure_listeners[@]+"${secure_listeners[@]}"}; do
    listeners+=",${kname[$l]}://127.0.0.1:${lport[$l]}"
    advertised+=",${kname[$l]}://127.0.0.1:${lport[$l]}"
    protomap+=",${kname[$l]}:${kname[$l]}"
  done
  local tls_dir=$STATE_DIR/tls
  if [[ " ${secure_listeners[*]} " == *" ssl "* ]]; then
    make_tls "$tls_dir" || {
      cat "$tls_dir/openssl.log" >&2 2>/dev/null
      fail_start "making the test certificates with openssl failed"
    }
  fi

  # Share groups (and their internal topic) exist in Kafka 4.x only.
  local share_cfg=""
  [[ $KAFKA_VERSION == 4.* ]] && share_cfg=$'share.coordinator.state.topic.replication.factor=1\nshare.coordinator.state.topic.min.isr=1\n'
  cat >"$STATE_DIR/server.properties" <<EOF
# Written by tests/e2e/kafka.sh: single-node KRaft (broker+controller) on loopback.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protomap
log.dirs=$STATE_DIR/data

# One broker: every internal topic must have replication factor 1.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
${share_cfg}num.partitions=1
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
  for l in ${secure_listeners[@]+"${secure_listeners[@]}"}; do
    secure_listener_config "$l" "$tls_dir" >>"$STATE_DIR/server.properties"
  done

  if ((LOG4J == 1)); then  # Kafka 3.x: log4j 1.x properties (reload4j)
    cat >"$STATE_DIR/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$STATE_DIR/logs/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
# The request logger is very chatty at DEBUG/TRACE; keep it quiet.
log4j.logger.kafka.request.logger=WARN, file
log4j.additivity.kafka.request.logger=false
EOF
  else
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
  fi

  local cluster_id scram=()
  cluster_id=$(random_cluster_id)
  echo "$cluster_id" >"$STATE_DIR/cluster.id"
  # SCRAM users live in the cluster metadata: written at format time (KRaft).
  if ((${#secure_listeners[@]})); then
    scram=(--add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]"
           --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]")
  fi
  if ! run_broker_class kafka.tools.StorageTool format -t "$cluster_id" \
        -c "$STATE_DIR/server.properties" ${scram[@]+"${scram[@]}"} \
        >"$STATE_DIR/format.out" 2>&1; then
    cat "$STATE_DIR/format.out" >&2
    fail_start "storage format failed"
  fi

  echo "$bootstrap" >"$STATE_DIR/bootstrap"
  for l in ${secure_listeners[@]+"${secure_listeners[@]}"}; do
    echo "127.0.0.1:${lport[$l]}" >"$STATE_DIR/bootstrap.$l"
  done
  launch_broker "$port"
}

# Starts the JVM on the formatted state dir and waits until it serves.
launch_broker() {
  local port=$1 bootstrap=127.0.0.1:$1
  local t0=$SECONDS log_opt=-Dlog4j2.configurationFile=$STATE_DIR/log4j2.properties
  ((LOG4J == 1)) && log_opt=-Dlog4j.configuration=file:$STATE_DIR/log4j.properties
  rm -f "$STATE_DIR/kafka.pid" # a kept state holds the previous JVM's pid
  # setsid: own session, so the caller's Ctrl-C / process-group kill does not
  # hit it; bash records its own pid and then execs java, so the pid file
  # holds the JVM's pid. All fds redirected so $(kafka.sh start) returns.
  # shellcheck disable=SC2016  # $$ and $@ expand in the inner bash
  setsid bash -c 'echo $$ >"$1/kafka.pid"; shift; exec "$@"' _ "$STATE_DIR" \
    "$JAVA" -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    "$log_opt" \
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
  # The broker binds all its listeners before it serves any, so the secure ones are
  # open by now; check (no JVM needed) so that a start never reports one it lacks.
  local l addr others=""
  for l in $(state_secure_listeners); do
    addr=$(bootstrap_addr "$l")
    until port_open "${addr##*:}"; do
      kill -0 "$launched" 2>/dev/null || fail_start "broker exited during startup"
      ((SECONDS < deadline)) || fail_start "$l listener $addr not open after ${START_TIMEOUT}s"
      sleep 0.1
    done
    others+=", $l $addr"
  done
  log "Kafka $KAFKA_VERSION broker pid $(cat "$STATE_DIR/kafka.pid") ready on $bootstrap$others in $((SECONDS - t0))s (state: $STATE_DIR)"
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
  local listener=plaintext
  while (($#)); do
    case $1 in
      --listener) listener=${2:?--listener needs a value}; shift 2 ;;
      --listener=*) listener=${1#*=}; shift ;;
      *) die "bootstrap: unknown argument '$1'" ;;
    esac
  done
  local name
  name=$(listener_name "$listener") ||
    die "bootstrap: unknown listener '$listener' (plaintext|sasl|ssl|sasl_ssl)"
  broker_pid >/dev/null || die "no broker running in $STATE_DIR"
  bootstrap_addr "$name" ||
    die "the broker in $STATE_DIR has no $name listener (started with --no-secure, or without openssl?)"
}

cmd_tls_dir() {
  [[ $# -eq 0 ]] || die "tls-dir: unknown argument '$1'"
  local d=$STATE_DIR/tls f
  for f in ca.pem client.pem client.key client-encrypted.key; do
    [[ -f $d/$f ]] || die "no TLS files in $STATE_DIR (no broker started there, or started with --no-secure / without openssl)"
  done
  echo "$d"
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
# --dir D and --kafka-version V may appear anywhere among a subcommand's arguments.
args=()
version=${KESM_KAFKA_VERSION:-}
while (($#)); do
  case $1 in
    --dir) STATE_DIR=${2:?--dir needs a value}; shift 2 ;;
    --dir=*) STATE_DIR=${1#*=}; shift ;;
    --kafka-version) version=${2:?--kafka-version needs a value}; shift 2 ;;
    --kafka-version=*) version=${1#*=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- ${args[@]+"${args[@]}"}
if [[ -n $version ]]; then
  select_kafka_version "$version"   # dies on an unsupported one
  KAFKA_VERSION_EXPLICIT=1
fi
# Default state dir: 4.4.0's as before; another version's has the version in its name.
if [[ -z $STATE_DIR ]]; then
  STATE_DIR=${KESM_KAFKA_DIR:-$REPO_ROOT/.cache/kafka-run}
  if [[ -z ${KESM_KAFKA_DIR:-} && -n $version && $version != "$DEFAULT_KAFKA_VERSION" ]]; then
    STATE_DIR=$REPO_ROOT/.cache/kafka-run-$version
  fi
fi
case $STATE_DIR in /*) ;; *) STATE_DIR=$PWD/$STATE_DIR ;; esac
STATE_DIR=${STATE_DIR%/}
[[ -d $STATE_DIR ]] && STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
# No version chosen: the one of the state dir's broker (so stop, status, topic-create,
# group-lag, run ... --dir D use its own tools), else the default.
if ((!KAFKA_VERSION_EXPLICIT)); then
  if [[ -f $STATE_DIR/$MARKER ]]; then select_kafka_version "$(state_version)"
  else select_kafka_version "$DEFAULT_KAFKA_VERSION"; fi
fi

case $sub in
  fetch) cmd_fetch ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  bootstrap) cmd_bootstrap "$@" ;;
  tls-dir) cmd_tls_dir "$@" ;;
  topic-create) cmd_topic_create "$@" ;;
  group-lag) cmd_group_lag "$@" ;;
  run) cmd_run "$@" ;;
  run-broker-class) ensure_libs; run_broker_class "$@" ;;
  version) [[ $# -eq 0 ]] || die "version: unknown argument '$1'"; echo "$KAFKA_VERSION" ;;
  -h|--help|help) usage ;;
  *) die "unknown subcommand '$sub' (fetch|start|stop|status|bootstrap|tls-dir|topic-create|group-lag|run|run-broker-class|version)" ;;
esac

#!/usr/bin/env bash
# tests/k8s/apiserver.sh -- a real Kubernetes API server (kube-apiserver + etcd, both
# built from the Go module proxy) on 127.0.0.1 for tests, started the way
# controller-runtime's envtest does: no kubelet, no controller-manager, no scheduler,
# so nothing runs pods; objects are stored, validated, admitted and authorised for real.
#
#   apiserver.sh setup [--dir D]   build D/bin/kube-apiserver, D/bin/etcd and D/bin/helm if missing
#                                  or stale (idempotent; cold, modules included: ~7.5 min
#                                  on 2 cores, 2.4 GB RSS peak; warm GOCACHE: ~10 s)
#   apiserver.sh download [--dir D]
#                                  only `go mod download` the modules setup builds from
#                                  (nothing when the binaries are built)
#   apiserver.sh start [--dir D]   setup, then fresh PKI + token file + SA keys, etcd and
#                                  kube-apiserver on free loopback ports; waits for
#                                  /readyz; prints shell assignments on stdout:
#                                    APISERVER_URL=https://127.0.0.1:PORT
#                                    APISERVER_TOKEN_FILE=D/run/admin.token
#                                    APISERVER_CA_FILE=D/run/pki/ca.pem
#                                    KUBECONFIG=D/run/kubeconfig
#                                    HELM=D/bin/helm
#                                  (so: eval "$(apiserver.sh start --dir D)")
#   apiserver.sh stop [--dir D]    SIGTERM both, wait, SIGKILL fallback, rm D/run
#                                  (binaries in D/bin are kept)
#   apiserver.sh status [--dir D]  "running URL apiserver pid N etcd pid M" (exit 0) / "stopped" (1)
#   apiserver.sh env [--dir D]     print the assignments of a running server again
#
# What is pinned, and where: tests/k8s/go.mod requires k8s.io/kubernetes at one
# release and replaces every k8s.io/* staging module (v0.0.0 + ./staging/src in
# Kubernetes' own go.mod) with the published v0.<minor>.<patch> of the same release;
# `tool k8s.io/kubernetes/cmd/kube-apiserver` keeps the command in the module graph.
# etcd is etcd's own main (tests/k8s/etcd/main.go -> go.etcd.io/etcd/server/v3/etcdmain)
# at the version Kubernetes pins (its go.mod; hack/lib/etcd.sh names the same one).
# Debian 12's etcd-server (3.4.x) is older than what this Kubernetes is tested with.
# The version ldflags (k8s.io/component-base/version and k8s.io/client-go/pkg/version:
# gitVersion, gitMajor, gitMinor) make GET /version answer like a release build, so
# clients (kubectl, helm) parse it.
#
# Authentication and authorisation:
#   - a static token file: the admin token (user "kesm-admin", group system:masters)
#     in D/run/admin.token; --authorization-mode=RBAC (RBAC decides for everyone
#     but system:masters, who are always allowed);
#   - service-account tokens: issuer https://kubernetes.default.svc.cluster.local,
#     signed with an RSA key made at start (D/run/pki/sa.key, sa.pub), so the
#     TokenRequest API (POST .../serviceaccounts/NAME/token) works;
#   - TLS: a test CA (D/run/pki/ca.pem) and a serving certificate for 127.0.0.1,
#     localhost and the in-cluster names (kubernetes.default.svc...), made with openssl;
#     the same CA verifies client certificates (--client-ca-file).
# --endpoint-reconciler-type=none: the "kubernetes" Service gets no endpoints (the
# reconciler refuses a loopback advertise address). Without a controller-manager: no default ServiceAccount per namespace (create them),
# no namespace finaliser (a deleted namespace stays Terminating), no garbage
# collection of ownerReferences, no Deployment -> ReplicaSet -> Pod.
#
# Clients: the kubeconfig works with kubectl (the polyglot image's google-cloud-cli ships
# kubectl 1.32.4: `kubectl version` parses the server as v1.37.2 and warns about the
# skew; `kubectl apply --server-side --dry-run=server --validate=strict` works). helm:
# D/bin/helm is `go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION` (helm's own go.mod,
# k8s.io/* v0.37.0; ~110 s with this module's caches warm); `helm lint --strict`,
# install --create-namespace, upgrade, list, uninstall of `helm create`'s chart all work
# against this server (no pods ever become ready: never use --wait).
# tests/k8s/smoke.sh shows every call the kesm tests need with curl alone.
#
# Go caches: GOMODCACHE and GOCACHE default to <repo>/.cache/go/{mod,build} (the
# repo's .gitignore ignores /.cache/), so a checkout keeps its own warm cache; set
# them in the environment to share another. Run builds under `nice` on a busy machine:
# children inherit it.
#
# Environment:
#   KESM_K8S_DIR            state dir (default <repo>/.cache/k8s); --dir wins
#   KESM_K8S_START_TIMEOUT  seconds to wait for etcd + /readyz (default 120)
#   KESM_K8S_VERSION_LDFLAG the gitVersion to stamp (default: the k8s.io/kubernetes
#                           version in go.mod)
#   GO                      which go to use (default: go on PATH; go.mod says go 1.26)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
GO=${GO:-go}
STATE_DIR=""
START_TIMEOUT=${KESM_K8S_START_TIMEOUT:-120}
STOP_TIMEOUT=30
MARKER=.kesm-k8s-state     # only run dirs holding this file are ever rm -rf'ed
HELM_VERSION=v3.22.0      # a helm.sh/helm/v3 release the Go module proxy serves
ADMIN_USER=kesm-admin
SA_ISSUER=https://kubernetes.default.svc.cluster.local
SERVICE_CIDR=10.0.0.0/24   # the "kubernetes" Service gets 10.0.0.1 (a name only: no proxy)

log() { echo "apiserver.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- setup (build)
k8s_version() {  # the k8s.io/kubernetes version go.mod requires, e.g. v1.37.2
  grep -oE '^[[:space:]]*(require[[:space:]]+)?k8s\.io/kubernetes v[0-9]+\.[0-9]+\.[0-9]+' \
    "$SCRIPT_DIR/go.mod" | head -1 | awk '{print $NF}'
}

ldflags() {
  local v=${KESM_K8S_VERSION_LDFLAG:-$(k8s_version)} major minor p out="-s -w"
  [[ $v =~ ^v([0-9]+)\.([0-9]+)\. ]] || die "cannot read the Kubernetes version from go.mod ('$v')"
  major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    out+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    out+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$out"
}

build_stamp() {
  { cat "$SCRIPT_DIR/go.mod" "$SCRIPT_DIR/go.sum" "$SCRIPT_DIR/etcd/main.go"
    ldflags; echo "helm $HELM_VERSION"; "$GO" env GOVERSION GOOS GOARCH; } | sha256sum | cut -d' ' -f1
}

bins_built() {
  [[ -x $BIN_DIR/kube-apiserver && -x $BIN_DIR/etcd && -x $BIN_DIR/helm && -f $BIN_DIR/build.stamp ]] &&
    [[ $(cat "$BIN_DIR/build.stamp") == "$(build_stamp)" ]]
}

go_env() {
  export GOMODCACHE=${GOMODCACHE:-$REPO_ROOT/.cache/go/mod}
  export GOCACHE=${GOCACHE:-$REPO_ROOT/.cache/go/build}
  export GOFLAGS="-modcacherw -buildvcs=false"   # writable cache: rm -rf .cache/go works
  export GOTOOLCHAIN=local
}

# The modules setup builds from (not helm's): network, little CPU, so scripts/prefetch.sh runs
# it at normal priority while the builds wait for idle CPU. Go locks its module cache itself.
cmd_download() {
  [[ $# -eq 0 ]] || die "download: unknown argument '$1'"
  command -v "$GO" >/dev/null || die "go not found (set GO=...)"
  if bins_built; then log "built: $BIN_DIR, nothing to download"; return 0; fi
  go_env
  local t0=$SECONDS
  (cd "$SCRIPT_DIR" && "$GO" mod download) || die "go mod download failed"
  log "modules downloaded in $((SECONDS - t0)) s ($(du -sh "$GOMODCACHE" | cut -f1) in $GOMODCACHE)"
}

cmd_setup() {
  [[ $# -eq 0 ]] || die "setup: unknown argument '$1'"
  command -v "$GO" >/dev/null || die "go not found (set GO=...)"
  if bins_built; then log "built: $BIN_DIR ($(k8s_version))"; return 0; fi
  mkdir -p "$BIN_DIR"
  exec 9>"$BIN_DIR/.build.lock"
  # shellcheck source=../../scripts/lock.sh
  . "$REPO_ROOT/scripts/lock.sh"
  kesm_lock 9 "$BIN_DIR/.build.lock" "the API server's build"
  if bins_built; then exec 9>&-; return 0; fi
  go_env
  local ld t0=$SECONDS
  ld=$(ldflags)
  rm -f "$BIN_DIR/build.stamp"
  log "building etcd, kube-apiserver $(k8s_version) and helm $HELM_VERSION -> $BIN_DIR (GOCACHE=$GOCACHE)"
  (cd "$SCRIPT_DIR" &&
    "$GO" build -mod=readonly -trimpath -ldflags "$ld" -o "$BIN_DIR/etcd.tmp" ./etcd &&
    "$GO" build -mod=readonly -trimpath -ldflags "$ld" -o "$BIN_DIR/kube-apiserver.tmp" \
      k8s.io/kubernetes/cmd/kube-apiserver) || die "go build failed"
  # helm from its own module graph (go install pkg@version ignores this go.mod).
  local gobin; gobin=$(mktemp -d "$BIN_DIR/helm.tmp.XXXXXX")
  (cd "$BIN_DIR" && GOBIN=$gobin "$GO" install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
      "helm.sh/helm/v3/cmd/helm@$HELM_VERSION") || { rm -rf "$gobin"; die "go install helm failed"; }
  mv "$gobin/helm" "$BIN_DIR/helm"; rmdir "$gobin"
  mv "$BIN_DIR/etcd.tmp" "$BIN_DIR/etcd"
  mv "$BIN_DIR/kube-apiserver.tmp" "$BIN_DIR/kube-apiserver"
  build_stamp >"$BIN_DIR/build.stamp"
  exec 9>&-
  log "built in $((SECONDS - t0))s: $("$BIN_DIR/kube-apiserver" --version), etcd $("$BIN_DIR/etcd" --version | sed -n 's/^etcd Version: //p'), helm $("$BIN_DIR/helm" version --short)"
}

# ---------------------------------------------------------------- helpers
free_ports() {  # N distinct free TCP ports on 127.0.0.1
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

proc_pid() {  # proc_pid NAME: pid of our NAME (etcd|kube-apiserver) if alive
  local f=$RUN_DIR/$1.pid pid
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  # Guard against pid reuse: its command line must name our run dir.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$RUN_DIR/" || return 1
  echo "$pid"
}

launch() {  # launch NAME ARGV...: own session, pid file, output to RUN_DIR/logs/NAME.log
  local name=$1; shift
  # shellcheck disable=SC2016  # $$ expands in the inner bash, which then execs
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$RUN_DIR/$name.pid" "$@" \
    </dev/null >"$RUN_DIR/logs/$name.log" 2>&1 &
  local _
  for _ in $(seq 50); do [[ -s $RUN_DIR/$name.pid ]] && return 0; sleep 0.1; done
  fail_start "$name wrote no pid file"
}

fail_start() {
  log "error: $*"
  local n
  for n in kube-apiserver etcd; do
    [[ -f $RUN_DIR/logs/$n.log ]] || continue
    log "--- last lines of $RUN_DIR/logs/$n.log"
    tail -n 20 "$RUN_DIR/logs/$n.log" >&2
  done
  stop_procs
  log "state left in $RUN_DIR for a look (stop removes it)"
  exit 1
}

# make_pki DIR: CA, serving cert (127.0.0.1, localhost, in-cluster names), an
# admin client cert (CN=kesm-admin, O=system:masters) and the service-account key pair.
make_pki() {
  local d=$1
  mkdir -p "$d"; chmod 700 "$d"
  cat >"$d/openssl.cnf" <<'EOF'
# Written by tests/k8s/apiserver.sh (test certificates; never use outside tests).
[req]
distinguished_name = req_dn
prompt = no
[req_dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:10.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  local cnf=$d/openssl.cnf days=3650 ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  {
    openssl req -config "$cnf" -x509 "${ec[@]}" -sha256 -days "$days" \
      -subj "/O=kesm tests/CN=kesm test kubernetes CA" -extensions ca_ext \
      -keyout "$d/ca.key" -out "$d/ca.pem" &&
    openssl req -config "$cnf" -new "${ec[@]}" -subj "/CN=kube-apiserver" \
      -keyout "$d/apiserver.key" -out "$d/apiserver.csr" &&
    openssl x509 -req -in "$d/apiserver.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
      -set_serial "0x$(openssl rand -hex 12)" -sha256 -days "$days" \
      -extfile "$cnf" -extensions server_ext -out "$d/apiserver.pem" &&
    openssl req -config "$cnf" -new "${ec[@]}" -subj "/O=system:masters/CN=$ADMIN_USER" \
      -keyout "$d/admin.key" -out "$d/admin.csr" &&
    openssl x509 -req -in "$d/admin.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
      -set_serial "0x$(openssl rand -hex 12)" -sha256 -days "$days" \
      -extfile "$cnf" -extensions client_ext -out "$d/admin.pem" &&
    # Service-account token signing key: RSA, as kube-controller-manager/envtest use.
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/sa.key" &&
    openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub"
  } 2>>"$d/openssl.log"
}

write_env() {
  cat >"$RUN_DIR/env" <<EOF
APISERVER_URL=$(cat "$RUN_DIR/url")
APISERVER_TOKEN_FILE=$RUN_DIR/admin.token
APISERVER_CA_FILE=$RUN_DIR/pki/ca.pem
KUBECONFIG=$RUN_DIR/kubeconfig
HELM=$BIN_DIR/helm
EOF
}

# ---------------------------------------------------------------- start
cmd_start() {
  [[ $# -eq 0 ]] || die "start: unknown argument '$1'"
  command -v openssl >/dev/null || die "openssl not found"
  command -v curl >/dev/null || die "curl not found"
  if proc_pid kube-apiserver >/dev/null; then
    log "already running on $(cat "$RUN_DIR/url")"
    cat "$RUN_DIR/env"; return 0
  fi
  cmd_setup
  if [[ -d $RUN_DIR ]]; then
    [[ -f $RUN_DIR/$MARKER ]] || [[ -z $(ls -A "$RUN_DIR") ]] ||
      die "$RUN_DIR exists and is not an apiserver.sh run dir; refusing to reuse it"
    stop_procs
    rm -rf "$RUN_DIR"
  fi
  mkdir -p "$RUN_DIR/logs" "$RUN_DIR/etcd"
  chmod 700 "$RUN_DIR/etcd"
  touch "$RUN_DIR/$MARKER"
  local t0=$SECONDS deadline=$((SECONDS + START_TIMEOUT))

  make_pki "$RUN_DIR/pki" || { cat "$RUN_DIR/pki/openssl.log" >&2; fail_start "openssl failed"; }
  local token
  token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf '%s' "$token" >"$RUN_DIR/admin.token"
  chmod 600 "$RUN_DIR/admin.token"
  # token,user,uid,"group1,group2"
  echo "$token,$ADMIN_USER,$ADMIN_USER,\"system:masters\"" >"$RUN_DIR/tokens.csv"
  chmod 600 "$RUN_DIR/tokens.csv"

  local ports etcd_port peer_port api_port
  read -r etcd_port peer_port api_port <<<"$(free_ports 3)"
  [[ -n $api_port ]] || fail_start "could not find 3 free ports"
  local url=https://127.0.0.1:$api_port
  echo "$url" >"$RUN_DIR/url"
  echo "http://127.0.0.1:$etcd_port" >"$RUN_DIR/etcd.url"

  # etcd: one member, loopback only, plain HTTP (loopback; envtest does the same),
  # no fsync (test data only).
  launch etcd "$BIN_DIR/etcd" \
    --name=kesm-test --data-dir="$RUN_DIR/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" \
    --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="kesm-test=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync=true --log-outputs=stderr --log-level=warn
  local etcd_pid; etcd_pid=$(cat "$RUN_DIR/etcd.pid")
  until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$etcd_port/health" 2>/dev/null; do
    kill -0 "$etcd_pid" 2>/dev/null || fail_start "etcd exited during startup"
    ((SECONDS < deadline)) || fail_start "etcd not healthy after ${START_TIMEOUT}s"
    sleep 0.2
  done
  local t_etcd=$((SECONDS - t0))

  local pki=$RUN_DIR/pki
  launch kube-apiserver "$BIN_DIR/kube-apiserver" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --tls-cert-file="$pki/apiserver.pem" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.pem" \
    --token-auth-file="$RUN_DIR/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-issuer="$SA_ISSUER" \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --allow-privileged=true \
    --endpoint-reconciler-type=none \
    --profiling=false \
    --v=1
  local api_pid; api_pid=$(cat "$RUN_DIR/kube-apiserver.pid")
  # Ready = GET /readyz answers 200 "ok" with the admin token (every post-start hook,
  # RBAC bootstrap roles included, has run).
  until [[ $(curl -sS --max-time 5 --cacert "$pki/ca.pem" -H "Authorization: Bearer $token" \
               "$url/readyz" 2>/dev/null) == ok ]]; do
    kill -0 "$api_pid" 2>/dev/null || fail_start "kube-apiserver exited during startup"
    ((SECONDS < deadline)) || fail_start "kube-apiserver not ready after ${START_TIMEOUT}s"
    sleep 0.3
  done

  cat >"$RUN_DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kesm-test
  cluster:
    server: $url
    certificate-authority: $pki/ca.pem
users:
- name: $ADMIN_USER
  user:
    tokenFile: $RUN_DIR/admin.token
contexts:
- name: kesm-test
  context: {cluster: kesm-test, user: $ADMIN_USER}
current-context: kesm-test
EOF
  chmod 600 "$RUN_DIR/kubeconfig"
  write_env
  log "kube-apiserver pid $api_pid ready on $url in $((SECONDS - t0))s (etcd pid $etcd_pid on 127.0.0.1:$etcd_port, healthy after ${t_etcd}s; state: $RUN_DIR)"
  cat "$RUN_DIR/env"
}

# ---------------------------------------------------------------- stop / status
stop_one() {
  local pid
  pid=$(proc_pid "$1") || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$1 pid $pid still alive after ${STOP_TIMEOUT}s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  log "stopped $1 pid $pid"
}

stop_procs() { stop_one kube-apiserver; stop_one etcd; }

cmd_stop() {
  [[ $# -eq 0 ]] || die "stop: unknown argument '$1'"
  [[ -d $RUN_DIR ]] || { log "not running"; return 0; }
  stop_procs
  if [[ -f $RUN_DIR/$MARKER ]]; then rm -rf "$RUN_DIR"
  else log "warning: $RUN_DIR is not an apiserver.sh run dir; left in place"; fi
}

cmd_status() {
  [[ $# -eq 0 ]] || die "status: unknown argument '$1'"
  local api etcd
  if api=$(proc_pid kube-apiserver) && etcd=$(proc_pid etcd); then
    echo "running $(cat "$RUN_DIR/url") apiserver pid $api etcd pid $etcd"
  else
    echo "stopped"; return 1
  fi
}

cmd_env() {
  [[ $# -eq 0 ]] || die "env: unknown argument '$1'"
  proc_pid kube-apiserver >/dev/null || die "no kube-apiserver running in $RUN_DIR"
  cat "$RUN_DIR/env"
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

# ---------------------------------------------------------------- main
(($#)) || usage
sub=$1; shift
args=()
while (($#)); do
  case $1 in
    --dir) STATE_DIR=${2:?--dir needs a value}; shift 2 ;;
    --dir=*) STATE_DIR=${1#*=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- ${args[@]+"${args[@]}"}
STATE_DIR=${STATE_DIR:-${KESM_K8S_DIR:-$REPO_ROOT/.cache/k8s}}
case $STATE_DIR in /*) ;; *) STATE_DIR=$PWD/$STATE_DIR ;; esac
STATE_DIR=${STATE_DIR%/}
mkdir -p "$STATE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
BIN_DIR=$STATE_DIR/bin
RUN_DIR=$STATE_DIR/run

case $sub in
  download) cmd_download "$@" ;;
  setup) cmd_setup "$@" ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  env) cmd_env "$@" ;;
  -h|--help|help) usage ;;
  *) die "unknown subcommand '$sub' (download|setup|start|stop|status|env)" ;;
esac

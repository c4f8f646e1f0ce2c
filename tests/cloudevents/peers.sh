#!/usr/bin/env bash
# tests/cloudevents/peers.sh -- the real CloudEvents peers of kesm's cloudEvents tests:
#
#   peers.sh setup [--dir D]   build D/bin/cloudevents-sink (sink/, the CloudEvents Go SDK from
#                              the Go module proxy) and install Google's Functions Framework
#                              (functions_framework/requirements.txt, PyPI) into D/venv;
#                              idempotent, cheap when nothing changed
#
# D defaults to <repo>/.cache/cloudevents. Needs go (>= the go line of sink/go.mod) and
# python3 with venv (Debian: python3-venv). Go modules and build results go to
# <repo>/.cache/go/{mod,build} unless GOMODCACHE/GOCACHE say otherwise. One setup at a time:
# the ctest fixture and scripts/prefetch.sh (scripts/prefetch.list) may run it together.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
DIR=$REPO_ROOT/.cache/cloudevents

log() { echo "peers.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

setup_sink() {
  command -v go >/dev/null || die "go not found on PATH"
  mkdir -p "$DIR/bin"
  export GOMODCACHE=${GOMODCACHE:-$REPO_ROOT/.cache/go/mod}
  export GOCACHE=${GOCACHE:-$REPO_ROOT/.cache/go/build}
  # GOTOOLCHAIN=local: never fetch another Go; -mod=readonly: go.mod and go.sum are the pins.
  # go build is incremental (GOCACHE): a second setup takes a second.
  (cd "$SCRIPT_DIR/sink" && GOTOOLCHAIN=local GOFLAGS="-mod=readonly -modcacherw" \
    go build -o "$DIR/bin/cloudevents-sink.tmp" .) ||
    die "go build of the CloudEvents sink failed (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
  mv "$DIR/bin/cloudevents-sink.tmp" "$DIR/bin/cloudevents-sink"
  log "ready: $DIR/bin/cloudevents-sink ($(grep 'cloudevents/sdk-go/v2 ' "$SCRIPT_DIR/sink/go.mod" | xargs))"
}

setup_functions_framework() {
  local req=$SCRIPT_DIR/functions_framework/requirements.txt
  # shellcheck source=../../scripts/venv.sh
  . "$REPO_ROOT/scripts/venv.sh"
  kesm_venv "$DIR/venv" "$req" || die "cannot set up $DIR/venv"
  log "ready: $(grep '^functions-framework==' "$req") ($(grep -c '==' "$req") pinned packages) in $DIR/venv"
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

[[ $# -ge 1 ]] || usage
command=$1
shift
while [[ $# -gt 0 ]]; do
  case $1 in
  --dir) DIR=$2; shift 2 ;;
  *) usage ;;
  esac
done
case $command in
setup)
  mkdir -p "$DIR"
  exec 9>"$DIR/.setup.lock"
  # shellcheck source=../../scripts/lock.sh
  . "$REPO_ROOT/scripts/lock.sh"
  kesm_lock 9 "$DIR/.setup.lock" "the CloudEvents peers' setup"
  setup_sink
  setup_functions_framework
  ;;
*) usage ;;
esac

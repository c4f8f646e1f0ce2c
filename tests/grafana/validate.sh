#!/usr/bin/env bash
# tests/grafana/validate.sh -- build and run the strict Grafana dashboard validator
# (tests/grafana/validate: a Go program on the Grafana Foundation SDK, its own module
# kesm.test/grafana). The binary is cached as .cache/grafana/validate-<key>, the key a hash of
# the module's go.mod, go.sum, *.go and the Go version, so only a change rebuilds it
# (cold: modules from the Go module proxy and a compile, minutes; warm: milliseconds).
#
#   validate.sh build          build the binary if missing; print its path
#   validate.sh run [ARGS...]  build if missing, then exec it with ARGS, e.g.
#                              validate.sh run -docs docs/operations.md deploy/grafana/kesm.json
#
# Environment:
#   GOMODCACHE, GOCACHE     default to <repo>/.cache/go/{mod,build} (as tests/k8s/apiserver.sh)
#   KESM_GRAFANA_CACHE      where the binary goes (default <repo>/.cache/grafana)
#   GO                      which go to use (default: go on PATH)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
SRC=$SCRIPT_DIR/validate
GO=${GO:-go}
CACHE=${KESM_GRAFANA_CACHE:-$REPO_ROOT/.cache/grafana}

die() { echo "validate.sh: $*" >&2; exit 2; }

binary_path() {
  local key
  key=$( (cat "$SRC/go.mod" "$SRC/go.sum" "$SRC"/*.go; "$GO" version) | sha256sum | cut -c1-16)
  echo "$CACHE/validate-$key"
}

build() {
  command -v "$GO" >/dev/null || die "go not found (set GO=...)"
  local bin; bin=$(binary_path)
  [[ -x $bin ]] && { echo "$bin"; return 0; }
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.build.lock"
  # shellcheck source=../../scripts/lock.sh
  . "$REPO_ROOT/scripts/lock.sh"
  kesm_lock 9 "$CACHE/.build.lock" "the dashboard validator's build"
  if [[ ! -x $bin ]]; then
    export GOMODCACHE=${GOMODCACHE:-$REPO_ROOT/.cache/go/mod}
    export GOCACHE=${GOCACHE:-$REPO_ROOT/.cache/go/build}
    export GOFLAGS="-modcacherw -buildvcs=false"
    export GOTOOLCHAIN=local
    local t0=$SECONDS
    (cd "$SRC" && "$GO" build -mod=readonly -trimpath -o "$bin.tmp" .) || die "go build failed"
    mv "$bin.tmp" "$bin"
    # Older builds are of no further use.
    find "$CACHE" -maxdepth 1 -name 'validate-*' ! -path "$bin" -delete
    echo "validate.sh: built $bin in $((SECONDS - t0)) s" >&2
  fi
  exec 9>&-
  echo "$bin"
}

[[ $# -ge 1 ]] || die "usage: validate.sh build | run [ARGS...]"
cmd=$1; shift
case $cmd in
  build) [[ $# -eq 0 ]] || die "build takes no argument"; build ;;
  run) bin=$(build); exec "$bin" "$@" ;;
  *) die "unknown command '$cmd' (build | run)" ;;
esac

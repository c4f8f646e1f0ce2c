#!/usr/bin/env bash
# tests/e2e/lambda/runtimes.sh -- the real AWS Lambda runtimes of the e2e suite
# (tests/e2e/lambda_runtimes_e2e_test.cc), built from package registries into a cache:
#
#   runtimes.sh setup [--dir D]   build / install what is missing or out of date (idempotent)
#   runtimes.sh check [--dir D]   exit 0 when everything is in place, else say what is not
#
# What goes into D (default <repo>/.cache/lambda, or KESM_LAMBDA_DIR):
#   bin/aws-lambda-rie   the AWS Lambda Runtime Interface Emulator, `go install`ed from the
#                        Go module proxy at a pinned pseudo-version (the module has no tags)
#   bin/kesm-go-handler  tests/e2e/lambda/go-handler (aws-lambda-go, pinned in its go.sum)
#   venv/                python3 -m venv with tests/e2e/lambda/python/requirements.txt
#                        (awslambdaric, aws-lambda-powertools, every package pinned)
# Go modules and build results go to Go's own caches (GOMODCACHE, GOCACHE), so a second
# setup takes a second or two. Needs go >= 1.26.6 (the emulator's go.mod) and python3
# with venv (Debian: python3-venv).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../../.." && pwd)
RIE_MODULE=github.com/aws/aws-lambda-runtime-interface-emulator
RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d
GO_MIN=1.26.6
DIR=${KESM_LAMBDA_DIR:-$REPO_ROOT/.cache/lambda}

log() { echo "runtimes.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# version_ge A B: A >= B for dotted versions.
version_ge() { [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1) == "$2" ]]; }

need_go() {
  command -v go >/dev/null || die "go not found on PATH (Go >= $GO_MIN builds the Lambda emulator)"
  local v
  v=$(go env GOVERSION) || die "'go env GOVERSION' failed"
  v=${v#go}
  version_ge "$v" "$GO_MIN" || die "go $v is too old: the Lambda emulator needs Go >= $GO_MIN"
}

python_bin() { echo "$DIR/venv/bin/python"; }

setup_rie() {
  local stamp=$DIR/bin/aws-lambda-rie.version
  if [[ -x $DIR/bin/aws-lambda-rie && $(cat "$stamp" 2>/dev/null) == "$RIE_VERSION" ]]; then
    return 0
  fi
  log "building $RIE_MODULE@$RIE_VERSION (first time: about a minute)"
  # GOTOOLCHAIN=local: never fetch another Go toolchain; GOFLAGS=-mod=mod: a module install.
  GOBIN=$DIR/bin GOTOOLCHAIN=local GOFLAGS=-mod=mod \
    go install "$RIE_MODULE/cmd/aws-lambda-rie@$RIE_VERSION" ||
    die "go install of the Lambda Runtime Interface Emulator failed (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
  echo "$RIE_VERSION" >"$stamp"
}

setup_go_handler() {
  # go build is incremental (GOCACHE): cheap when nothing changed. -mod=readonly: go.mod and
  # go.sum are the pins, never rewritten here.
  (cd "$SCRIPT_DIR/go-handler" &&
    GOTOOLCHAIN=local GOFLAGS=-mod=readonly go build -o "$DIR/bin/kesm-go-handler" .) ||
    die "building tests/e2e/lambda/go-handler failed"
}

setup_venv() {
  # shellcheck source=../../../scripts/venv.sh
  . "$REPO_ROOT/scripts/venv.sh"
  kesm_venv "$DIR/venv" "$SCRIPT_DIR/python/requirements.txt" || die "cannot set up $DIR/venv"
}

cmd_setup() {
  mkdir -p "$DIR/bin"
  # One setup at a time (the fixture and scripts/prefetch.sh may run together): the second
  # waits here, then finds everything in place.
  exec 9>"$DIR/.setup.lock"
  flock 9
  need_go
  setup_rie
  setup_go_handler
  setup_venv
  exec 9>&-
  cmd_check
}

cmd_check() {
  local missing=()
  [[ -x $DIR/bin/aws-lambda-rie ]] || missing+=("bin/aws-lambda-rie")
  [[ -x $DIR/bin/kesm-go-handler ]] || missing+=("bin/kesm-go-handler")
  "$(python_bin)" -c 'import awslambdaric, aws_lambda_powertools' 2>/dev/null ||
    missing+=("venv with awslambdaric and aws-lambda-powertools")
  ((${#missing[@]} == 0)) || die "missing in $DIR: ${missing[*]} (run: $0 setup)"
  log "ready in $DIR: aws-lambda-rie $RIE_VERSION, kesm-go-handler, venv ($("$(python_bin)" --version))"
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

(($#)) || usage
sub=$1; shift
while (($#)); do
  case $1 in
    --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
    --dir=*) DIR=${1#*=}; shift ;;
    *) die "unknown argument '$1'" ;;
  esac
done
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
case $sub in
  setup) cmd_setup ;;
  check) cmd_check ;;
  -h|--help|help) usage ;;
  *) die "unknown subcommand '$sub' (setup|check)" ;;
esac

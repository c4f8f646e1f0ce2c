#!/usr/bin/env bash
# tests/aws/moto.sh -- moto's server as the AWS peer of kesm's awsLambda tests (ctest "aws: ..."):
#
#   moto.sh setup [--dir D]   install the pinned moto[server] + boto3 (moto-requirements.txt)
#                             into D/venv from PyPI (idempotent)
#   moto.sh start [--dir D]   start moto_server on a free loopback port with signature checking
#                             on (INITIAL_NO_AUTH_ACTION_COUNT=3) and request recording, then
#                             provision it (moto_lambda.py: IAM user + key, role, function with
#                             alias "live", assumed-role session credentials); writes
#                             D/run/state.json (endpoint, credentials, names) and D/run/pid
#   moto.sh stop [--dir D]    stop the server started by start
#
# D defaults to <repo>/.cache/moto. Needs python3 with venv (Debian: python3-venv).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
DIR=$REPO_ROOT/.cache/moto

log() { echo "moto.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

python_bin() { echo "$DIR/venv/bin/python"; }

cmd_setup() {
  mkdir -p "$DIR"
  exec 9>"$DIR/.setup.lock"
  # shellcheck source=../../scripts/lock.sh
  . "$REPO_ROOT/scripts/lock.sh"
  kesm_lock 9 "$DIR/.setup.lock" "the moto venv"
  # shellcheck source=../../scripts/venv.sh
  . "$REPO_ROOT/scripts/venv.sh"
  kesm_venv "$DIR/venv" "$SCRIPT_DIR/moto-requirements.txt" || die "cannot set up $DIR/venv"
  log "ready: $("$(python_bin)" -c 'import moto; print("moto", moto.__version__)') in $DIR/venv"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cmd_start() {
  [[ -x $DIR/venv/bin/moto_server ]] || die "no moto in $DIR/venv (run: $0 setup --dir $DIR)"
  cmd_stop 2>/dev/null || true
  mkdir -p "$DIR/run"
  rm -f "$DIR/run/state.json" "$DIR/run/recording"
  local port endpoint pid deadline
  port=$(free_port)
  endpoint=http://127.0.0.1:$port
  # A new session: stop kills the whole group (moto_server forks nothing, but be sure).
  INITIAL_NO_AUTH_ACTION_COUNT=3 MOTO_ENABLE_RECORDING=True \
    MOTO_RECORDER_FILEPATH="$DIR/run/recording" \
    setsid "$DIR/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$DIR/run/moto.log" 2>&1 &
  pid=$!
  echo "$pid" >"$DIR/run/pid"
  deadline=$((SECONDS + 60))
  until "$(python_bin)" -c "import urllib.request,sys; urllib.request.urlopen('$endpoint/moto-api/', timeout=2)" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || die "moto_server exited: $(tail -5 "$DIR/run/moto.log")"
    ((SECONDS < deadline)) || die "moto_server not answering on $endpoint after 60 s"
    sleep 0.2
  done
  "$(python_bin)" "$SCRIPT_DIR/moto_lambda.py" provision "$endpoint" "$DIR/run/state.json" ||
    die "provisioning moto failed (server log: $DIR/run/moto.log)"
  log "moto_server $("$(python_bin)" -c 'import moto; print(moto.__version__)') on $endpoint (pid $pid), state in $DIR/run/state.json"
}

cmd_stop() {
  local pid
  [[ -f $DIR/run/pid ]] || return 0
  pid=$(cat "$DIR/run/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/run/pid"
  log "stopped"
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

(($#)) || usage
sub=$1; shift
while (($#)); do
  case $1 in
    --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
case $sub in
  setup) cmd_setup ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  -h|--help|help) usage ;;
  *) die "unknown subcommand '$sub' (setup|start|stop)" ;;
esac

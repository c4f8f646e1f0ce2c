#!/usr/bin/env bash
# tests/aws/botocore.sh -- kesm's SigV4 signer against botocore itself (ctest "aws: ..."):
#
#   botocore.sh setup [--dir D]                 install the pinned botocore (requirements.txt)
#                                               into D/venv from PyPI (idempotent)
#   botocore.sh compare [--dir D] --signer BIN  sign tests/aws/sigv4_cases.json with botocore's
#                                               SigV4Auth (botocore_sign.py) and with BIN
#                                               (kesm_sigv4_sign); any byte of difference fails
#
# D defaults to <repo>/.cache/botocore. Needs python3 with venv (Debian: python3-venv).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
DIR=$REPO_ROOT/.cache/botocore
SIGNER=
CASES=$SCRIPT_DIR/sigv4_cases.json

log() { echo "botocore.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

python_bin() { echo "$DIR/venv/bin/python"; }

cmd_setup() {
  mkdir -p "$DIR"
  exec 9>"$DIR/.setup.lock"
  # shellcheck source=../../scripts/lock.sh
  . "$REPO_ROOT/scripts/lock.sh"
  kesm_lock 9 "$DIR/.setup.lock" "the botocore venv"
  # shellcheck source=../../scripts/venv.sh
  . "$REPO_ROOT/scripts/venv.sh"
  kesm_venv "$DIR/venv" "$SCRIPT_DIR/requirements.txt" || die "cannot set up $DIR/venv"
  log "ready: $("$(python_bin)" -c 'import botocore; print("botocore", botocore.__version__)') in $DIR/venv"
}

cmd_compare() {
  [[ -n $SIGNER ]] || die "compare needs --signer BIN (kesm_sigv4_sign)"
  [[ -x $(python_bin) ]] || die "no venv in $DIR (run: $0 setup --dir $DIR)"
  local cases
  tmp=$(mktemp -d) # global: the EXIT trap runs after this function returned
  trap 'rm -rf "$tmp"' EXIT
  "$(python_bin)" "$SCRIPT_DIR/botocore_sign.py" "$CASES" >"$tmp/botocore.txt" ||
    die "botocore_sign.py failed"
  "$SIGNER" "$CASES" >"$tmp/kesm.txt" || die "$SIGNER failed"
  cases=$(grep -c '^== ' "$tmp/botocore.txt" || true)
  ((cases > 0)) || die "botocore signed no case"
  if ! diff -u --label botocore --label kesm "$tmp/botocore.txt" "$tmp/kesm.txt"; then
    die "kesm's SigV4 differs from botocore's (diff above: - botocore, + kesm)"
  fi
  log "$cases cases: Authorization, X-Amz-Date, X-Amz-Security-Token and canonical request" \
    "identical to botocore $("$(python_bin)" -c 'import botocore; print(botocore.__version__)')"
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

(($#)) || usage
sub=$1; shift
while (($#)); do
  case $1 in
    --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
    --signer) SIGNER=${2:?--signer needs a value}; shift 2 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
case $sub in
  setup) cmd_setup ;;
  compare) cmd_compare ;;
  -h|--help|help) usage ;;
  *) die "unknown subcommand '$sub' (setup|compare)" ;;
esac

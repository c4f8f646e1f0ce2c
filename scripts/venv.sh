# scripts/venv.sh -- sourced by the test rig's fixture scripts (bash; no `set` of its own).
# Usage:
#
#   kesm_venv VENV REQUIREMENTS || die "..."
#
# Makes VENV a Python venv holding exactly the pins of REQUIREMENTS (a pip requirements file),
# rebuilt only when REQUIREMENTS changed since it was built (a copy is kept in the venv).
# Says on stderr what it installs, and why it failed (returning 1). Callers hold their cache's
# lock (scripts/lock.sh): the prefetch and a fixture may set up the same venv at once.
kesm_venv() {
  local venv=$1 req=$2
  local stamp=$venv/kesm-requirements.txt
  if [[ -x $venv/bin/python ]] && cmp -s "$req" "$stamp"; then
    return 0
  fi
  if ! command -v python3 >/dev/null; then
    echo "python3 not found on PATH" >&2
    return 1
  fi
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  if ! python3 -m venv "$venv"; then
    echo "python3 -m venv failed (Debian: apt-get install python3-venv; scripts/install-deps.sh does)" >&2
    return 1
  fi
  echo "installing $(grep -c '==' "$req") pinned Python packages into $venv" >&2
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --require-virtualenv -r "$req"; then
    echo "pip install -r $req failed (is PyPI reachable?)" >&2
    return 1
  fi
  cp "$req" "$stamp"
}

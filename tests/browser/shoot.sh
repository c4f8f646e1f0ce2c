#!/usr/bin/env bash
# Saves a PNG screenshot of a page with headless Chromium (Debian's `chromium`).
#
# usage: tests/browser/shoot.sh URL OUT.png [WIDTH HEIGHT [WAIT_MS]]
#   WIDTH x HEIGHT: the window (default 1280 x 800); WAIT_MS: virtual time the page's scripts
#   get before the shot (default 3000), e.g. for its first fetches to come back.
# Only loopback is reachable (every host name resolves to nothing), with a throwaway profile.
# CHROMIUM overrides the binary. Exits non-zero when no PNG was written.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 5 ]]; then
  sed -n '2,8p' "$0" >&2
  exit 2
fi
url=$1
out=$2
width=${3:-1280}
height=${4:-800}
wait_ms=${5:-3000}
chromium=${CHROMIUM:-chromium}

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$out"
# --no-sandbox: Chromium refuses to start as root otherwise (the test rig runs as root).
timeout 60 "$chromium" --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
  --user-data-dir="$profile" --no-first-run --no-default-browser-check \
  --disable-background-networking --disable-component-update --disable-sync \
  --host-resolver-rules='MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost, EXCLUDE [::1]' \
  --window-size="$width,$height" --virtual-time-budget="$wait_ms" \
  --screenshot="$out" "$url" >"$profile/chromium.log" 2>&1 || {
  cat "$profile/chromium.log" >&2
  exit 1
}
if [[ ! -s "$out" ]]; then
  cat "$profile/chromium.log" >&2
  echo "shoot.sh: no screenshot written to $out" >&2
  exit 1
fi
echo "$out"

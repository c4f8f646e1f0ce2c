#!/usr/bin/env bash
# scripts/prefetch.sh -- runs the slow setup steps of the ctest fixtures (downloads, the Go
# builds of the API server and the test tools, the image build: scripts/prefetch.list) in the
# background while `make test` compiles the C++, so that the fixtures find them done.
#
#   prefetch.sh start DIR   start `run` in the background unless one runs already; its
#                           output goes to DIR/prefetch.log, its pid to DIR/prefetch.pid
#   prefetch.sh run DIR     run every step of scripts/prefetch.list in order (foreground);
#                           one line per step in DIR/prefetch.status: NAME ok|FAILED RC SECONDS
#   prefetch.sh wait DIR    wait for the background run to end; print one line per step;
#                           exit 1 if a step failed (its log lines are printed too)
#
# Why it cannot weaken a test: each step is the fixture's own command (or the part of it that
# builds), idempotent, holding a flock in its cache while it builds. A fixture that ctest
# reaches while its step runs waits on that lock, then finds the result; a step that failed
# left nothing, so its fixture does the work again and fails in ctest's output if it fails.
# Priority, per step (the list's second column): `net` steps (downloads: they wait on the
# network and need little CPU) run at normal priority, so they finish during the compile;
# `cpu` steps (the builds) run at SCHED_IDLE (chrt --idle; else nice 19), inherited by every
# child (go, podman and the compile in the image), so they only take CPU time that the C++
# build and the tests leave idle. PREFETCH=0 (make test PREFETCH=0) skips it all.
# KESM_PREFETCH_LIST: another list (default scripts/prefetch.list).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIST=${KESM_PREFETCH_LIST:-$ROOT/scripts/prefetch.list}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}
log() { echo "prefetch.sh: $*" >&2; }

alive() {  # the pid of DIR/prefetch.pid runs, and is a prefetch (not a reused pid)
  [[ -f $1/prefetch.pid ]] && tr '\0' ' ' <"/proc/$(cat "$1/prefetch.pid")/cmdline" 2>/dev/null | grep -q 'prefetch.sh run'
}

cmd_start() {
  local dir=$1
  mkdir -p "$dir"
  if alive "$dir"; then
    log "already running (pid $(cat "$dir/prefetch.pid")); log: $dir/prefetch.log"
    return 0
  fi
  rm -f "$dir/prefetch.status"
  "$0" run "$dir" >"$dir/prefetch.log" 2>&1 </dev/null &
  echo $! >"$dir/prefetch.pid"
  log "started (pid $!): $(grep -cv '^\s*\(#\|$\)' "$LIST") steps of ${LIST#"$ROOT"/}; log: $dir/prefetch.log"
}

idle_prefix() {  # the command prefix of a `cpu` step
  local prio=(nice -n 19)
  if chrt --idle 0 true 2>/dev/null; then prio=(chrt --idle 0); fi
  if ionice -c 3 true 2>/dev/null; then prio+=(ionice -c 3); fi
  echo "${prio[*]}"
}

cmd_run() {
  local dir=$1 name kind cmd t0 rc prefix idle
  mkdir -p "$dir"
  : >"$dir/prefetch.status"
  cd "$ROOT"
  idle=$(idle_prefix)
  while read -r name kind cmd; do
    [[ -z $name || $name == \#* ]] && continue
    case $kind in
    net) prefix="" ;;
    cpu) prefix=$idle ;;
    *) echo "== prefetch $name: unknown kind '$kind' (net|cpu) in $LIST" >&2; exit 2 ;;
    esac
    echo "== prefetch $name: ${prefix:+$prefix }$cmd ($(date -u +%T) UTC)"
    t0=$SECONDS
    rc=0
    # shellcheck disable=SC2086 # the list's commands are split on blanks, by design
    $prefix $cmd </dev/null || rc=$?
    if ((rc == 0)); then
      echo "$name ok 0 $((SECONDS - t0))" >>"$dir/prefetch.status"
      echo "== prefetch $name: ok in $((SECONDS - t0)) s"
    else
      echo "$name FAILED $rc $((SECONDS - t0))" >>"$dir/prefetch.status"
      echo "== prefetch $name: FAILED (exit $rc) after $((SECONDS - t0)) s"
    fi
  done <"$LIST"
  echo "== prefetch done ($(date -u +%T) UTC)"
}

cmd_wait() {
  local dir=$1 t0=$SECONDS
  [[ -f $dir/prefetch.pid ]] || { log "not started in $dir"; return 0; }
  while alive "$dir"; do sleep 1; done
  ((SECONDS - t0 < 2)) || log "waited $((SECONDS - t0)) s for the prefetch"
  local name state rc secs failed=0
  while read -r name state rc secs; do
    if [[ $state == ok ]]; then
      log "$name: ok in $secs s"
    else
      failed=1
      log "$name: FAILED (exit $rc after $secs s); its fixture ran it again in ctest. Its log:"
      sed -n "/^== prefetch $name: /,/^== prefetch $name: FAILED/p" "$dir/prefetch.log" | tail -n 40 >&2
    fi
  done <"$dir/prefetch.status"
  grep -q '^== prefetch done' "$dir/prefetch.log" || { failed=1; log "FAILED: the prefetch did not finish (killed?); log: $dir/prefetch.log"; }
  return $failed
}

(($# == 2)) || usage
case $1 in
start) cmd_start "$2" ;;
run) cmd_run "$2" ;;
wait) cmd_wait "$2" ;;
*) usage ;;
esac

# scripts/lock.sh -- sourced by the fixture scripts that scripts/prefetch.sh runs at SCHED_IDLE
# (bash; no `set` of its own). Usage:
#
#   exec 9>"$CACHE/.build.lock"; kesm_lock 9 "$CACHE/.build.lock" "what it builds"
#
# flock FD, as `flock 9` would; but when another process holds the lock (the prefetch, at
# SCHED_IDLE), first raise that process and its children to normal priority: a fixture that
# waits for a build must not wait on a build that only gets the CPU nobody else wants (on a
# busy machine that can be none at all). Says on stderr whom it waits for.
kesm_lock() {
  local fd=$1 file=$2 what=${3:-$2}
  flock -n "$fd" && return 0
  local real holders="" pids pid link t0=$SECONDS
  real=$(readlink -f "$file")
  # The holders: every other process with the lock file open (the `flock` command that took
  # the lock has exited; the script that ran it and its children keep the descriptor).
  local lockfd=$fd  # closed for find: it must not count itself
  for link in $(find /proc/[0-9]*/fd -maxdepth 1 -lname "$real" 2>/dev/null {lockfd}>&-); do
    pid=${link#/proc/}; pid=${pid%%/*}
    [[ $pid == "$$" || $pid == "$BASHPID" ]] || holders+=" $pid"
  done
  if [[ -n $holders ]]; then
    pids=$(ps -e -o pid=,ppid= | awk -v roots="$holders" '
      { parent[$1] = $2 } END {
        n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1
        changed = 1
        while (changed) { changed = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 } }
        for (p in keep) print p }')
    for pid in $pids; do  # every thread (Go's are many): chrt -a; renice and ionice per thread
      chrt -a --other -p 0 "$pid" >/dev/null 2>&1 || true
      for link in /proc/"$pid"/task/*; do
        renice -n 0 -p "${link##*/}" >/dev/null 2>&1 || true
        ionice -c 2 -n 4 -p "${link##*/}" >/dev/null 2>&1 || true
      done
    done
    pid=${holders# }; pid=${pid%% *}
    echo "waiting for pid$holders ($(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | cut -c1-100)) to finish $what; raised $(wc -w <<<"$pids") processes to normal priority" >&2
  fi
  flock "$fd"
  echo "waited $((SECONDS - t0)) s for $what" >&2
}

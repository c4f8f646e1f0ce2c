#!/usr/bin/env bash
# Usage: bench/scaling_sim_check.sh PATH/TO/kesm_scaling_sim
#
# Checks what docs/benchmarks.md says of the scaling simulator's pods model (issue 17) on
# aws-burst: the kesm rows with the decision's ceil(P / maxConcurrentBatches) pollers when one
# slot cannot carry one partition (20 here, never 100), the KEDA + HPA row, one verdict line per
# channel, the goal met at the defaults and with maximumPollers 20; and that no record is lost
# or committed twice when a stopping pod abandons its batches.
# Deterministic: the simulator's figures are identical on every run and machine.
set -euo pipefail

sim=${1:?usage: $0 PATH/TO/kesm_scaling_sim}
failures=0

expect() { # expect NAME TEXT PATTERN: the fixed string PATTERN is a line of TEXT
  if ! grep -qxF -- "$3" <<<"$2"; then
    echo "FAIL: $1: no line: $3" >&2
    failures=$((failures + 1))
  fi
}

count() { # count NAME TEXT REGEX N: exactly N lines of TEXT match REGEX
  local n
  n=$(grep -cE -- "$3" <<<"$2" || true)
  if [[ "$n" != "$4" ]]; then
    echo "FAIL: $1: $n lines match '$3', expected $4" >&2
    failures=$((failures + 1))
  fi
}

out=$("$sim" --trace aws-burst)
expect "threads, eval 1 s" "$out" \
  '| kesm-threads (eval 1 s) | 23.5 s (bound +3.5 s) | never | 23.5 s | 1,601 | 20 | 2 |'
expect "threads, eval 5 s" "$out" \
  '| kesm-threads (eval 5 s, default) | 25.4 s (bound +5.4 s) | never | 25.4 s | 1,705 | 20 | 6 |'
expect "pods, ideal" "$out" \
  '| kesm-pods (start 10 s, ideal stats) | 34.9 s (bound +14.9 s) | never | 34.9 s | 1,905 | 20 | 6 |'
expect "pods, offsets only" "$out" \
  '| kesm-pods (start 10 s, offsets only) | 34.9 s (bound +14.9 s) | never | 34.9 s | 1,905 | 20 | 6 |'
expect "KEDA + HPA" "$out" \
  '| KEDA + HPA (pods, start 10 s, 15 s sync, lagThreshold 10) | 102.5 s (bound +82.5 s) | 95.5 s | 102.5 s | 33,835 | 100 | 7 |'
count "a verdict per channel" "$out" '^verdict: kesm-pods \(start 10 s, .*Goal (MET|MISSED)\.$' 4
count "met at the defaults" "$out" '^verdict: .*drain 34\.9 s against 35\.0 s.*Goal MET\.$' 4

what_if=$("$sim" --trace aws-burst --kesm-max-pollers 20)
count "met with maximumPollers 20" "$what_if" '^verdict: .*drain 34\.9 s against 35\.0 s.*Goal MET\.$' 4

# The SIGTERM path's abandon branch: with no grace period every batch in flight at a scale-down
# is abandoned and fetched again. The simulator aborts if a record was lost or counted twice
# (checkRecords); every spike must still drain.
if ! abandoned=$("$sim" --trace diurnal-spiky --grace-period 0s); then
  echo "FAIL: --grace-period 0s: the simulator failed (a record lost or committed twice?)" >&2
  failures=$((failures + 1))
else
  count "abandoned batches are fetched again" "$abandoned" 'not drained' 0
  count "pods rows with no grace period" "$abandoned" '^\| kesm-pods \(start 10 s, ' 4
  # Pods leave at once instead of after their batches: 64,725 poller-seconds, not 64,729.
  count "stopping pods left at once" "$abandoned" '^\| kesm-pods .*\| 64,725 \| 7 \| 40 \|$' 3
fi

if ((failures > 0)); then
  echo "$failures check(s) failed; the simulator's output:" >&2
  printf '%s\n' "$out" >&2
  exit 1
fi
echo "scaling_sim pods model: all checks passed"

#!/usr/bin/env bash
# Usage: bench/drain_pods_check.sh options PATH/TO/kesm_drain
#        bench/drain_pods_check.sh smoke PATH/TO/kesm_drain PATH/TO/kesm
#
# Checks bench/drain's pods mode (issue 17, docs/benchmarks.md "Pods mode at 100 pollers").
#   options: the command line refuses what pods mode cannot run (exit 2, with the reason):
#            a scaling range, a --pollers-per-pod that does not divide the pollers, other
#            scenarios, --pollers-per-pod without --mode pods, an unknown mode; --help lists
#            both options. Nothing is started.
#   smoke:   4 `kesm poller` processes of one poller each drain 4,000 records on 4 partitions of
#            librdkafka's mock cluster: every record delivered, none out of partition order,
#            4 processes, every poller owned a partition, every process exited 0 on SIGTERM.
set -euo pipefail

mode=${1:?usage: $0 options|smoke PATH/TO/kesm_drain [PATH/TO/kesm]}
drain=${2:?usage: $0 options|smoke PATH/TO/kesm_drain [PATH/TO/kesm]}
failures=0

refused() { # refused REASON_FRAGMENT ARGS...: exit 2 and REASON_FRAGMENT on stderr
  local want=$1 rc=0 err
  shift
  err=$("$drain" "$@" 2>&1 >/dev/null) || rc=$?
  if [[ $rc != 2 || $err != *"$want"* ]]; then
    echo "FAIL: kesm_drain $*: exit $rc, stderr '$err'; expected exit 2 and '$want'" >&2
    failures=$((failures + 1))
  fi
}

if [[ $mode == options ]]; then
  refused "fixed number of pollers" --mode pods --min-pollers 1 --max-pollers 100
  refused "does not divide --max-pollers 10" --mode pods --min-pollers 10 --max-pollers 10 \
    --pollers-per-pod 4
  refused "drain and throughput scenarios only" --mode pods --scenario latency
  refused "needs --mode pods" --pollers-per-pod 2
  refused "is not inprocess or pods" --mode threads
  refused "is not an integer in 1..64" --mode pods --pollers-per-pod 65
  help=$("$drain" --help)
  for opt in "--mode inprocess|pods" "--pollers-per-pod K"; do
    if [[ $help != *"$opt"* ]]; then
      echo "FAIL: --help does not list $opt" >&2
      failures=$((failures + 1))
    fi
  done
elif [[ $mode == smoke ]]; then
  kesm=${3:?usage: $0 smoke PATH/TO/kesm_drain PATH/TO/kesm}
  work=$(mktemp -d /tmp/kesm-drain-pods-check.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  rc=0
  "$drain" --backend mock --mode pods --records 4000 --record-bytes 256 --partitions 4 \
    --batch-size 100 --latency 10ms --min-pollers 4 --max-pollers 4 --kesm "$kesm" \
    --work-dir "$work" --timeout 2m --json >"$work/report.json" 2>"$work/stderr" || rc=$?
  if [[ $rc != 0 ]]; then
    echo "FAIL: kesm_drain exited $rc" >&2
    tail -n 40 "$work/stderr" >&2
    tail -n 20 "$work"/pod-*.log >&2 || true
    failures=$((failures + 1))
  fi
  python3 - "$work/report.json" <<'EOF' || failures=$((failures + 1))
import json, sys
r = json.load(open(sys.argv[1]))
want = {"mode": "pods", "drained": "yes", "processes": 4, "records_expected": 4000,
        "records_delivered_distinct": 4000, "records_missing": 0, "order_violations": 0,
        "kesm_exit_code_after_SIGTERM": "0 x4"}
bad = [f"{k}: {r.get(k)!r}, expected {v!r}" for k, v in want.items() if r.get(k) != v]
if r.get("all_pollers_assigned_s") is None:
    bad.append("all_pollers_assigned_s is null: the 4 pollers never each owned a partition")
if not r.get("kesm_cpu_s_at_drained") or not r.get("kesm_pss_MB_at_end"):
    bad.append("no CPU or memory figure for the pods")
for b in bad:
    print("FAIL: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
else
  echo "usage: $0 options|smoke PATH/TO/kesm_drain [PATH/TO/kesm]" >&2
  exit 2
fi

if [[ $failures -gt 0 ]]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "ok"

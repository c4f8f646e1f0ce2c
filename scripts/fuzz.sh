#!/usr/bin/env bash
# Builds kesm's libFuzzer targets (fuzz/) with clang, ASan and UBSan, and runs each one for
# SECONDS (default 180), all at once, one core each. Exits non-zero on any finding: a crash,
# an abort of a harness check, a leak, undefined behaviour, a timeout or running out of memory.
#
#   scripts/fuzz.sh [SECONDS]        (make fuzz FUZZ_SECONDS=600)
#
# Seeds come from fuzz/corpus/<target>/ and fuzz/regressions/<target>/ (read only); inputs
# the fuzzer finds go to build-fuzz/corpus/<target>/ and findings to
# build-fuzz/findings/<target>/. Logs: build-fuzz/fuzz-<target>.log. See docs/fuzzing.md.
set -euo pipefail

SECONDS_PER_TARGET="${1:-180}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${FUZZ_BUILD:-$ROOT/build-fuzz}"
JOBS="${JOBS:-2}"
TARGETS=(config payload)
CLANG_VERSION=14

"$ROOT/scripts/install-deps.sh" fuzz

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKESM_FUZZ=ON -DKESM_WERROR=ON \
  -DCMAKE_CXX_COMPILER="clang++-$CLANG_VERSION" \
  >/dev/null
build_targets=()
for t in "${TARGETS[@]}"; do
  build_targets+=("kesm_fuzz_$t")
done
cmake --build "$BUILD" -j "$JOBS" --target "${build_targets[@]}"

# Symbolized stacks in reports; leaks are findings; UBSan reports abort (also compiled in).
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$(command -v "llvm-symbolizer-$CLANG_VERSION" || true)}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

pids=()
for t in "${TARGETS[@]}"; do
  mkdir -p "$BUILD/corpus/$t" "$BUILD/findings/$t"
  seeds=("$ROOT/fuzz/corpus/$t")
  if [ -d "$ROOT/fuzz/regressions/$t" ]; then
    seeds+=("$ROOT/fuzz/regressions/$t")
  fi
  extra=()
  if [ -f "$ROOT/fuzz/$t.dict" ]; then
    extra+=("-dict=$ROOT/fuzz/$t.dict")
  fi
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s (log: $BUILD/fuzz-$t.log)"
  "$BUILD/fuzz/kesm_fuzz_$t" "$BUILD/corpus/$t" "${seeds[@]}" "${extra[@]}" \
    -max_total_time="$SECONDS_PER_TARGET" -detect_leaks=1 -timeout=30 -rss_limit_mb=2048 \
    -max_len=16384 -print_final_stats=1 -artifact_prefix="$BUILD/findings/$t/" \
    >"$BUILD/fuzz-$t.log" 2>&1 &
  pids+=($!)
done

failed=0
for i in "${!TARGETS[@]}"; do
  t="${TARGETS[$i]}"
  if wait "${pids[$i]}"; then
    status="no findings"
  else
    status="FINDING (exit $?)"
    failed=1
  fi
  log="$BUILD/fuzz-$t.log"
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)"
  speed="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)"
  corpus="$(find "$BUILD/corpus/$t" -type f | wc -l)"
  echo "fuzz: $t: $status; ${execs:-?} executions, ${speed:-?} exec/s, corpus $corpus files"
  if [ "$status" != "no findings" ]; then
    grep -E 'ERROR|SUMMARY|payload_fuzz:|config_fuzz:|Test unit written' "$log" | head -20 || true
  fi
done
exit "$failed"

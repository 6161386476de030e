#!/usr/bin/env bash
# Build the libFuzzer targets of tests/fuzz with clang, ASan and UBSan, and
# run each for a bounded time (issue 7).
#
#   scripts/fuzz.sh [--build DIR] [--seconds N] [--seeds] [--replay] [TARGET...]
#
#   --build DIR   build directory (default build-fuzz)
#   --seconds N   fuzzing time per target (default $FUZZ_SECONDS or 20)
#   --seeds       regenerate tests/fuzz/corpus from real messages and files
#                 first (fuzz-seedgen; needs ../shared/data)
#   --replay      only run every committed corpus file once (no fuzzing)
#   TARGET        fuzz_req fuzz_resp fuzz_vecfile fuzz_contract fuzz_jsonl
#                 fuzz_npy (default: all)
#
# Each target starts from its committed seeds (tests/fuzz/corpus/TARGET,
# which also holds the inputs of past findings, so they are replayed on
# every run) and keeps what it discovers in DIR/fuzz-corpus/TARGET; the
# repository is never written to. A crash, a leak, a sanitizer report or a
# broken invariant stops that target, leaves the input in
# DIR/fuzz-artifacts/TARGET/ and makes the script exit 1. The last lines
# are a summary: executions, corpus size and result per target.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=build-fuzz
seconds=${FUZZ_SECONDS:-20}
seeds=0
replay=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --seeds) seeds=1; shift ;;
    --replay) replay=1; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
case "$build" in /*) ;; *) build="$root/$build" ;; esac
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$root"/tests/fuzz/fuzz_*.c; do
    targets+=("$(basename "$f" .c)")
  done
fi

command -v clang >/dev/null || { echo "fuzz.sh: clang is missing (scripts/install-deps.sh)" >&2; exit 1; }
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DANCHORAGE_FUZZ=ON -DANCHORAGE_SANITIZE=ON -DANCHORAGE_TESTS=OFF >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target "${targets[@]}"

if [ $seeds -eq 1 ]; then
  cmake --build "$build" -j"${JOBS:-2}" --target fuzz-seedgen
  data=${ANC_DATA_DIR:-$root/../shared/data}
  ASAN_OPTIONS=detect_leaks=1 "$build/fuzz-seedgen" "$root/tests/fuzz/corpus" "$data" "$root"
fi

export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
summary=()
status=0
for t in "${targets[@]}"; do
  seed="$root/tests/fuzz/corpus/$t"
  work="$build/fuzz-corpus/$t"
  art="$build/fuzz-artifacts/$t"
  log="$build/fuzz-$t.log"
  mkdir -p "$seed" "$work" "$art"
  if [ $replay -eq 1 ]; then
    args=(-runs=0 "$seed")
  else
    args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
          -print_final_stats=1 "$work" "$seed")
  fi
  echo "fuzz.sh: $t (${seconds}s)" >&2
  if "$build/$t" -artifact_prefix="$art/" "${args[@]}" >"$log" 2>&1; then
    result=ok
  else
    result="FAILED (see $log, input in $art/)"
    status=1
    grep -E "invariant broken|ERROR:|runtime error|SUMMARY" "$log" | head -5 >&2 || true
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
  corpus=$(find "$work" "$seed" -type f | wc -l)
  summary+=("$(printf '%-14s %12s execs  %6s inputs  %s' "$t" "${execs:-?}" "$corpus" "$result")")
done
echo "fuzz.sh summary (${seconds}s per target, ASan+UBSan):"
printf '  %s\n' "${summary[@]}"
exit $status

#!/usr/bin/env bash
# Builds the fuzz targets with clang's libFuzzer (+ AddressSanitizer and UBSan) and runs each
# for SECONDS (default 60), PARALLEL at a time (default 1), seeded with fuzz/corpus/<target>.
# New inputs go to build-fuzz/corpus/<target>; crashes, leaks and timeouts to
# build-fuzz/findings/. Prints executions and findings per target; exits 1 if anything was found.
# A finding, once fixed, goes into fuzz/corpus/<target>/ as a regression input (ctest replays
# every corpus in the normal build, label fuzz).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
parallel="${PARALLEL:-1}"
build="${FUZZ_BUILD_DIR:-build-fuzz}"

command -v clang++ >/dev/null || { echo "fuzz: clang is not installed (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGHOSTWATCH_FUZZ=ON \
  -DGHOSTWATCH_SANITIZE=ON -DGHOSTWATCH_BUILD_TESTS=OFF >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  # shellcheck disable=SC2207
  targets=($(sed -n 's/^set(GHOSTWATCH_FUZZ_TARGETS \(.*\))$/\1/p' CMakeLists.txt))
fi
cmake --build "$build" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null
mkdir -p "$build/findings"

run_one() {
  local t=$1 log="$build/fuzz-$1.log"
  mkdir -p "$build/corpus/$t"
  local dict=()
  [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
    "${dict[@]}" -artifact_prefix="$build/findings/$t-" "$build/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1 || true
  local execs findings
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  findings=$(find "$build/findings" -name "$t-*" | wc -l)
  printf 'fuzz: %-12s %6ss  %12s executions  %s findings\n' "$t" "$seconds" "${execs:-?}" "$findings"
}

pids=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$parallel" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
wait
found=$(find "$build/findings" -type f | wc -l)
[ "$found" -eq 0 ] || { echo "fuzz: $found findings in $build/findings/"; exit 1; }

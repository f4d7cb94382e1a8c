#!/usr/bin/env bash
# Installs what is missing, builds, starts a sandbox of real servers, runs every test, tears the
# sandbox down. Exits non-zero on any failure. What CI runs (.ci/run):
#
#   1. the release build: unit, alert (promtool), fuzz-corpus, integration and fault tests, the
#      sandbox script's own tests (tests/sandbox/*_test.sh: an `up` killed halfway, a terminal
#      closed under the demo, MASTER_DELAY held under load), then the Debian package end to end
#      (scripts/package-check.sh, as root), the container image run against the sandbox
#      (scripts/image-check.sh, as root), the documentation site (mkdocs build --strict) and the
#      Kubernetes manifests against the API's schemas (scripts/k8s-check.sh);
#   2. AddressSanitizer + UBSan build: the unit, fuzz-corpus, integration and fault tests again
#      (but four long scenarios, named below), any sanitizer report failing its test;
#   3. ThreadSanitizer build: the unit tests (the threaded probe and scheduler against fakes).
# The sanitizer builds compile only what their tests run, as unity builds (CMAKE_UNITY_BUILD:
# a few sources per compiler run, so the headers are parsed once per batch): a fresh machine
# spent 18 of CI's 53 minutes compiling the ASan build file by file. The release build stays one
# file per compiler run, so that each file is checked to include what it uses.
#
#   scripts/test.sh           all of it
#   scripts/test.sh --fast    step 1 only
#
# The test sandbox uses its own directory and ports (PostgreSQL 26432-26434, MariaDB
# 26306-26307, the rest up to 26473 with the Patroni cluster), so a demo sandbox can run beside it. They lie below the
# ephemeral port range (32768-60999): no client socket can hold one when a server binds it.
set -euo pipefail
cd "$(dirname "$0")/.."
fast=0
[ "${1:-}" = --fast ] && fast=1

scripts/install-deps.sh

build() {  # build DIR [cmake flags...] [-- targets...]
  local dir=$1; shift
  local flags=() targets=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done
  [ "${1:-}" = -- ] && { shift; targets=("$@"); }
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGHOSTWATCH_WERROR=ON "${flags[@]}" >/dev/null
  if [ ${#targets[@]} -gt 0 ]; then
    cmake --build "$dir" -j"$(nproc)" --target "${targets[@]}"
  else
    cmake --build "$dir" -j"$(nproc)"
  fi
}

stage_started=$SECONDS
stage_times=()
stage_done() { stage_times+=("$1: $((SECONDS - stage_started)) s"); stage_started=$SECONDS; }

build build
stage_done "install and release build"
# The ASan build right away, its tests later: a unity build fails where two sources define the
# same name in their anonymous namespaces, and that should stop CI in minutes, not after the
# release tests. The container image (from the release build's package) is built meanwhile: its
# base's download and unpacking wait mostly on the network and the disk, not on the two cores
# the compiler keeps busy. Never beside tests: timing tests would feel it.
image_build=
if [ $fast = 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    scripts/image.sh build >build/image-build.log 2>&1 &
    image_build=$!
  fi
  build build-asan -DGHOSTWATCH_SANITIZE=ON -DCMAKE_UNITY_BUILD=ON -- ghostwatch_tests
  stage_done "ASan build"
  if [ -n "$image_build" ]; then
    if wait "$image_build"; then
      export GHOSTWATCH_IMAGE=$(tail -1 build/image-build.log)
    else
      echo "the image build failed (scripts/image-check.sh builds it again and says why):"
      tail -5 build/image-build.log
    fi
  fi
fi

export GHOSTWATCH_SANDBOX_DIR="${TMPDIR:-/tmp}/ghostwatch-test-sandbox"
export GW_PG_PORT_PRIMARY=26432 GW_MARIA_PORT_PRIMARY=26306
scripts/sandbox.sh down >/dev/null 2>&1 || true
trap 'scripts/sandbox.sh down >/dev/null 2>&1' EXIT
scripts/sandbox.sh up --pg-delay-ms 200 --maria-delay-s 1 --patroni --tls >/dev/null
# shellcheck disable=SC1091
source "$GHOSTWATCH_SANDBOX_DIR/env.sh"

export GHOSTWATCH_REQUIRE_SANDBOX=1
figures="$PWD/build/test-figures.txt"
export GHOSTWATCH_FIGURES_FILE="$figures"
rm -f "$figures"
status=0
verdicts=()
digests=()
run_ctest() {  # NAME DIR [ctest args...]
  local name=$1 dir=$2; shift 2
  local rc=0
  ctest --test-dir "$dir" --output-on-failure --no-tests=error "$@" | tee "$dir/ctest.log" || rc=$?
  [ $rc -eq 0 ] || { status=1; digests+=("$(failure_digest "$name" "$dir/ctest.log")"); }
  verdicts+=("$name: $(grep -E '^[0-9]+% tests passed' "$dir/ctest.log" || echo "ctest exited $rc")")
}

# What each failed test said, in a few lines, for the end of the log: a long log is often read
# only at its head and tail, and a failure in a late stage would otherwise be out of sight.
failure_digest() {  # NAME CTEST_LOG
  echo "--- $1: why the failed tests failed ---"
  awk '/\*\*\*(Failed|Timeout|Exception)/ { print; next }
       /: Failure$|^(==[0-9]+==)?ERROR: |runtime error: |WARNING: ThreadSanitizer|^Value of: |^Expected|^  Actual: |^Which is: / { print "    " $0; left = 3; next }
       left > 0 { print "    " $0; left-- }' "$2" | head -n 120
}

# No agent outlives its test; one that did would write canaries and hold ports under the next
# stage's tests. Named and stopped here, so the next stage starts clean.
stop_strays() {  # STAGE
  local pid exe strays=()
  for pid in $(pgrep -f 'ghostwatch (run|probe)|cache_pipeline|canary_http_server|tcp_relay' || true); do
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
    [[ $exe == "$PWD"/* ]] || continue  # this checkout's builds only, not an agent run by hand
    strays+=("$pid")
    echo "stray process after $1 (stopped): $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
  done
  [ ${#strays[@]} -eq 0 ] || kill -KILL "${strays[@]}" 2>/dev/null || true
}

echo "=== 1. release build: every test ==="
run_ctest release build
stop_strays "the release tests"
stage_done "release tests"
# The sandbox script itself, each test on a sandbox of its own but master_delay_test (this one).
for t in tests/sandbox/*_test.sh; do
  echo "--- $t ---"
  if "$t"; then verdicts+=("$t: passed"); else status=1; verdicts+=("$t: FAILED"); fi
done
stage_done "sandbox script tests"
# The Debian package: built, linted, installed, its unit's ExecStart run against the sandbox, purged.
echo "--- scripts/package-check.sh (the .deb end to end) ---"
if [ "$(id -u)" -eq 0 ]; then
  if scripts/package-check.sh build; then verdicts+=("package: passed"); else status=1; verdicts+=("package: FAILED"); fi
  stop_strays "the package check"
else
  echo "(skipped: installing a package needs root)"
fi
stage_done "package check"
# The container image: built from the package, run against the sandbox as a non-root user with a
# read-only root filesystem (needs root: rootful podman with the host's network).
echo "--- scripts/image-check.sh (the container image end to end) ---"
if [ "$(id -u)" -eq 0 ]; then
  if scripts/image-check.sh build; then verdicts+=("image: passed"); else status=1; verdicts+=("image: FAILED"); fi
else
  echo "(skipped: rootful podman needs root)"
fi
stage_done "image check"
# The documentation site: a broken link, a page missing from the nav or a nav entry without its
# page fails the build (strict).
echo "--- mkdocs build --strict (the documentation site) ---"
if mkdocs build --strict --quiet; then verdicts+=("docs site: passed"); else status=1; verdicts+=("docs site: FAILED"); fi
stage_done "docs site"
echo "--- scripts/k8s-check.sh (the Kubernetes manifests against the API's schemas) ---"
if scripts/k8s-check.sh; then verdicts+=("kubernetes manifests: passed"); else status=1; verdicts+=("kubernetes manifests: FAILED"); fi
stage_done "kubernetes manifests"

if [ $fast = 0 ]; then
  # Any report fails: UBSan stops at the first error, LeakSanitizer's exit code fails the
  # process that leaked (tests check the agent's exit code).
  export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  unset GHOSTWATCH_FIGURES_FILE  # the figures on record are the release build's
  echo "=== 2. AddressSanitizer + UBSan: unit, fuzz corpora, integration, faults ==="
  # Long scenarios run in the release stage only: each spends 20-40 s waiting on servers (random
  # writes against an apply delay, a Prometheus evaluating every dashboard query and alert, a
  # password planted in every place, reads through HAProxy at every delay) along code paths the
  # other sanitized tests cover; what they add is accuracy and content, which the release stage
  # checks.
  long_scenarios='^(PositionMode\.PostgresIsWithinItsResolutionOfTheApplyDelayAtRandomWrites'
  long_scenarios+='|WithPrometheus\.EveryDashboardQueryHasDataAndTheStalledAlertFiresAndClears'
  long_scenarios+='|Secrets\.APlantedPasswordAppearsNowhere'
  long_scenarios+='|ReadYourWrites\.ThroughHaproxyAndRoundRobinReplicasWithADeadPathBeside)$'
  run_ctest asan+ubsan build-asan -L 'unit|fuzz|integration|faults' -E "$long_scenarios"
  stop_strays "the sanitizer tests"
  stage_done "ASan tests"
  echo "=== 3. ThreadSanitizer: unit tests ==="
  build build-tsan -DGHOSTWATCH_TSAN=ON -DCMAKE_UNITY_BUILD=ON -- ghostwatch_unit_tests
  run_ctest tsan build-tsan -L unit
  stage_done "TSan build and tests"
fi

if [ -s "$figures" ]; then
  echo "--- figures measured by the integration tests (release build) ---"
  cat "$figures"
fi
# A benchmark, not a test: its figures are printed for the record and never fail the run.
echo "--- bench/reconcile_bench 20000 3 (reconciler vs one GET + one SELECT per key, alternating) ---"
build/bench/reconcile_bench 20000 3 || echo "(the benchmark did not complete)"
build/bench/read_schedule_bench 3 3 || echo "(the benchmark did not complete)"
echo "--- bench/poll_cost --tls 3 1 10 (the agent's CPU per poll against a blocking libpq client, in the clear and over TLS) ---"
build/bench/poll_cost --tls 3 1 10 || echo "(the benchmark did not complete)"
echo "--- bench/poll_cost --mysql --scrape-every 1000 3 1 10 (the same against the MariaDB connector's blocking client, scraped every second) ---"
build/bench/poll_cost --mysql --scrape-every 1000 3 1 10 || echo "(the benchmark did not complete)"
echo "--- bench/render_bench 1000 5 (one /metrics render at 1000 targets, plain and gzip) ---"
build/bench/render_bench 1000 5 || echo "(the benchmark did not complete)"
echo "--- bench/heartbeat_compare.sh 5 1 (pt-heartbeat beside ghostwatch on the MASTER_DELAY replica) ---"
bench/heartbeat_compare.sh 5 1 || echo "(the benchmark did not complete)"
echo "--- bench/promises.sh 10 (pgpool-II, synchronous_commit, semi-sync: a smoke run; docs/guides/promises.md's table is 200) ---"
bench/promises.sh 10 || { status=1; verdicts+=("bench/promises.sh: FAILED"); }
echo "--- bench/footprint.sh 3 (what the agent costs the databases: statements, CPU, WAL and binlog bytes beside pt-heartbeat, the canary table; a smoke run) ---"
timeout 300 bench/footprint.sh 3 || echo "(the benchmark did not complete)"
echo "--- bench/canary_table.sh 300 2 (the canary table under canaries every 10 ms: a smoke run; the long run is a million) ---"
timeout 120 bench/canary_table.sh 300 2 || echo "(the benchmark did not complete)"
echo "--- bench/peers.sh 3 (postgres_exporter, mysqld_exporter, pt-heartbeat beside ghostwatch: a smoke run) ---"
bench/peers.sh 3 || { status=1; verdicts+=("bench/peers.sh: FAILED"); }
stage_done "benchmarks"
echo "--- time per stage ---"
printf '%s\n' "${stage_times[@]}"
# The failures' reasons, then the verdicts, last, where CI looks for them.
[ ${#digests[@]} -eq 0 ] || printf '%s\n' "${digests[@]}"
printf '%s\n' "${verdicts[@]}"
exit $status

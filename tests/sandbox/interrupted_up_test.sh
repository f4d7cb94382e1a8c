#!/usr/bin/env bash
# A `sandbox.sh up` killed at each slow stage (a replica's pg_basebackup, MariaDB's
# mariadb-install-db) must leave the next `up` working, and `down` must leave no process of the
# sandbox behind. The script is killed with SIGKILL, the harshest end (a closed terminal, a CI
# timeout): nothing of its own can clean up, only the next run.
#
#   tests/sandbox/interrupted_up_test.sh     (its own directory and ports: PostgreSQL 24432-24434, MariaDB 24306-24307, the rest up to 24457)
set -euo pipefail
cd "$(dirname "$0")/../.."
export GHOSTWATCH_SANDBOX_DIR="${TMPDIR:-/tmp}/ghostwatch-interrupt-test"
export GW_PG_PORT_PRIMARY=24432 GW_MARIA_PORT_PRIMARY=24306
dir=$GHOSTWATCH_SANDBOX_DIR
fail() { echo "FAIL: $*" >&2; scripts/sandbox.sh down >/dev/null 2>&1 || true; exit 1; }
leftovers() { pgrep -fa -- "$dir/" | grep -v "interrupted_up_test" || true; }

scripts/sandbox.sh down >/dev/null 2>&1 || true
trap 'scripts/sandbox.sh down >/dev/null 2>&1 || true' EXIT

for stage in "pg_basebackup.*$dir/pg-replica-1" "mariadbd.*--bootstrap|mariadb-install-db.*$dir/maria-primary"; do
  scripts/sandbox.sh up >"$dir.up.log" 2>&1 &
  up=$!
  seen=0
  for _ in $(seq 1 1500); do
    if pgrep -f -- "$stage" >/dev/null; then seen=1; break; fi
    kill -0 "$up" 2>/dev/null || break
    sleep 0.02
  done
  [ $seen = 1 ] || fail "up never reached the stage '$stage' (log: $dir.up.log)"
  kill -KILL "$up"
  wait "$up" 2>/dev/null || true
  echo "killed up during '$stage'; left running: $(leftovers | awk '{print $2}' | xargs -r -n1 basename | sort | uniq -c | xargs)"
  scripts/sandbox.sh up >"$dir.up.log" 2>&1 || fail "the next up failed: $(tail -3 "$dir.up.log")"
  scripts/sandbox.sh status >/dev/null || fail "after the next up not every server runs: $(scripts/sandbox.sh status)"
  echo "the next up: every server running ($(grep -c 'starting it over\|interrupted run' "$dir.up.log" || true) leftovers handled)"
  scripts/sandbox.sh down >/dev/null
  left=$(leftovers)
  [ -z "$left" ] || fail "down left processes of the sandbox: $left"
done
# A server whose pid file is gone (removed by hand, or a crash between start and pid file):
# down still stops it, found by the sandbox's path on its command line.
scripts/sandbox.sh up >"$dir.up.log" 2>&1 || fail "up failed: $(tail -3 "$dir.up.log")"
rm -f "$dir/maria-replica.pid" "$dir/redis.pid"
scripts/sandbox.sh down >/dev/null
left=$(leftovers)
[ -z "$left" ] || fail "down left servers whose pid file was gone: $left"
echo "down with two pid files gone (maria-replica, redis): nothing left"
rm -f "$dir.up.log"
echo "PASS: an up killed during pg_basebackup or mariadb-install-db leaves the next up working; down leaves nothing, also without pid files"

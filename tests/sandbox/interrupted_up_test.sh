#!/usr/bin/env bash
# A `sandbox.sh up` killed at each slow stage (a replica's pg_basebackup, MariaDB's
# mariadb-install-db, the Patroni cluster's first initdb) must leave the next `up` working, and `down` must leave no process of the
# sandbox behind. The script is killed with SIGKILL, the harshest end (a closed terminal, a CI
# timeout): nothing of its own can clean up, only the next run.
#
#   tests/sandbox/interrupted_up_test.sh     (its own directory and ports: PostgreSQL 24432-24434, MariaDB 24306-24307, the rest up to 24473)
set -euo pipefail
cd "$(dirname "$0")/../.."
export GHOSTWATCH_SANDBOX_DIR="${TMPDIR:-/tmp}/ghostwatch-interrupt-test"
export GW_PG_PORT_PRIMARY=24432 GW_MARIA_PORT_PRIMARY=24306
dir=$GHOSTWATCH_SANDBOX_DIR
fail() { echo "FAIL: $*" >&2; scripts/sandbox.sh down >/dev/null 2>&1 || true; exit 1; }
leftovers() { pgrep -fa -- "$dir/" | grep -v "interrupted_up_test" || true; }

scripts/sandbox.sh down >/dev/null 2>&1 || true
trap 'scripts/sandbox.sh down >/dev/null 2>&1 || true' EXIT

# The Patroni stage: the first member's initdb, before Patroni creates its users. Its Patroni
# (a session of its own) bootstraps on without the script: the next `up` must notice that the
# cluster never finished and make it again.
for stage in "pg_basebackup.*$dir/pg-replica-1" "mariadbd.*--bootstrap|mariadb-install-db.*$dir/maria-primary" \
  "initdb.*$dir/patroni/pg-m0"; do
  opts=()
  [[ $stage == *patroni* ]] && opts=(--patroni)
  scripts/sandbox.sh up "${opts[@]}" >"$dir.up.log" 2>&1 &
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
  scripts/sandbox.sh up "${opts[@]}" >"$dir.up.log" 2>&1 || fail "the next up failed: $(tail -3 "$dir.up.log")"
  scripts/sandbox.sh status >/dev/null || fail "after the next up not every server runs: $(scripts/sandbox.sh status)"
  if [ ${#opts[@]} -gt 0 ]; then
    members=$(scripts/sandbox.sh status | grep -cE '^patroni pg-m[0-2] [a-z_]+ (running|streaming)$' || true)
    [ "$members" = 3 ] || fail "after the next up the Patroni cluster is not whole: $(scripts/sandbox.sh status | grep patroni)"
  fi
  echo "the next up: every server running ($(grep -c 'starting it over\|interrupted run' "$dir.up.log" || true) leftovers handled)"
  scripts/sandbox.sh down >/dev/null
  left=$(leftovers)
  [ -z "$left" ] || fail "down left processes of the sandbox: $left"
done
# No password on a command line (ps shows those to every user): what every process of a whole
# `up` ran with, sampled every 10 ms, must hold none of the sandbox's passwords.
ps_log="$dir.ps.log"
: >"$ps_log"
( while :; do ps -eo args= >>"$ps_log"; sleep 0.01; done ) &
sampler=$!
scripts/sandbox.sh up --patroni >"$dir.up.log" 2>&1 || { kill "$sampler"; fail "up failed: $(tail -3 "$dir.up.log")"; }
kill "$sampler"
wait "$sampler" 2>/dev/null || true
grep -q "pg_basebackup" "$ps_log" || fail "the ps sampler never saw pg_basebackup: it sampled too seldom to tell"
grep -q "patroni $dir/patroni" "$ps_log" || fail "the ps sampler never saw Patroni"
for pw in admin.pw agent.pw scrape.pw; do
  [ -s "$dir/$pw" ] || fail "the sandbox has no $pw"
  if grep -qF -- "$(cat "$dir/$pw")" "$ps_log"; then
    fail "the password in $pw was on a command line: $(grep -F -- "$(cat "$dir/$pw")" "$ps_log" | head -1 | awk '{print $1}')"
  fi
done
echo "up --patroni: no password on any command line ($(wc -l <"$ps_log") process lines sampled, pg_basebackup and Patroni among them)"
rm -f "$ps_log"

# A server whose pid file is gone (removed by hand, or a crash between start and pid file), and
# one that ignores TERM (stopped with SIGSTOP): down still stops them, found by the sandbox's path
# on their command line, and killed when TERM does not do it.
replica_pid=$(cat "$dir/maria-replica.pid")
rm -f "$dir/maria-replica.pid" "$dir/redis.pid"
kill -STOP "$replica_pid"
scripts/sandbox.sh down >/dev/null 2>"$dir.down.log" || fail "down failed: $(cat "$dir.down.log")"
left=$(leftovers)
[ -z "$left" ] || fail "down left servers whose pid file was gone or that ignored TERM: $left"
echo "down with two pid files gone (maria-replica, redis) and maria-replica stopped by SIGSTOP: nothing left"
rm -f "$dir.down.log"
rm -f "$dir.up.log"
echo "PASS: an up killed during pg_basebackup, mariadb-install-db or the Patroni cluster's first initdb leaves the next up working; no password on a command line; down leaves nothing, also without pid files or with a server ignoring TERM"

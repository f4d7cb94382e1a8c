#!/usr/bin/env bash
# The canary table over a long run at the 10 ms canary interval: does it grow, do dead tuples
# pile up, do the updates stay HOT, does autovacuum keep it at its size?
#
#   bench/canary_table.sh [CANARIES=1000000] [SAMPLE_EVERY_S=600]
#
# Runs the agent with one PostgreSQL probe (interval 10ms, poll_interval 10ms, the sandbox's two
# replicas) until it has written CANARIES canaries (1,000,000 take 2.8 h), and prints a row every
# SAMPLE_EVERY_S seconds: the canaries written, the heap and the whole relation (forks and
# index), live and dead tuples, updates and HOT updates since the start, autovacuums. Then the
# same after the agent stops and a VACUUM. Rows appear as they are measured, so an interrupted
# run still tells what it saw.
#
# GHOSTWATCH_BIN=path runs another build (a copy keeps a rebuild meanwhile out of the run).
# Needs a running sandbox of its own (scripts/sandbox.sh up; source its env.sh): a test that
# drops or empties the canary table would spoil the run. A benchmark, not a test: the method and
# a run's figures are in bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
canaries=${1:-1000000}
every=${2:-600}
[[ $canaries =~ ^[1-9][0-9]*$ && $every =~ ^[1-9][0-9]*$ ]] ||
  { echo "usage: bench/canary_table.sh [CANARIES > 0] [SAMPLE_EVERY_S > 0]" >&2; exit 2; }
bin=${GHOSTWATCH_BIN:-build/ghostwatch}
[ -x "$bin" ] || { echo "$bin is missing: build first" >&2; exit 2; }
source bench/sandbox_env.sh

work=$(mktemp -d)
agent=
cleanup() {
  [ -z "$agent" ] || { kill "$agent" 2>/dev/null; wait "$agent" 2>/dev/null; } || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(free_port)
cat >"$work/agent.yaml" <<YAML
agent:
  id: canary-table
  listen: 127.0.0.1:$port
probes:
  - name: pg
    kind: postgres
    primary: "$(agent_pg_dsn "$pg_port_primary" gw-canary-table)"
    interval: 10ms
    poll_interval: 10ms
    targets:
      - name: replica-1
        dsn: "$(agent_pg_dsn "$pg_port_replica1" gw-canary-table)"
      - name: replica-2
        dsn: "$(agent_pg_dsn "$pg_port_replica2" gw-canary-table)"
YAML

stat_row() { pg "$pg_port_primary" "SELECT $1 FROM pg_stat_user_tables WHERE relid = 'ghostwatch.canary'::regclass"; }
written() {
  curl -sf --max-time 5 "http://127.0.0.1:$port/metrics" |
    awk '$1 == "ghostwatch_canary_writes_total{probe=\"pg\",result=\"ok\"}" { print $2 + 0; found = 1 } END { if (!found) print 0 }'
}
# "| heap / all | live / dead | updates (HOT) | autovacuums" with updates counted from the start.
table_state() {
  stat_row "pg_size_pretty(pg_relation_size(relid)) || ' / ' || pg_size_pretty(pg_total_relation_size(relid))
    || ' | ' || n_live_tup || ' / ' || n_dead_tup
    || ' | ' || (n_tup_upd - $upd0) || ' (' || (n_tup_hot_upd - $hot0) || ') | ' || autovacuum_count"
}

"$bin" run --config "$work/agent.yaml" --log-level warn >"$work/agent.log" 2>&1 &
agent=$!
sleep 1
kill -0 "$agent" 2>/dev/null || { echo "the agent did not start:" >&2; cat "$work/agent.log" >&2; exit 1; }
upd0=$(stat_row n_tup_upd)
hot0=$(stat_row n_tup_hot_upd)
started=$SECONDS

echo "| elapsed | canaries written | heap / all forks and index | live / dead tuples | updates (HOT) | autovacuums |"
echo "| --- | --- | --- | --- | --- | --- |"
echo "| 0 s | $(written) | $(table_state) |"
next=$every
while :; do
  sleep 5
  kill -0 "$agent" 2>/dev/null || { echo "the agent stopped:" >&2; tail -5 "$work/agent.log" >&2; exit 1; }
  n=$(written)
  if [ "$n" -ge "$canaries" ] || [ $((SECONDS - started)) -ge "$next" ]; then
    echo "| $((SECONDS - started)) s | $n | $(table_state) |"
    next=$((next + every))
  fi
  [ "$n" -lt "$canaries" ] || break
done
kill "$agent"
wait "$agent" 2>/dev/null || true
agent=
pg "$pg_port_primary" "VACUUM ghostwatch.canary"
sleep 2  # statistics reach pg_stat_user_tables within a second
echo "| stopped, then VACUUM | $n | $(table_state) |"

#!/usr/bin/env bash
# The canary table over a long run at the 10 ms canary interval: does it grow, do dead tuples
# pile up, do the updates stay HOT, does autovacuum keep it at its size?
#
#   bench/canary_table.sh [CANARIES=1000000] [SAMPLE_EVERY_S=600] [AGENTS=1]
#
# Runs AGENTS agents (two is the high-availability deployment: each writes its own row) with one
# PostgreSQL probe each (interval 10ms, poll_interval 10ms, the sandbox's two replicas) until
# they have written CANARIES canaries together (1,000,000 take 2.8 h for one agent, 1.4 h for
# two), and prints a row every
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
agents=${3:-1}
[[ $canaries =~ ^[1-9][0-9]*$ && $every =~ ^[1-9][0-9]*$ && $agents =~ ^[1-9]$ ]] ||
  { echo "usage: bench/canary_table.sh [CANARIES > 0] [SAMPLE_EVERY_S > 0] [AGENTS 1-9]" >&2; exit 2; }
bin=${GHOSTWATCH_BIN:-build/ghostwatch}
[ -x "$bin" ] || { echo "$bin is missing: build first" >&2; exit 2; }
source bench/sandbox_env.sh

work=$(mktemp -d)
pids=()
ports=()
stop_agents() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_agents
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

agent_config() {  # ID PORT
  printf 'agent:\n  id: %s\n  listen: 127.0.0.1:%s\nprobes:\n' "$1" "$2"
  pg_probe_yaml 10ms 10ms gw-canary-table
}

stat_row() { pg "$pg_port_primary" "SELECT $1 FROM pg_stat_user_tables WHERE relid = 'ghostwatch.canary'::regclass"; }
# The canaries all agents have written.
written() {
  local port total=0 n
  for port in "${ports[@]}"; do
    n=$(curl -sf --max-time 5 "http://127.0.0.1:$port/metrics" |
      awk '$1 == "ghostwatch_canary_writes_total{probe=\"pg\",result=\"ok\"}" { print $2 + 0; found = 1 } END { if (!found) print 0 }')
    total=$((total + n))
  done
  echo "$total"
}
table_state() { canary_table_state "$upd0" "$hot0"; }

for i in $(seq "$agents"); do
  ports+=("$(free_port)")
  agent_config "canary-table-$i" "${ports[-1]}" >"$work/agent-$i.yaml"
  "$bin" run --config "$work/agent-$i.yaml" --log-level warn >"$work/agent-$i.log" 2>&1 &
  pids+=($!)
done
sleep 1
for i in $(seq "$agents"); do
  kill -0 "${pids[$((i - 1))]}" 2>/dev/null || { echo "agent $i did not start:" >&2; cat "$work/agent-$i.log" >&2; exit 1; }
done
upd0=$(stat_row n_tup_upd)
hot0=$(stat_row n_tup_hot_upd)
started=$SECONDS

echo "$agents agent(s), each writing a canary every 10 ms"
echo
echo "| elapsed | canaries written | heap / all forks and index | live / dead tuples | updates (HOT) | autovacuums |"
echo "| --- | --- | --- | --- | --- | --- |"
echo "| 0 s | $(written) | $(table_state) |"
next=$every
while :; do
  sleep 5
  for i in $(seq "$agents"); do
    kill -0 "${pids[$((i - 1))]}" 2>/dev/null || { echo "agent $i stopped:" >&2; tail -5 "$work/agent-$i.log" >&2; exit 1; }
  done
  n=$(written)
  if [ "$n" -ge "$canaries" ] || [ $((SECONDS - started)) -ge "$next" ]; then
    echo "| $((SECONDS - started)) s | $n | $(table_state) |"
    next=$((next + every))
  fi
  [ "$n" -lt "$canaries" ] || break
done
stop_agents
pg "$pg_port_primary" "VACUUM ghostwatch.canary"
sleep 2  # statistics reach pg_stat_user_tables within a second
echo "| stopped, then VACUUM | $n | $(table_state) |"

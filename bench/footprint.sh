#!/usr/bin/env bash
# What ghostwatch costs the databases it watches, measured on the sandbox's servers.
#
#   bench/footprint.sh [SECONDS=60] [UPSERTS=0]
#
# FOOTPRINT_SECTIONS="1 3" runs only those of the sections below (default: 1 2 3; 4 runs when
# UPSERTS > 0). The long run of the canary table, a million canaries at 10 ms, is
# bench/canary_table.sh.
#
# 1. Per target and hour, at the default settings (interval 1s, poll_interval 10ms) and at 1 ms
#    polling: the statements each server ran for the agent and the CPU time of what served it.
#    PostgreSQL: transactions in pg_stat_database (each poll and each canary write is one) and
#    the utime+stime of the agent's own backends (/proc/<pid>/stat; found by application_name).
#    MariaDB: `Questions` and the whole mariadbd's CPU (no process per connection), each less an
#    idle period of the same length measured just before.
# 2. WAL bytes (PostgreSQL) and binlog bytes (MariaDB) per canary at interval 1s, beside
#    pt-heartbeat's per beat at --interval 1, in the same run; an idle period's bytes are shown
#    beside them, not subtracted (PostgreSQL's background WAL comes in bursts: a checkpoint in
#    one period and not the other would make a difference meaningless). PostgreSQL's exactly
#    too: pg_walinspect's records that touch the table's or its indexes' pages, and the commit
#    records of their transactions, whatever else the server wrote meanwhile. pt-heartbeat 3.5
#    cannot run on PostgreSQL (its Pg driver asks SHOW VARIABLES first): its table and its
#    once-a-second UPDATE are run by psql instead, and counted the same way.
# 3. The canary table after SECONDS of canaries every 10 ms: its size, dead tuples, HOT updates.
# 4. With UPSERTS > 0: the canary table after that many of the agent's upserts back to back
#    (pgbench, one transaction each, synchronous_commit off), then after VACUUM: whether it
#    grows when autovacuum cannot keep pace with the 10 ms interval's updates and after.
#
# Needs a running sandbox (scripts/sandbox.sh up; source its env.sh) and a release build. A
# benchmark, not a test: the method and a run's figures are in bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
upserts=${2:-0}
[[ $seconds =~ ^[1-9][0-9]*$ && $upserts =~ ^[0-9]+$ ]] || { echo "usage: bench/footprint.sh [SECONDS > 0] [UPSERTS >= 0]" >&2; exit 2; }
command -v pt-heartbeat >/dev/null || { echo "pt-heartbeat is missing (apt-get install percona-toolkit)" >&2; exit 2; }
[ -x build/ghostwatch ] || { echo "build/ghostwatch is missing: build first" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

source bench/sandbox_env.sh

app_transactions() { pg "$1" "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'app'"; }
wal_lsn() { pg "$pg_port_primary" "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"; }
wal_position() { pg "$pg_port_primary" "SELECT pg_current_wal_lsn()"; }
# "RECORDS BYTES COMMITS": the WAL a table's writes made between two positions, exactly: the
# records that touch its pages or its indexes' (block references name the relation's file), and
# the commit records of their transactions, whose count is the writes in the window (writes
# counted by the agent include some before it began).
table_wal() {  # TABLE FROM TO
  pg "$pg_port_primary" "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_walinspect" >/dev/null
  pg "$pg_port_primary" "
    WITH files AS (
      SELECT 'rel ' || CASE WHEN c.reltablespace = 0 THEN d.dattablespace ELSE c.reltablespace END || '/' || d.oid
             || '/' || pg_relation_filenode(c.oid) || ' ' AS ref
      FROM pg_class c, pg_database d
      WHERE d.datname = current_database()
        AND (c.oid = '$1'::regclass OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = '$1'::regclass))),
    r AS (SELECT * FROM pg_get_wal_records_info('$2', '$3')),
    touching AS (SELECT r.* FROM r WHERE EXISTS (SELECT 1 FROM files WHERE r.block_ref LIKE '%' || files.ref || '%')),
    commits AS (SELECT r.* FROM r WHERE r.resource_manager = 'Transaction'
                AND r.xid IN (SELECT xid FROM touching WHERE xid <> '0'))
    SELECT count(*) || ' ' || COALESCE(sum(record_length), 0) || ' ' || (SELECT count(*) FROM commits)
    FROM (SELECT * FROM touching UNION SELECT * FROM commits) x"
}
binlog_bytes() { maria "$maria_port_primary" "SHOW BINARY LOGS" | awk '{ s += $2 } END { print s + 0 }'; }
questions() { maria "$1" "SHOW GLOBAL STATUS LIKE 'Questions'" | awk '{ print $2 }'; }
# utime + stime in clock ticks of the given pids (0 for none).
cpu_ticks() { local t=0 pid; for pid in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
agent_backends() { pg "$1" "SELECT pid FROM pg_stat_activity WHERE application_name = 'gw-footprint'"; }
mariadbd_pid() { maria "$1" "SELECT @@pid_file" | xargs cat; }
ticks=$(getconf CLK_TCK)

maria_dsn() { agent_maria_dsn "$1"; }

agent_config() {  # INTERVAL POLL_INTERVAL [pg|maria|both]
  printf 'agent:\n  id: footprint\n  listen: 127.0.0.1:0\nprobes:\n'
  [ "$3" = maria ] || pg_probe_yaml "$1" "$2" gw-footprint
  if [ "$3" != pg ]; then
    printf '  - name: maria\n    kind: mysql\n    primary: "%s"\n    interval: %s\n    poll_interval: %s\n    targets:\n' \
      "$(maria_dsn "$maria_port_primary")" "$1" "$2"
    printf '      - name: replica\n        dsn: "%s"\n' "$(maria_dsn "$maria_port_replica")"
  fi
}

# Runs the agent on a config for `seconds`; the canary writes it made, per probe, go to
# $work/writes-<probe>.
run_agent() {  # CONFIG
  local port
  port=$(free_port)
  sed -i "s/listen: 127.0.0.1:0/listen: 127.0.0.1:$port/" "$1"
  build/ghostwatch run --config "$1" --log-level warn >"$work/agent.log" 2>&1 &
  local agent=$!
  pids+=("$agent")
  sleep 1
  on_agent_started
  sleep "$seconds"
  curl -sf "http://127.0.0.1:$port/metrics" >"$work/metrics" || true
  on_agent_stopping
  kill "$agent"
  wait "$agent" 2>/dev/null || true
  local probe
  for probe in pg maria; do
    awk -v p="ghostwatch_canary_writes_total{probe=\"$probe\",result=\"ok\"}" '$1 == p { print $2 + 0 }' "$work/metrics" >"$work/writes-$probe"
  done
}

per_hour() { awk -v n="$1" -v s="$seconds" 'BEGIN { printf "%.0f", n * 3600 / s }'; }
cpu_ms_per_hour() { awk -v t="$1" -v hz="$ticks" -v s="$seconds" 'BEGIN { printf "%.0f", t * 1000 / hz * 3600 / s }'; }

sections=${FOOTPRINT_SECTIONS:-1 2 3}
runs() { [[ " $sections " == *" $1 "* ]]; }

# --- 1. per target and hour ---------------------------------------------------------------------
if runs 1; then
echo "### Per target and hour ($seconds s per setting; PostgreSQL replica-2 is 200 ms behind)"
echo
echo "| poll_interval | server | statements per hour | CPU ms per hour (what served the agent) |"
echo "| --- | --- | --- | --- |"
ports_pg="$pg_port_primary $pg_port_replica1 $pg_port_replica2"
names_pg="pg-primary pg-replica-1 pg-replica-2"
for poll in 10ms 1ms; do
  # An idle period first: MariaDB's figures are the whole server's, less these.
  idle_q0=$(questions "$maria_port_primary"); idle_r0=$(questions "$maria_port_replica")
  mp=$(mariadbd_pid "$maria_port_primary"); mr=$(mariadbd_pid "$maria_port_replica")
  idle_c0=$(cpu_ticks "$mp"); idle_cr0=$(cpu_ticks "$mr")
  sleep "$seconds"
  idle_q=$(( $(questions "$maria_port_primary") - idle_q0 - 1 )); idle_r=$(( $(questions "$maria_port_replica") - idle_r0 - 1 ))
  idle_c=$(( $(cpu_ticks "$mp") - idle_c0 )); idle_cr=$(( $(cpu_ticks "$mr") - idle_cr0 ))

  agent_config 1s "$poll" both >"$work/agent.yaml"
  declare -A tx0 backends cpu0
  on_agent_started() {
    local port
    for port in $ports_pg; do
      tx0[$port]=$(app_transactions "$port")
      backends[$port]=$(agent_backends "$port" | tr '\n' ' ')
      # shellcheck disable=SC2086
      cpu0[$port]=$(cpu_ticks ${backends[$port]})
    done
    q0=$(questions "$maria_port_primary"); r0=$(questions "$maria_port_replica")
    c0=$(cpu_ticks "$mp"); cr0=$(cpu_ticks "$mr")
  }
  on_agent_stopping() {
    local port name
    # shellcheck disable=SC2086
    set -- $names_pg
    for port in $ports_pg; do
      name=$1; shift
      # The bench's own two statements on the server are not the agent's.
      local tx=$(( $(app_transactions "$port") - tx0[$port] - 2 ))
      # shellcheck disable=SC2086
      local cpu=$(( $(cpu_ticks ${backends[$port]}) - cpu0[$port] ))
      echo "| $poll | $name | $(per_hour "$tx") | $(cpu_ms_per_hour "$cpu") |"
    done
    local q=$(( $(questions "$maria_port_primary") - q0 - 1 - idle_q )) r=$(( $(questions "$maria_port_replica") - r0 - 1 - idle_r ))
    local c=$(( $(cpu_ticks "$mp") - c0 - idle_c )) cr=$(( $(cpu_ticks "$mr") - cr0 - idle_cr ))
    echo "| $poll | maria-primary | $(per_hour "$q") | $(cpu_ms_per_hour "$c") (whole server, less idle) |"
    echo "| $poll | maria-replica | $(per_hour "$r") | $(cpu_ms_per_hour "$cr") (whole server, less idle) |"
  }
  run_agent "$work/agent.yaml"
done
echo
fi

# --- 2. WAL and binlog bytes per canary beside pt-heartbeat -------------------------------------
if runs 2; then
echo "### Bytes written to the WAL and the binlog per canary (interval 1s) and per pt-heartbeat beat (--interval 1)"
echo
idle_wal0=$(wal_lsn); idle_bin0=$(binlog_bytes)
sleep "$seconds"
idle_wal=$(( $(wal_lsn) - idle_wal0 )); idle_bin=$(( $(binlog_bytes) - idle_bin0 ))

on_agent_started() { wal0=$(wal_lsn); bin0=$(binlog_bytes); from=$(wal_position); }
on_agent_stopping() { wal=$(( $(wal_lsn) - wal0 )); bin=$(( $(binlog_bytes) - bin0 )); to=$(wal_position); }
agent_config 1s 10ms both >"$work/agent.yaml"
run_agent "$work/agent.yaml"
gw_wal=$wal gw_bin=$bin
gw_pg_writes=$(cat "$work/writes-pg"); gw_maria_writes=$(cat "$work/writes-maria")
read -r gw_records gw_exact gw_commits <<<"$(table_wal ghostwatch.canary "$from" "$to")"

# pt-heartbeat in databases of its own, on both primaries at once.
maria "$maria_port_primary" "CREATE DATABASE IF NOT EXISTS footprint_heartbeat"
wal0=$(wal_lsn); bin0=$(binlog_bytes)
PGPASSWORD=$pg_password pt-heartbeat --dbi-driver Pg --update --create-table --interval 1 --run-time "$seconds" \
  -D app --table footprint_heartbeat "h=127.0.0.1,P=$pg_port_primary,u=gwadmin" >"$work/pt-pg.log" 2>&1 &
pids+=($!); pt_pg=$!
MYSQL_PWD=$maria_password pt-heartbeat --update --create-table --interval 1 --run-time "$seconds" \
  -D footprint_heartbeat "h=127.0.0.1,P=$maria_port_primary,u=$maria_user" >"$work/pt-maria.log" 2>&1 &
pids+=($!); pt_maria=$!
# One beat a second for the run: an update of its row each.
pt_pg_beats=$seconds pt_maria_beats=$seconds
wait "$pt_pg" || { echo "(pt-heartbeat on PostgreSQL failed: $(tail -1 "$work/pt-pg.log"); its UPDATE is run by psql below)"; pt_pg_beats=0; }
wait "$pt_maria" || { echo "(pt-heartbeat on MariaDB failed: $(tail -1 "$work/pt-maria.log"))"; pt_maria_beats=0; }
pt_wal=$(( $(wal_lsn) - wal0 )); pt_bin=$(( $(binlog_bytes) - bin0 ))
maria "$maria_port_primary" "DROP DATABASE footprint_heartbeat" || true

# pt-heartbeat's table (its --create-table, in PostgreSQL types) and its --update statement, one
# a second in autocommit, as its loop would run them: one row, its timestamp as text.
pg "$pg_port_primary" "DROP TABLE IF EXISTS footprint_heartbeat" >/dev/null 2>&1 || true
pg "$pg_port_primary" "CREATE TABLE footprint_heartbeat (ts varchar(26) NOT NULL, server_id int NOT NULL PRIMARY KEY,
  file varchar(255), position bigint, relay_master_log_file varchar(255), exec_master_log_pos bigint);
  INSERT INTO footprint_heartbeat (ts, server_id) VALUES ('', 1)"
from=$(wal_position)
for _ in $(seq "$seconds"); do
  echo "UPDATE footprint_heartbeat SET ts = to_char(clock_timestamp(), 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), file = NULL,
    position = NULL, relay_master_log_file = NULL, exec_master_log_pos = NULL WHERE server_id = 1;
    SELECT pg_sleep(1);"
done | PGPASSWORD=$pg_password psql -XAtq -h 127.0.0.1 -p "$pg_port_primary" -U gwadmin -d app >/dev/null
read -r pt_records pt_exact pt_commits <<<"$(table_wal footprint_heartbeat "$from" "$(wal_position)")"
pg "$pg_port_primary" "DROP TABLE footprint_heartbeat" >/dev/null

ratio() { awk -v a="$1" -v n="$2" -v d="${3:-0}" 'BEGIN { if (n > 0) printf "%.*f", d, a / n; else printf "-" }'; }
echo "| writer | PostgreSQL WAL bytes per write | MariaDB binlog bytes per write | writes |"
echo "| --- | --- | --- | --- |"
echo "| ghostwatch canary (interval 1s) | $(ratio "$gw_wal" "$gw_pg_writes") | $(ratio "$gw_bin" "$gw_maria_writes") | $gw_pg_writes / $gw_maria_writes |"
echo "| pt-heartbeat --update --interval 1 | $(ratio "$pt_wal" "$pt_pg_beats") | $(ratio "$pt_bin" "$pt_maria_beats") | about $seconds each |"
echo "| nothing (an idle period of $seconds s) | $idle_wal bytes in all | $idle_bin bytes in all | - |"
echo
echo "PostgreSQL exactly (pg_walinspect: the records of the table's pages and their commits):"
echo
echo "| writer | writes (commits) | WAL records | bytes | per write |"
echo "| --- | --- | --- | --- | --- |"
echo "| ghostwatch canary (interval 1s) | $gw_commits | $gw_records | $gw_exact | $(ratio "$gw_exact" "$gw_commits") bytes in $(ratio "$gw_records" "$gw_commits" 1) records |"
echo "| pt-heartbeat's UPDATE, by psql, once a second | $pt_commits | $pt_records | $pt_exact | $(ratio "$pt_exact" "$pt_commits") bytes in $(ratio "$pt_records" "$pt_commits" 1) records |"
echo

fi

# --- 3. the canary table under canaries every 10 ms ---------------------------------------------
if runs 3; then
echo "### The canary table after canaries every 10 ms for $seconds s"
echo
on_agent_started() { :; }
on_agent_stopping() { :; }
agent_config 10ms 10ms pg >"$work/agent.yaml"
run_agent "$work/agent.yaml"
sleep 2  # backends flush their statistics within a second
echo "| canaries written | heap / all forks and index | live / dead tuples | updates (HOT) | autovacuums |"
echo "| --- | --- | --- | --- | --- |"
echo "| $(cat "$work/writes-pg") | $(canary_table_state) |"
fi

# --- 4. the canary table after UPSERTS upserts ---------------------------------------------------
[ "$upserts" -gt 0 ] || exit 0
echo
echo "### The canary table after $upserts of the agent's upserts back to back, then VACUUM"
echo
cat >"$work/upsert.sql" <<'SQL'
INSERT INTO ghostwatch.canary AS c (agent_id, probe, seq, written_at) VALUES ('footprint-upserts', 'pg', 1, now())
  ON CONFLICT (agent_id, probe) DO UPDATE SET seq = GREATEST(c.seq + 1, EXCLUDED.seq), written_at = now();
SQL
echo "| moment | heap / all forks and index | live / dead tuples | updates (HOT) | autovacuums |"
echo "| --- | --- | --- | --- | --- |"
echo "| before | $(canary_table_state) |"
started=$SECONDS
PGPASSWORD=$pg_password PGOPTIONS='-c synchronous_commit=off' "${PG_BIN:-/usr/lib/postgresql/15/bin}/pgbench" -n -c 1 \
  -t "$upserts" -f "$work/upsert.sql" -h 127.0.0.1 -p "$pg_port_primary" -U gwadmin app >"$work/pgbench.log" 2>&1 ||
  { echo "(pgbench failed: $(tail -1 "$work/pgbench.log"))"; exit 1; }
sleep 2  # statistics reach pg_stat_user_tables within a second
echo "| after $upserts in $((SECONDS - started)) s | $(canary_table_state) |"
pg "$pg_port_primary" "VACUUM ghostwatch.canary"
sleep 2
echo "| after VACUUM | $(canary_table_state) |"
pg "$pg_port_primary" "DELETE FROM ghostwatch.canary WHERE agent_id = 'footprint-upserts'"

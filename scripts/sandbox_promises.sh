# What the promises and the peers need (sourced by scripts/sandbox.sh): the settings users trust
# to prevent stale reads, and the exporters ghostwatch is compared with.
#
# - pg-replica-1 is pg-primary's synchronous standby (synchronous_standby_names), while the
#   primary's default synchronous_commit is `local`: only a session that asks (a probe's
#   session_settings) waits for it, so a stopped replica-1 never holds the other tests' writes.
# - pgpool-II (Debian's pgpool2) in streaming-replication mode, load balancing over the primary
#   and both replicas; `pgpool-set KEY=VALUE...` sets sr_check_period, delay_threshold,
#   disable_load_balance_on_write and statement_level_load_balance, and restarts it.
# - MariaDB semi-synchronous replication, off until `semisync on`.
# - prometheus-postgres-exporter on pg-replica-2 and prometheus-mysqld-exporter on
#   maria-replica (its heartbeat collector reading pt-heartbeat's percona.heartbeat), and
#   pt-heartbeat itself (`start pt-heartbeat`: it writes on maria-primary every second, so it
#   runs only when asked).
#
# Ports, from the sandbox's PostgreSQL base port B: pgpool B+11 (its PCP socket B+12),
# postgres_exporter B+13, mysqld_exporter B+14.

PGPOOL_PORT=$((PG_PORT_PRIMARY + 11))
PGPOOL_PCP_PORT=$((PG_PORT_PRIMARY + 12))
PG_EXPORTER_PORT=$((PG_PORT_PRIMARY + 13))
MYSQLD_EXPORTER_PORT=$((PG_PORT_PRIMARY + 14))
PROMISE_SERVERS="pgpool postgres-exporter mysqld-exporter"
# The pgpool settings a test may change, with the sandbox's defaults (pgpool's own).
PGPOOL_SETTINGS="sr_check_period delay_threshold disable_load_balance_on_write statement_level_load_balance"
PGPOOL_DEFAULTS="sr_check_period=10 delay_threshold=0 disable_load_balance_on_write=transaction statement_level_load_balance=off"

# --- the synchronous standby ------------------------------------------------------------------

sync_standby_conf() {
  local d="$DIR/pg-primary" want
  # The name double-quoted: unquoted, a standby name cannot hold a hyphen.
  want=$(printf "synchronous_standby_names = '\"pg-replica-1\"'\nsynchronous_commit = local\n")
  [ -f "$d/sandbox_sync.conf" ] && [ "$(cat "$d/sandbox_sync.conf")" = "$want" ] && return 0
  printf '%s\n' "$want" | as_user tee "$d/sandbox_sync.conf" >/dev/null
  grep -q "sandbox_sync.conf" "$d/postgresql.conf" ||
    echo "include_if_exists = 'sandbox_sync.conf'" | as_user tee -a "$d/postgresql.conf" >/dev/null
  if pg_running pg-primary; then as_user "$PG_BIN/pg_ctl" -D "$d" reload >/dev/null; fi
}

# --- pgpool-II --------------------------------------------------------------------------------

pgpool_setting() {  # KEY: its value now
  local line
  line=$(grep -E "^$1=" "$DIR/pgpool.settings" 2>/dev/null || true)
  [ -n "$line" ] || line=$(tr ' ' '\n' <<<"$PGPOOL_DEFAULTS" | grep -E "^$1=")
  echo "${line#*=}"
}

pgpool_conf() {
  local pw i port
  pw=$(admin_password)
  cat <<CONF
backend_clustering_mode = 'streaming_replication'
listen_addresses = '127.0.0.1'
port = $PGPOOL_PORT
socket_dir = '$DIR'
pcp_listen_addresses = ''
pcp_port = $PGPOOL_PCP_PORT
pcp_socket_dir = '$DIR'
pid_file_name = '$DIR/pgpool.pid'
logdir = '$DIR'
memqcache_oiddir = '$DIR/pgpool-oiddir'
num_init_children = 32
max_pool = 2
# The sandbox's servers ask for SCRAM; pgpool, which must log in to every backend, takes the
# client's password in clear text (loopback only) instead of keeping a pool_passwd.
allow_clear_text_frontend_auth = on
load_balance_mode = on
sr_check_user = 'gwadmin'
sr_check_password = '$pw'
sr_check_database = 'postgres'
sr_check_period = $(pgpool_setting sr_check_period)
delay_threshold = $(pgpool_setting delay_threshold)
disable_load_balance_on_write = '$(pgpool_setting disable_load_balance_on_write)'
statement_level_load_balance = $(pgpool_setting statement_level_load_balance)
# A test that stops a replica must not make pgpool detach it for good.
health_check_period = 0
failover_on_backend_error = off
log_min_messages = warning
CONF
  i=0
  for port in "$PG_PORT_PRIMARY" "$PG_PORT_REPLICA1" "$PG_PORT_REPLICA2"; do
    printf "backend_hostname%d = '127.0.0.1'\nbackend_port%d = %d\nbackend_weight%d = 1\nbackend_flag%d = 'DISALLOW_TO_FAILOVER'\n" \
      "$i" "$i" "$port" "$i" "$i"
    i=$((i + 1))
  done
  echo "backend_application_name1 = 'pg-replica-1'"
  echo "backend_application_name2 = 'pg-replica-2'"
}

pgpool_running() { pid_running pgpool; }

pgpool_start() {
  pgpool_running && return 0
  [ -x /usr/sbin/pgpool ] || die "pgpool-II is not installed (Debian's pgpool2); run scripts/install-deps.sh"
  pgpool_conf >"$DIR/pgpool.conf"
  chmod 600 "$DIR/pgpool.conf"
  [ "$(id -u)" -eq 0 ] && chown "$SBX_USER" "$DIR/pgpool.conf"
  : >"$DIR/pcp.conf"
  : >"$DIR/pool_hba.conf"
  chmod 644 "$DIR/pcp.conf" "$DIR/pool_hba.conf"
  as_user mkdir -p "$DIR/pgpool-oiddir"
  rm -f "$DIR/pgpool.pid"
  # -D: forget which backends an earlier run saw down. -n: stay in the foreground of its own
  # session, so that its children go with it.
  as_user setsid /usr/sbin/pgpool -n -D -f "$DIR/pgpool.conf" -F "$DIR/pcp.conf" -a "$DIR/pool_hba.conf" \
    </dev/null >"$DIR/pgpool.log" 2>&1 &
  for _ in $(seq 1 100); do
    if pgpool_running && port_in_use "$PGPOOL_PORT" && psql_admin "$PGPOOL_PORT" -d postgres -tAc "SELECT 1" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  die "pgpool did not start; see $DIR/pgpool.log"
}

# SIGINT: pgpool's fast shutdown (SIGTERM waits for every client to leave).
pgpool_stop() {
  pgpool_running || return 0
  local pid
  pid=$(pid_of pgpool)
  kill -INT "$pid"
  for _ in $(seq 1 100); do pid_alive "$pid" || return 0; sleep 0.1; done
  say "pgpool (pid $pid) did not stop within 10 s of INT; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

# KEY=VALUE...: checked, kept in $DIR/pgpool.settings, and pgpool restarted with them (a restart
# rather than a reload: every session from now on sees them, none half).
pgpool_set() {
  [ $# -gt 0 ] || die "pgpool-set: give KEY=VALUE pairs (keys: $PGPOOL_SETTINGS; 'defaults' restores them)"
  local pair key value settings
  settings=$(cat "$DIR/pgpool.settings" 2>/dev/null || true)
  for pair in "$@"; do
    if [ "$pair" = defaults ]; then settings=""; continue; fi
    key=${pair%%=*} value=${pair#*=}
    [[ " $PGPOOL_SETTINGS " == *" $key "* ]] && [ "$key" != "$pair" ] ||
      die "pgpool-set: '$pair' is not KEY=VALUE with KEY one of: $PGPOOL_SETTINGS"
    case "$key" in
      sr_check_period|delay_threshold) [[ "$value" =~ ^[0-9]+$ ]] || die "pgpool-set: $key must be a whole number, got '$value'" ;;
      disable_load_balance_on_write)
        [[ "$value" =~ ^(off|transaction|trans_transaction|always|dml_adaptive)$ ]] ||
          die "pgpool-set: $key is one of off, transaction, trans_transaction, always, dml_adaptive; got '$value'" ;;
      statement_level_load_balance) [[ "$value" =~ ^(on|off)$ ]] || die "pgpool-set: $key is on or off, got '$value'" ;;
    esac
    settings=$(printf '%s\n%s=%s\n' "$(grep -v "^$key=" <<<"$settings" || true)" "$key" "$value" | sed '/^$/d')
  done
  printf '%s\n' "$settings" >"$DIR/pgpool.settings"
  pgpool_stop
  pgpool_start
  say "pgpool: $(for k in $PGPOOL_SETTINGS; do printf '%s=%s ' "$k" "$(pgpool_setting "$k")"; done)"
}

# --- MariaDB semi-synchronous replication -----------------------------------------------------

# on: the primary waits (up to 10 s, then goes on without) for the replica's IO thread to have
# received each transaction; the IO thread reconnects to take it up, mid-second as always, and
# the delay is proven again. Fails unless the primary then counts the replica as a semi-sync client.
semisync() {
  local want=$1 flag
  case "$want" in on) flag=ON ;; off) flag=OFF ;; *) die "semisync: on or off, got '$want'" ;; esac
  maria_root maria-primary -e "SET GLOBAL rpl_semi_sync_master_timeout = 10000; SET GLOBAL rpl_semi_sync_master_enabled = $flag"
  maria_root maria-replica -e "SET GLOBAL rpl_semi_sync_slave_enabled = $flag; STOP SLAVE IO_THREAD"
  start_maria_threads
  ensure_maria_delay "$(current_maria_delay)"
  [ "$want" = off ] && { say "semisync: off"; return 0; }
  for _ in $(seq 1 50); do
    [ "$(maria_root maria-primary -N -e "SHOW STATUS LIKE 'Rpl_semi_sync_master_clients'" | awk '{print $2}')" = 1 ] &&
      { say "semisync: on (maria-replica acknowledges receipt)"; return 0; }
    sleep 0.1
  done
  die "semisync: maria-primary counts no semi-synchronous replica after 5 s; see $DIR/maria-replica.err"
}

# --- exporters and pt-heartbeat --------------------------------------------------------------

maria_admin_cnf() {  # PORT FILE: a client option file, so that no password is on a command line
  install -m 600 -o "$(run_user)" /dev/null "$2"
  printf '[client]\nuser=gwadmin\npassword=%s\nhost=127.0.0.1\nport=%s\n' "$(admin_password)" "$1" >"$2"
}

# Debian's exporters (Go) take a --web.listen-address; their pid is the program's own.
exporter_start() {  # NAME PORT COMMAND...
  local name=$1 port=$2
  shift 2
  pid_running "$name" && return 0
  as_user setsid "$@" --web.listen-address="127.0.0.1:$port" </dev/null >"$DIR/$name.log" 2>&1 &
  wait_http_ready "$name" "http://127.0.0.1:$port/metrics" "--web.listen-address=127.0.0.1:$port" "$DIR/$name.log"
}

# Its replication lag comes from the pg_replication query of the exporter's example
# queries.yaml (built in before 0.11), the one users deploy: now() - pg_last_xact_replay_timestamp().
postgres_exporter_queries() {
  cat <<'YAML'
pg_replication:
  query: "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 ELSE GREATEST (0, EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp()))) END AS lag"
  master: true
  metrics:
    - lag:
        usage: "GAUGE"
        description: "Replication lag behind master in seconds"
YAML
}

postgres_exporter_start() {
  command -v prometheus-postgres-exporter >/dev/null || die "prometheus-postgres-exporter is not installed; run scripts/install-deps.sh"
  postgres_exporter_queries >"$DIR/postgres-exporter-queries.yaml"
  chmod 644 "$DIR/postgres-exporter-queries.yaml"
  # The DSN through the environment: only its own user may read it there.
  DATA_SOURCE_NAME="postgresql://gwadmin:$(admin_password)@127.0.0.1:$PG_PORT_REPLICA2/postgres?sslmode=disable" \
    exporter_start postgres-exporter "$PG_EXPORTER_PORT" prometheus-postgres-exporter \
    --extend.query-path="$DIR/postgres-exporter-queries.yaml"
}

mysqld_exporter_start() {
  command -v prometheus-mysqld-exporter >/dev/null || die "prometheus-mysqld-exporter is not installed; run scripts/install-deps.sh"
  maria_admin_cnf "$MARIA_PORT_REPLICA" "$DIR/mysqld-exporter.cnf"
  exporter_start mysqld-exporter "$MYSQLD_EXPORTER_PORT" prometheus-mysqld-exporter \
    --config.my-cnf="$DIR/mysqld-exporter.cnf" --collect.heartbeat --collect.heartbeat.database=percona \
    --collect.heartbeat.table=heartbeat --collect.heartbeat.utc
}

pt_heartbeat_start() {
  pid_running pt-heartbeat && return 0
  command -v pt-heartbeat >/dev/null || die "pt-heartbeat is not installed (percona-toolkit); run scripts/install-deps.sh"
  maria_admin_cnf "$MARIA_PORT_PRIMARY" "$DIR/pt-heartbeat.cnf"
  maria_root maria-primary -e "CREATE DATABASE IF NOT EXISTS percona"
  as_user pt-heartbeat --defaults-file "$DIR/pt-heartbeat.cnf" --update --create-table --utc --database percona \
    --interval 1 --daemonize --pid "$DIR/pt-heartbeat.pid" --log "$DIR/pt-heartbeat.log" ||
    die "pt-heartbeat failed; see $DIR/pt-heartbeat.log"
  wait_pid_file pt-heartbeat
}

promises_up() {
  sync_standby_conf
  pgpool_start
  postgres_exporter_start
  mysqld_exporter_start
}

promises_env() {
  cat <<ENV
export GW_PGPOOL_DSN='host=127.0.0.1 port=$PGPOOL_PORT dbname=app user=ghostwatch connect_timeout=2'
export GW_PG_EXPORTER_URL='http://127.0.0.1:$PG_EXPORTER_PORT/metrics'
export GW_MYSQLD_EXPORTER_URL='http://127.0.0.1:$MYSQLD_EXPORTER_PORT/metrics'
ENV
}

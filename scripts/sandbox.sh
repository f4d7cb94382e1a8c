#!/usr/bin/env bash
# A local sandbox of real database servers on loopback, for the demo and the integration tests.
#
#   scripts/sandbox.sh up [--pg-delay-ms N] [--maria-delay-s N] [--patroni] [--tls] [--fleet]
#                                             start (or reconfigure) everything; idempotent;
#                                             --patroni adds etcd and a 3-member Patroni cluster
#                                             (scripts/sandbox_patroni.sh), --tls TLS on every
#                                             server (scripts/sandbox_tls.sh), --fleet agents,
#                                             edge and central Prometheus and Alertmanager
#                                             (scripts/sandbox_fleet.sh); all kept by later `up`s
#   scripts/sandbox.sh fleet-up | fleet-down  add the fleet to a running sandbox, or remove it
#   scripts/sandbox.sh status                 show what runs
#   scripts/sandbox.sh down                   stop what this script started and delete its data
#   scripts/sandbox.sh stop NAME | start NAME one server (see status for the names)
#   scripts/sandbox.sh set-delay NAME N       pg-replica-2: N ms apply delay; maria-replica: N s
#   scripts/sandbox.sh check-delay maria-replica [N]
#                                             prove MASTER_DELAY (or N s) by a timed write: repairs
#                                             a lost delay, else fails naming what it saw
#   scripts/sandbox.sh measure-delay maria-replica
#                                             ms from a write mid-second until the replica shows it
#   scripts/sandbox.sh start-replication maria-replica
#                                             start its stopped replication threads, then as above
#   scripts/sandbox.sh pgpool-set KEY=VALUE... | defaults
#                                             pgpool's sr_check_period, delay_threshold,
#                                             disable_load_balance_on_write,
#                                             statement_level_load_balance; restarts it
#   scripts/sandbox.sh semisync on|off        MariaDB semi-synchronous replication
#   scripts/sandbox.sh start pt-heartbeat     pt-heartbeat --update on maria-primary (not at up)
#   scripts/sandbox.sh tls-require on|off     MariaDB's require_secure_transport (with --tls)
#   scripts/sandbox.sh patroni-stop|patroni-start|patroni-kill|patroni-add|patroni-remove pg-mN
#                                             a Patroni member: clean stop (it leaves the DCS),
#                                             start, SIGKILL with its PostgreSQL (a crash), a new
#                                             member joining (pg-m3, pg-m4), removed for good
#   scripts/sandbox.sh patroni-wait pg-mN...  until a leader runs and those members run or stream
#
# PostgreSQL 15: a primary and two hot-standby streaming replicas (pg_basebackup -R);
# pg-replica-2 applies WAL --pg-delay-ms late (recovery_min_apply_delay).
# MariaDB: a primary and a read-only replica with GTID replication (MASTER_USE_GTID=slave_pos),
# delayed by --maria-delay-s (MASTER_DELAY).
# HAProxy: TCP round-robin over the two PostgreSQL replicas, as a load-balanced read path.
# pgpool-II, a synchronous standby, semi-synchronous MariaDB, postgres_exporter, mysqld_exporter
# and pt-heartbeat: see scripts/sandbox_promises.sh.
# Redis and memcached: caches for cache targets (the tests bring their own canary pipeline).
# Prometheus: scrapes an agent at GW_AGENT_ADDR every second with alerts/ghostwatch.rules.yml,
# and one at GW_AGENT_TLS_ADDR over HTTPS with basic auth (job ghostwatch-tls), with the
# certificate and web config the sandbox makes (GW_WEB_CONFIG, GW_TLS_CA).
# Servers run as an unprivileged user (ghostwatch-sbx when started as root). Data, sockets and
# logs live under $GHOSTWATCH_SANDBOX_DIR (default /tmp/ghostwatch-sandbox); DSNs go to its
# env.sh, which the demo and the tests source.
set -euo pipefail

DIR="${GHOSTWATCH_SANDBOX_DIR:-${TMPDIR:-/tmp}/ghostwatch-sandbox}"
ENV_FILE="$DIR/env.sh"
# A sandbox keeps the ports it was brought up with: stop/start/status find its servers even
# when the caller's environment does not name them.
if [ -f "$DIR/ports.sh" ]; then
  # shellcheck disable=SC1091
  source "$DIR/ports.sh"
fi
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_PORT_PRIMARY="${GW_PG_PORT_PRIMARY:-25432}"
PG_PORT_REPLICA1=$((PG_PORT_PRIMARY + 1))
PG_PORT_REPLICA2=$((PG_PORT_PRIMARY + 2))
MARIA_PORT_PRIMARY="${GW_MARIA_PORT_PRIMARY:-23306}"
MARIA_PORT_REPLICA=$((MARIA_PORT_PRIMARY + 1))
SBX_USER=ghostwatch-sbx
PG_SERVERS="pg-primary pg-replica-1 pg-replica-2"
MARIA_SERVERS="maria-primary maria-replica"
HAPROXY_PORT="${GW_HAPROXY_PORT:-$((PG_PORT_PRIMARY + 10))}"
REDIS_PORT="${GW_REDIS_PORT:-$((PG_PORT_PRIMARY + 20))}"
MEMCACHED_PORT="${GW_MEMCACHED_PORT:-$((PG_PORT_PRIMARY + 21))}"
PROMETHEUS_PORT="${GW_PROMETHEUS_PORT:-$((PG_PORT_PRIMARY + 22))}"
AGENT_PORT="${GW_AGENT_PORT:-$((PG_PORT_PRIMARY + 23))}"
AGENT_TLS_PORT="${GW_AGENT_TLS_PORT:-$((PG_PORT_PRIMARY + 24))}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/sandbox_patroni.sh
source "$REPO/scripts/sandbox_patroni.sh"
# shellcheck source=scripts/sandbox_promises.sh
source "$REPO/scripts/sandbox_promises.sh"
# shellcheck source=scripts/sandbox_tls.sh
source "$REPO/scripts/sandbox_tls.sh"
# shellcheck source=scripts/sandbox_fleet.sh
source "$REPO/scripts/sandbox_fleet.sh"

die() { echo "sandbox: $*" >&2; exit 1; }
# Never fails: a terminal closed under `down` (the demo's hangup) must not stop it halfway.
say() { echo "sandbox: $*" >&2 || true; }

run_user() { if [ "$(id -u)" -eq 0 ]; then echo "$SBX_USER"; else id -un; fi; }

as_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$SBX_USER" -- "$@"; else "$@"; fi
}

ensure_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  id "$SBX_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$SBX_USER"
}

server_port() {
  case "$1" in
    pg-primary) echo "$PG_PORT_PRIMARY" ;;
    pg-replica-1) echo "$PG_PORT_REPLICA1" ;;
    pg-replica-2) echo "$PG_PORT_REPLICA2" ;;
    maria-primary) echo "$MARIA_PORT_PRIMARY" ;;
    maria-replica) echo "$MARIA_PORT_REPLICA" ;;
    haproxy) echo "$HAPROXY_PORT" ;;
    redis) echo "$REDIS_PORT" ;;
    memcached) echo "$MEMCACHED_PORT" ;;
    prometheus) echo "$PROMETHEUS_PORT" ;;
    pgpool) echo "$PGPOOL_PORT" ;;
    postgres-exporter) echo "$PG_EXPORTER_PORT" ;;
    mysqld-exporter) echo "$MYSQLD_EXPORTER_PORT" ;;
    pt-heartbeat) echo "-" ;;
    redis-tls) echo "$REDIS_TLS_PORT" ;;
    memcached-tls) echo "$MEMCACHED_TLS_PORT" ;;
    fleet-*|alertmanager|agent-*) fleet_server_port "$1" || die "unknown fleet server '$1' (known: $FLEET_SERVERS)" ;;
    *) die "unknown server '$1' (known: $PG_SERVERS $MARIA_SERVERS haproxy redis memcached prometheus $PROMISE_SERVERS pt-heartbeat $TLS_SERVERS $FLEET_SERVERS)" ;;
  esac
}

# A killed server stays a zombie until its parent (here often a PID 1 that reaps late) collects
# it; kill -0 still succeeds on a zombie, so pg_ctl would take it for running.
pid_alive() { [ -n "$1" ] && [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
postmaster_pid() { head -1 "$DIR/$1/postmaster.pid" 2>/dev/null || true; }
pg_running() {
  [ -d "$DIR/$1" ] && pid_alive "$(postmaster_pid "$1")" && as_user "$PG_BIN/pg_ctl" -D "$DIR/$1" status >/dev/null 2>&1
}

# A server's data is reused only when its initialisation finished: each init step writes
# $DIR/NAME.done last, and a data directory without it (an init that failed or was interrupted)
# is removed and made again.
initialised() { [ -d "$DIR/$1" ] && [ -f "$DIR/$1.done" ]; }
mark_initialised() { touch "$DIR/$1.done"; }
discard_partial() {
  local name=$1
  [ -e "$DIR/$name" ] || return 0
  say "$name: its initialisation did not finish earlier; starting it over"
  server_stop "$name" || true
  stop_strays "$DIR/$name"
  rm -rf "${DIR:?}/$name" "$DIR/$name.done"
}

# What an interrupted run can leave behind: a pg_basebackup or mariadb-install-db whose script
# was killed before it, or a server whose pid file is gone. They are found by this sandbox's
# path on their command line (Redis shows it in its process title), and only among the
# programs the sandbox runs.
stray_pids() {
  local pid comm
  for pid in $(pgrep -f -- "$1" || true); do
    [ "$pid" = "$$" ] && continue
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
    case "$comm" in
      postgres|pg_basebackup|pg_ctl|initdb|pg_rewind|mariadbd|mysqld|mariadb-install|mysql_install_d|redis-server|memcached|prometheus|haproxy|patroni|etcd|pgpool|prometheus-post|prometheus-mysq|pt-heartbeat) echo "$pid" ;;
    esac
  done
}
stop_strays() {
  local pids p
  mapfile -t pids < <(stray_pids "$1")
  [ ${#pids[@]} -gt 0 ] || return 0
  say "stopping what an interrupted run left under $1: pid ${pids[*]}"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 50); do
    mapfile -t pids < <(for p in "${pids[@]}"; do if pid_alive "$p"; then echo "$p"; fi; done)
    [ ${#pids[@]} -gt 0 ] || return 0
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

pg_start() {
  pg_running "$1" && return 0
  [ -d "$DIR/$1" ] || die "$1 has no data directory; run 'up' first"
  # The lock file of a server that was killed: PostgreSQL itself would refuse to start while
  # its PID looks alive (a zombie does).
  pid_alive "$(postmaster_pid "$1")" || rm -f "$DIR/$1/postmaster.pid"
  # A session of its own: Ctrl-C in the terminal that started it must not stop the server.
  as_user setsid -w "$PG_BIN/pg_ctl" -D "$DIR/$1" -l "$DIR/$1.log" -w -t 60 start >/dev/null ||
    die "$1 failed to start; see $DIR/$1.log"
}

pg_stop() {
  pg_running "$1" || return 0
  as_user "$PG_BIN/pg_ctl" -D "$DIR/$1" -m fast -w -t 60 stop >/dev/null
}

admin_password() { cat "$DIR/admin.pw"; }
agent_password() { cat "$DIR/agent.pw"; }

psql_admin() {
  local port=$1; shift
  PGPASSWORD="$(admin_password)" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U gwadmin "$@"
}

new_password() { head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

common_conf() {
  cat <<CONF
listen_addresses = '127.0.0.1'
port = $2
unix_socket_directories = '$DIR'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
wal_receiver_status_interval = 1s
# bench/poll_cost runs up to 1000 targets over the two replicas (a standby needs at least the
# primary's value).
max_connections = 600
log_min_messages = warning
include_if_exists = 'sandbox_delay.conf'
CONF
}

init_primary() {
  local d="$DIR/pg-primary"
  initialised pg-primary && return 0
  discard_partial pg-primary
  # The replicas were cloned from the old primary: they go with it.
  discard_partial pg-replica-1
  discard_partial pg-replica-2
  say "initialising pg-primary on port $PG_PORT_PRIMARY"
  as_user "$PG_BIN/initdb" -D "$d" -U gwadmin --pwfile="$DIR/admin.pw" --auth-local=trust \
    --auth-host=scram-sha-256 >"$DIR/initdb.log" 2>&1 || die "initdb failed; see $DIR/initdb.log"
  common_conf pg-primary "$PG_PORT_PRIMARY" | as_user tee -a "$d/postgresql.conf" >/dev/null
  pg_start pg-primary
  psql_admin "$PG_PORT_PRIMARY" -d postgres <<SQL
CREATE ROLE ghostwatch LOGIN PASSWORD '$(agent_password)';
CREATE DATABASE app;
GRANT CREATE, CONNECT ON DATABASE app TO ghostwatch;
SQL
  mark_initialised pg-primary
}

init_replica() {
  local name=$1 port=$2 d="$DIR/$1"
  initialised "$name" && return 0
  discard_partial "$name"
  say "initialising $name on port $port (pg_basebackup -R)"
  # The password from a file only the servers' user reads: on the command line it would show in ps.
  install -m 600 -o "$(run_user)" /dev/null "$DIR/admin.pgpass"
  echo "127.0.0.1:$PG_PORT_PRIMARY:*:gwadmin:$(admin_password)" >"$DIR/admin.pgpass"
  as_user env PGPASSFILE="$DIR/admin.pgpass" "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT_PRIMARY" \
    -U gwadmin -D "$d" -R -X stream -c fast >"$DIR/$name-basebackup.log" 2>&1 ||
    die "pg_basebackup for $name failed; see $DIR/$name-basebackup.log"
  echo "port = $port" | as_user tee -a "$d/postgresql.conf" >/dev/null
  mark_initialised "$name"
}

# A replica's walreceiver names itself by cluster_name on the primary (pg_stat_replication's
# application_name), which discovery's from_primary source reads. Kept in a file of its own so
# that a sandbox made before it gets it at the next `up`.
name_replica() {
  local name=$1 d="$DIR/$1"
  [ -f "$d/sandbox_name.conf" ] && return 0
  echo "cluster_name = '$name'" | as_user tee "$d/sandbox_name.conf" >/dev/null
  grep -q "sandbox_name.conf" "$d/postgresql.conf" ||
    echo "include_if_exists = 'sandbox_name.conf'" | as_user tee -a "$d/postgresql.conf" >/dev/null
  if pg_running "$name"; then pg_stop "$name"; fi
}

set_delay() {
  local name=$1 ms=$2
  [[ "$ms" =~ ^[0-9]+$ ]] || die "delay must be a whole number of milliseconds, got '$ms'"
  echo "recovery_min_apply_delay = '${ms}ms'" | as_user tee "$DIR/$name/sandbox_delay.conf" >/dev/null
  if pg_running "$name"; then as_user "$PG_BIN/pg_ctl" -D "$DIR/$name" reload >/dev/null; fi
}

# --- servers with a pid file (MariaDB, Redis, memcached) ------------------------------------

# pgpool pads its pid file with NUL bytes.
pid_of() { tr -d '\0' <"$DIR/$1.pid" 2>/dev/null; }
pid_running() { [ -f "$DIR/$1.pid" ] && pid_alive "$(pid_of "$1")"; }

# TERM, and KILL after 30 s: one server that does not stop must not keep `down` from the rest.
pid_stop() {
  pid_running "$1" || return 0
  local pid
  pid=$(cat "$DIR/$1.pid")
  kill -TERM "$pid"
  for _ in $(seq 1 300); do pid_alive "$pid" || return 0; sleep 0.1; done
  say "$1 (pid $pid) did not stop within 30 s of TERM; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do pid_alive "$pid" || return 0; sleep 0.1; done
  say "$1 (pid $pid) is still running after KILL"
  return 1
}

# --- MariaDB -------------------------------------------------------------------------------


maria_root() { mariadb --no-defaults --socket="$DIR/$1.sock" -uroot "${@:2}"; }

maria_start() {
  pid_running "$1" && return 0
  [ -d "$DIR/$1" ] || die "$1 has no data directory; run 'up' first"
  as_user setsid -f /usr/sbin/mariadbd --defaults-file="$DIR/$1.cnf" </dev/null >/dev/null 2>&1
  for _ in $(seq 1 150); do
    mariadb-admin --no-defaults --socket="$DIR/$1.sock" -uroot ping >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "$1 failed to start; see $DIR/$1.err"
}

maria_conf() {
  local name=$1 port=$2 id=$3
  cat <<CONF
[mariadbd]
datadir = $DIR/$name
port = $port
bind-address = 127.0.0.1
socket = $DIR/$name.sock
pid-file = $DIR/$name.pid
log-error = $DIR/$name.err
server-id = $id
log-bin = $DIR/$name-bin
binlog-format = ROW
gtid-strict-mode = 1
skip-name-resolve
performance-schema = 0
innodb-buffer-pool-size = 32M
# bench/poll_cost --mysql runs up to 500 targets on the replica, with a floor's 500 connections
# before them (151 by default).
max-connections = 600
CONF
  maria_tls_conf
  # skip-slave-start: the sandbox starts replication itself, mid-second (see MASTER_DELAY below).
  # report-host/port: the primary lists the replica in SHOW REPLICA HOSTS (discovery's
  # from_primary source).
  [ "$name" = maria-replica ] &&
    printf 'read-only = 1\nskip-slave-start = 1\nreport-host = 127.0.0.1\nreport-port = %s\n' "$port"
  return 0
}

# Written at every `up`, so that a sandbox made by an older script gets today's settings; a
# running server that would change is restarted.
write_maria_conf() {
  local name=$1 port=$2 id=$3 new
  new=$(maria_conf "$name" "$port" "$id")
  [ -f "$DIR/$name.cnf" ] && [ "$new" = "$(cat "$DIR/$name.cnf")" ] && return 0
  pid_stop "$name"
  printf '%s\n' "$new" >"$DIR/$name.cnf"
  chmod 644 "$DIR/$name.cnf"
}

init_maria() {
  local name=$1 port=$2 id=$3
  if initialised "$name"; then
    write_maria_conf "$name" "$port" "$id"
    return 0
  fi
  discard_partial "$name"
  # A replica of an older primary would follow GTIDs the new one never wrote.
  [ "$name" = maria-primary ] && discard_partial maria-replica
  say "initialising $name on port $port"
  write_maria_conf "$name" "$port" "$id"
  as_user mariadb-install-db --no-defaults --user="$(run_user)" --datadir="$DIR/$name" \
    --auth-root-authentication-method=normal --skip-test-db >"$DIR/$name-install.log" 2>&1 ||
    die "mariadb-install-db for $name failed; see $DIR/$name-install.log"
  mark_initialised "$name"
}

# Users are created on the primary only: the replica replays them from the binlog.
create_maria_users() {
  maria_root maria-primary <<SQL
CREATE USER IF NOT EXISTS 'gwadmin'@'127.0.0.1' IDENTIFIED BY '$(admin_password)';
GRANT ALL ON *.* TO 'gwadmin'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY '$(admin_password)';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'ghostwatch'@'127.0.0.1' IDENTIFIED BY '$(agent_password)';
GRANT SELECT, INSERT, UPDATE, CREATE ON \`ghostwatch\`.* TO 'ghostwatch'@'127.0.0.1';
GRANT SLAVE MONITOR ON *.* TO 'ghostwatch'@'127.0.0.1';
SQL
}

# --- MASTER_DELAY, proven ---------------------------------------------------------------------
# MariaDB holds an event until its timestamp on the primary (whole seconds) + MASTER_DELAY +
# clock_diff_with_master, which the IO thread measures at each connect as its own time(2) minus
# the primary's UNIX_TIMESTAMP(). time(2) reads the kernel's coarse clock, a few ms behind the
# precise one that UNIX_TIMESTAMP() reads: a connect in the first ms of a second can measure -1,
# and MASTER_DELAY=1 then delays nothing while SHOW SLAVE STATUS still says SQL_Delay 1 (a
# connect that straddles a second measures +1: twice the delay). So the sandbox starts the
# replica's threads mid-second only, and proves the delay with a timed write after every change,
# start or reconnect, reconnecting the IO thread until the delay holds.

# Returns at a moment whose fraction of a second lies in [0.3, 0.6].
mid_second() {
  local ns
  ns=$((10#$(date +%N)))
  if [ "$ns" -lt 300000000 ]; then sleep "0.$(printf %09d $((300000000 - ns)))"
  elif [ "$ns" -gt 600000000 ]; then sleep "0.$(printf %09d $((1300000000 - ns)))"
  fi
}

# START SLAVE (whichever of its threads is stopped), mid-second (see above).
start_maria_threads() {
  mid_second
  maria_root maria-replica -e "START SLAVE"
}

# Milliseconds from a write on the primary until the replica shows it, or "never" within LIMIT s;
# fails when the write cannot be made.
maria_visible_after_ms() {
  local limit_ms=$(($1 * 1000)) token t0 elapsed
  maria_root maria-primary -e "CREATE DATABASE IF NOT EXISTS gw_sandbox;
    CREATE TABLE IF NOT EXISTS gw_sandbox.delay_check (id INT PRIMARY KEY, token BIGINT NOT NULL)" || return 1
  token=$((RANDOM * 32768 + RANDOM))
  # A write late in a second is held one second less: MariaDB counts in whole seconds.
  mid_second
  t0=$(date +%s%N)
  maria_root maria-primary -e "REPLACE INTO gw_sandbox.delay_check VALUES (1, $token)" || return 1
  while :; do
    elapsed=$((($(date +%s%N) - t0) / 1000000))
    if [ "$(maria_root maria-replica -N -e "SELECT token FROM gw_sandbox.delay_check WHERE id = 1" 2>/dev/null)" = "$token" ]; then
      echo "$elapsed"
      return 0
    fi
    [ "$elapsed" -lt "$limit_ms" ] || { echo never; return 0; }
    sleep 0.02
  done
}

# Proves that the replica applies a write MASTER_DELAY late (a write mid-second shows 0.2 s under
# to 0.8 s over the delay: seen 885-1422 ms for 1 s; a lost delay shows in a few ms, a doubled
# one after 2 s); else reconnects its IO thread mid-second (and starts a stopped SQL thread) and
# tries again, and fails naming what it saw after five tries.
ensure_maria_delay() {
  local want=$1 least most ms attempt
  least=$((want * 1000 - 200)) most=$((want * 1000 + 800))
  for attempt in 1 2 3 4 5; do
    ms=$(maria_visible_after_ms $((want + 5))) || die "maria-replica: MASTER_DELAY cannot be proven: no write could be made on maria-primary"
    if [ "$ms" != never ] && [ "$ms" -ge "$least" ] && [ "$ms" -le "$most" ]; then
      say "maria-replica: MASTER_DELAY=${want}s holds (a write showed after $ms ms)"
      return 0
    fi
    say "maria-replica: MASTER_DELAY=${want}s, but a write showed after $ms ms (expected ${least}-${most}); reconnecting its IO thread (try $attempt of 5)"
    # START SLAVE also starts an SQL thread left stopped (a test that ended early).
    maria_root maria-replica -e "STOP SLAVE IO_THREAD"
    start_maria_threads
  done
  die "maria-replica: MASTER_DELAY=${want}s does not hold: a write showed after $ms ms (expected ${least}-${most}) after 5 reconnects of its IO thread; see $DIR/maria-replica.err"
}

start_maria_replication() {
  local delay=$1
  if ! maria_replication_configured; then
    maria_root maria-replica <<SQL
CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$MARIA_PORT_PRIMARY, MASTER_USER='repl',
  MASTER_PASSWORD='$(admin_password)', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1,
  MASTER_DELAY=$delay;
SQL
  fi
  start_maria_threads
}

set_maria_delay() {
  local s=$1
  [[ "$s" =~ ^[0-9]+$ ]] || die "delay must be a whole number of seconds, got '$s'"
  if [ "$(current_maria_delay)" != "$s" ]; then
    maria_root maria-replica -e "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=$s"
    start_maria_threads
  fi
  ensure_maria_delay "$s"
}

maria_replication_configured() { [ -n "$(maria_root maria-replica -N -e 'SHOW SLAVE STATUS')" ]; }

current_maria_delay() {
  maria_root maria-replica -e "SHOW SLAVE STATUS\G" 2>/dev/null | sed -n 's/^ *SQL_Delay: //p'
}

# The replica's threads started again (after a test stopped one, or a server start) and the
# delay proven.
resume_maria_replication() {
  pid_running maria-replica || die "maria-replica is not running"
  start_maria_threads
  ensure_maria_delay "$(current_maria_delay)"
}

wait_maria_replicating() {
  for _ in $(seq 1 100); do
    local users
    users=$(maria_root maria-replica -N -e "SELECT COUNT(*) FROM mysql.user WHERE user = 'ghostwatch'" 2>/dev/null || echo 0)
    [ "$users" = 1 ] && return 0
    sleep 0.2
  done
  die "maria-replica is not replicating after 20 s; see $DIR/maria-replica.err"
}

up_maria() {
  local delay=$1
  [ -x /usr/sbin/mariadbd ] || die "MariaDB is not installed; run scripts/install-deps.sh"
  init_maria maria-primary "$MARIA_PORT_PRIMARY" 1
  maria_start maria-primary
  create_maria_users
  init_maria maria-replica "$MARIA_PORT_REPLICA" 2
  maria_start maria-replica
  [ -n "$delay" ] || delay=$(current_maria_delay)
  MARIA_DELAY="${delay:-0}"
  [[ "$MARIA_DELAY" =~ ^[0-9]+$ ]] || die "--maria-delay-s must be a whole number of seconds, got '$MARIA_DELAY'"
  start_maria_replication "$MARIA_DELAY"
  set_maria_delay "$MARIA_DELAY"
  wait_maria_replicating
}

# --- HAProxy -------------------------------------------------------------------------------

haproxy_running() { [ -f "$DIR/haproxy.pid" ] && kill -0 "$(cat "$DIR/haproxy.pid")" 2>/dev/null; }

write_haproxy_conf() {
  cat >"$DIR/haproxy.cfg" <<CONF
global
  daemon
  pidfile $DIR/haproxy.pid
  maxconn 512
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
listen pg-replicas
  bind 127.0.0.1:$HAPROXY_PORT
  balance roundrobin
  server replica-1 127.0.0.1:$PG_PORT_REPLICA1 check inter 500ms
  server replica-2 127.0.0.1:$PG_PORT_REPLICA2 check inter 500ms
CONF
  chmod 644 "$DIR/haproxy.cfg"
}

haproxy_start() {
  haproxy_running && return 0
  command -v haproxy >/dev/null || die "HAProxy is not installed; run scripts/install-deps.sh"
  [ -f "$DIR/haproxy.cfg" ] || write_haproxy_conf
  as_user setsid haproxy -f "$DIR/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 </dev/null || die "haproxy failed; see $DIR/haproxy.log"
  for _ in $(seq 1 50); do haproxy_running && return 0; sleep 0.1; done
  die "haproxy did not start; see $DIR/haproxy.log"
}

haproxy_stop() {
  haproxy_running || return 0
  local pid
  pid=$(cat "$DIR/haproxy.pid")
  kill -TERM "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

# --- Redis and memcached -------------------------------------------------------------------

wait_pid_file() {
  for _ in $(seq 1 50); do pid_running "$1" && return 0; sleep 0.1; done
  die "$1 did not start; see $DIR/$1.log"
}

redis_start() {
  pid_running redis && return 0
  as_user setsid redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --dir "$DIR" \
    --proc-title-template "{title} {listen-addr} $DIR/redis" </dev/null >/dev/null 2>&1 ||
    die "redis failed; see $DIR/redis.log"
  wait_pid_file redis
}

memcached_start() {
  pid_running memcached && return 0
  # -u: memcached refuses to run as root without naming a user.
  as_user setsid memcached -d -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 -P "$DIR/memcached.pid" \
    -u "$(run_user)" </dev/null >"$DIR/memcached.log" 2>&1 || die "memcached failed; see $DIR/memcached.log"
  wait_pid_file memcached
}

# A self-signed certificate for 127.0.0.1 and a web config with one bcrypt user, for an agent
# that serves over HTTPS with basic auth (exporter-toolkit format).
tls_material() {
  [ -s "$DIR/web-config.yml" ] && return 0
  mkdir -p "$DIR/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$DIR/tls/agent.key" -out "$DIR/tls/agent.crt" 2>/dev/null || die "openssl could not make a certificate"
  chmod 644 "$DIR/tls/agent.crt"
  chmod 600 "$DIR/tls/agent.key"
  [ -s "$DIR/scrape.pw" ] || { new_password >"$DIR/scrape.pw"; chmod 644 "$DIR/scrape.pw"; }
  local hash
  # From stdin: on the command line the password would show in ps.
  hash=$(mkpasswd -m bcrypt -R 10 --stdin <"$DIR/scrape.pw") || die "mkpasswd (package whois) could not hash"
  printf 'tls_server_config:\n  cert_file: tls/agent.crt\n  key_file: tls/agent.key\nbasic_auth_users:\n  prometheus: %s\nunauthenticated_paths: [/healthz]\n' \
    "$hash" >"$DIR/web-config.yml"
}

prometheus_start() {
  pid_running prometheus && return 0
  command -v prometheus >/dev/null || die "Prometheus is not installed; run scripts/install-deps.sh"
  # A copy of the rules, readable by the sandbox user wherever the repository lives.
  cp "$REPO/alerts/ghostwatch.rules.yml" "$REPO/alerts/ghostwatch.slo.rules.yml" "$DIR/"
  chmod 644 "$DIR/ghostwatch.rules.yml" "$DIR/ghostwatch.slo.rules.yml"
  cat >"$DIR/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $DIR/ghostwatch.rules.yml
  - $DIR/ghostwatch.slo.rules.yml
scrape_configs:
  - job_name: ghostwatch
    static_configs:
      - targets: ["127.0.0.1:$AGENT_PORT"]
  - job_name: ghostwatch-tls
    scheme: https
    tls_config:
      ca_file: $DIR/tls/agent.crt
    basic_auth:
      username: prometheus
      password_file: $DIR/scrape.pw
    static_configs:
      - targets: ["127.0.0.1:$AGENT_TLS_PORT"]
CONF
  chmod 644 "$DIR/prometheus.yml"
  as_user mkdir -p "$DIR/prometheus-data"
  as_user setsid prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/prometheus-data" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" </dev/null >"$DIR/prometheus.log" 2>&1 &
  wait_http_ready prometheus "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" "--config.file=$DIR/prometheus.yml" \
    "$DIR/prometheus.log"
}

# Waits (up to 15 s) for a server started in the background to answer `url`, then records the
# pid of the process whose command line holds `marker`: the server itself, not the runuser
# wrapper that started it.
wait_http_ready() {  # NAME URL MARKER LOG
  for _ in $(seq 1 150); do
    if curl -sf -o /dev/null --max-time 1 "$2"; then
      pgrep -n -f -- "$3" >"$DIR/$1.pid"
      return 0
    fi
    sleep 0.1
  done
  die "$1 did not become ready at $2; see $4"
}

# --- all ------------------------------------------------------------------------------------

server_running() {
  case "$1" in
    pg-*) pg_running "$1" ;; haproxy) haproxy_running ;; pgpool) pgpool_running ;; *) pid_running "$1" ;;
  esac
}
server_start() {
  case "$1" in
    pg-*) pg_start "$1" ;; maria-primary) maria_start "$1" ;; haproxy) haproxy_start ;;
    maria-replica) maria_start "$1"; maria_replication_configured && resume_maria_replication ;;
    redis) redis_start ;; memcached) memcached_start ;; prometheus) prometheus_start ;;
    pgpool) pgpool_start ;; postgres-exporter) postgres_exporter_start ;; mysqld-exporter) mysqld_exporter_start ;;
    pt-heartbeat) pt_heartbeat_start ;;
    redis-tls) redis_tls_start ;; memcached-tls) memcached_tls_start ;;
    fleet-*|alertmanager|agent-*) fleet_start_server "$1" ;;
  esac
}
server_stop() {
  case "$1" in
    pg-*) pg_stop "$1" ;; haproxy) haproxy_stop ;; pgpool) pgpool_stop ;; *) pid_stop "$1" ;;
  esac
}

# Who listens on a TCP port: "PROGRAM (pid N)" where visible, else "another program".
port_owner() {
  local line
  line=$(ss -Hltnp "sport = :$1" 2>/dev/null | head -1)
  if [[ "$line" =~ users:\(\(\"([^\"]+)\",pid=([0-9]+) ]]; then
    echo "${BASH_REMATCH[1]} (pid ${BASH_REMATCH[2]})"
  else
    echo "another program"
  fi
}

port_in_use() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# Before anything starts: every server this sandbox has not already started needs its port free.
check_ports() {
  local s port
  for s in $PG_SERVERS $MARIA_SERVERS haproxy redis memcached prometheus $PROMISE_SERVERS $(tls_servers); do
    server_running "$s" && continue
    port=$(server_port "$s")
    port_in_use "$port" && port_taken "$port" "$s"
  done
  # Patroni's and etcd's, when the cluster is wanted and not running yet.
  if [ "${1:-}" = patroni ]; then
    for port in $(patroni_free_ports_needed); do port_in_use "$port" && port_taken "$port" "the Patroni cluster"; done
  fi
  return 0
}

port_taken() {
  die "port $1 (for $2) is in use by $(port_owner "$1"); stop it, or move the sandbox's ports with GW_PG_PORT_PRIMARY / GW_MARIA_PORT_PRIMARY (and GHOSTWATCH_SANDBOX_DIR for a second sandbox)"
}

write_env() {
  local tmp="$ENV_FILE.tmp"
  cat >"$tmp" <<ENV
# ghostwatch sandbox: source this file. Written by scripts/sandbox.sh up.
export GW_SANDBOX_DIR='$DIR'
export GW_PG_PASSWORD='$(agent_password)'
export GW_PG_PRIMARY_DSN='host=127.0.0.1 port=$PG_PORT_PRIMARY dbname=app user=ghostwatch connect_timeout=2'
export GW_PG_REPLICA1_DSN='host=127.0.0.1 port=$PG_PORT_REPLICA1 dbname=app user=ghostwatch connect_timeout=2'
export GW_PG_REPLICA2_DSN='host=127.0.0.1 port=$PG_PORT_REPLICA2 dbname=app user=ghostwatch connect_timeout=2'
export GW_PG_ADMIN_PRIMARY_DSN='host=127.0.0.1 port=$PG_PORT_PRIMARY dbname=app user=gwadmin password=$(admin_password)'
export GW_PG_ADMIN_REPLICA1_DSN='host=127.0.0.1 port=$PG_PORT_REPLICA1 dbname=app user=gwadmin password=$(admin_password)'
export GW_PG_ADMIN_REPLICA2_DSN='host=127.0.0.1 port=$PG_PORT_REPLICA2 dbname=app user=gwadmin password=$(admin_password)'
export GW_PG_HAPROXY_DSN='host=127.0.0.1 port=$HAPROXY_PORT dbname=app user=ghostwatch connect_timeout=2'
export GW_PG_DELAY_MS='$1'
export GW_REDIS_ADDR='127.0.0.1:$REDIS_PORT'
export GW_MEMCACHED_ADDR='127.0.0.1:$MEMCACHED_PORT'
export GW_PROMETHEUS_URL='http://127.0.0.1:$PROMETHEUS_PORT'
export GW_AGENT_ADDR='127.0.0.1:$AGENT_PORT'
export GW_AGENT_TLS_ADDR='127.0.0.1:$AGENT_TLS_PORT'
export GW_WEB_CONFIG='$DIR/web-config.yml'
export GW_TLS_CA='$DIR/tls/agent.crt'
export GW_SCRAPE_USER='prometheus'
export GW_SCRAPE_PASSWORD='$(cat "$DIR/scrape.pw")'
export GW_MARIA_PASSWORD='$(agent_password)'
export GW_MARIA_PRIMARY_ADDR='127.0.0.1:$MARIA_PORT_PRIMARY'
export GW_MARIA_REPLICA_ADDR='127.0.0.1:$MARIA_PORT_REPLICA'
export GW_MARIA_PRIMARY_DSN='mysql://ghostwatch@127.0.0.1:$MARIA_PORT_PRIMARY/'
export GW_MARIA_REPLICA_DSN='mysql://ghostwatch@127.0.0.1:$MARIA_PORT_REPLICA/'
export GW_MARIA_ADMIN_PRIMARY_DSN='mysql://gwadmin:$(admin_password)@127.0.0.1:$MARIA_PORT_PRIMARY/'
export GW_MARIA_ADMIN_REPLICA_DSN='mysql://gwadmin:$(admin_password)@127.0.0.1:$MARIA_PORT_REPLICA/'
export GW_MARIA_DELAY_S='$2'
ENV
  promises_env >>"$tmp"
  tls_env >>"$tmp"
  patroni_env >>"$tmp"
  fleet_env >>"$tmp"
  mv "$tmp" "$ENV_FILE"
}

wait_streaming() {
  for _ in $(seq 1 100); do
    local n
    n=$(psql_admin "$PG_PORT_PRIMARY" -d postgres -tAc "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
    [ "$n" -ge 2 ] && return 0
    sleep 0.2
  done
  die "replicas are not streaming after 20s; see $DIR/*.log"
}

cmd_up() {
  local delay="" maria_delay="" patroni="" fleet=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --patroni) patroni=patroni; shift ;;
      --tls) TLS_WANTED=1; shift ;;
      --fleet) fleet=fleet; shift ;;
      --pg-delay-ms) delay="${2:-}"; shift 2 ;;
      --pg-delay-ms=*) delay="${1#*=}"; shift ;;
      --maria-delay-s) maria_delay="${2:-}"; shift 2 ;;
      --maria-delay-s=*) maria_delay="${1#*=}"; shift ;;
      *) die "up: unknown option '$1' (known: --pg-delay-ms N, --maria-delay-s N, --patroni, --tls, --fleet)" ;;
    esac
  done
  [ -x "$PG_BIN/postgres" ] || die "PostgreSQL 15 is not installed ($PG_BIN); run scripts/install-deps.sh"
  ensure_user
  { [ -n "$patroni" ] || patroni_enabled; } && patroni=patroni
  check_ports "$patroni"
  { [ -n "$fleet" ] || fleet_enabled; } && fleet_check_ports
  mkdir -p "$DIR"
  printf 'GW_PG_PORT_PRIMARY=%s\nGW_MARIA_PORT_PRIMARY=%s\n' "$PG_PORT_PRIMARY" "$MARIA_PORT_PRIMARY" >"$DIR/ports.sh"
  [ "$(id -u)" -eq 0 ] && chown "$SBX_USER" "$DIR"
  chmod 755 "$DIR"
  for f in admin.pw agent.pw; do
    [ -s "$DIR/$f" ] || { new_password >"$DIR/$f"; chmod 644 "$DIR/$f"; }
  done
  if [ -n "${TLS_WANTED:-}" ]; then
    tls_ca_material
    touch "$DIR/tls.enabled"
  fi
  init_primary
  pg_start pg-primary
  init_replica pg-replica-1 "$PG_PORT_REPLICA1"
  init_replica pg-replica-2 "$PG_PORT_REPLICA2"
  if [ -z "$delay" ]; then
    delay=$(sed -n "s/^recovery_min_apply_delay = '\([0-9]*\)ms'/\1/p" "$DIR/pg-replica-2/sandbox_delay.conf" 2>/dev/null || true)
    delay=${delay:-0}
  fi
  set_delay pg-replica-2 "$delay"
  name_replica pg-replica-1
  name_replica pg-replica-2
  pg_start pg-replica-1
  pg_start pg-replica-2
  sync_standby_conf
  wait_streaming
  haproxy_start
  redis_start
  memcached_start
  tls_material
  prometheus_start
  up_maria "$maria_delay"
  promises_up
  tls_up
  [ -n "$patroni" ] && patroni_up
  { [ -n "$fleet" ] || fleet_enabled; } && fleet_up
  write_env "$delay" "$MARIA_DELAY"
  say "up: pg-primary :$PG_PORT_PRIMARY, pg-replica-1 :$PG_PORT_REPLICA1, pg-replica-2 :$PG_PORT_REPLICA2 (apply delay ${delay}ms)"
  say "up: haproxy :$HAPROXY_PORT (round-robin over pg-replica-1 and pg-replica-2)"
  say "up: redis :$REDIS_PORT, memcached :$MEMCACHED_PORT, prometheus :$PROMETHEUS_PORT (scraping an agent at :$AGENT_PORT)"
  say "up: maria-primary :$MARIA_PORT_PRIMARY, maria-replica :$MARIA_PORT_REPLICA (MASTER_DELAY ${MARIA_DELAY}s); servers run as $(run_user)"
  say "up: pgpool :$PGPOOL_PORT (load balancing over the three; pg-replica-1 is the synchronous standby), postgres_exporter :$PG_EXPORTER_PORT, mysqld_exporter :$MYSQLD_EXPORTER_PORT"
  if tls_enabled; then
    say "up: TLS on every server (CA $DIR/tls/ca.crt): PostgreSQL role ghostwatch_cert by certificate, MariaDB user ghostwatch_x509 REQUIRE X509, redis-tls :$REDIS_TLS_PORT, memcached-tls :$MEMCACHED_TLS_PORT"
  fi
  echo "source $ENV_FILE"
  grep -E '^export GW_(PG|MARIA)_.*_DSN' "$ENV_FILE" | grep -v ADMIN | sed 's/^export /  /'
}

cmd_status() {
  local rc=0
  for s in $PG_SERVERS haproxy redis memcached prometheus $MARIA_SERVERS $PROMISE_SERVERS $(tls_servers) $(fleet_servers); do
    if server_running "$s"; then echo "$s: running on 127.0.0.1:$(server_port "$s")"; else echo "$s: stopped"; rc=1; fi
  done
  if server_running pt-heartbeat; then echo "pt-heartbeat: running"; fi
  patroni_status
  [ -f "$ENV_FILE" ] && echo "env: $ENV_FILE"
  return $rc
}

cmd_down() {
  [ -d "$DIR" ] || { say "nothing to stop"; return 0; }
  patroni_down
  fleet_down
  for s in memcached-tls redis-tls pt-heartbeat mysqld-exporter postgres-exporter pgpool maria-replica maria-primary prometheus memcached redis haproxy pg-replica-2 pg-replica-1 pg-primary; do
    server_stop "$s" || say "could not stop $s"
  done
  stop_strays "$DIR/"
  local left
  left=$(stray_pids "$DIR/" | tr '\n' ' ')
  [ -z "$left" ] || die "down: still running under $DIR after TERM and KILL: pid $left; $DIR is kept"
  rm -rf "$DIR"
  say "down: stopped and removed $DIR"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  stop) server_port "${2:-}" >/dev/null; server_stop "$2" ;;
  start) server_port "${2:-}" >/dev/null; server_start "$2" ;;
  set-delay)
    case "${2:-}" in
      pg-replica-1|pg-replica-2) set_delay "$2" "${3:-}" ;;
      maria-replica) set_maria_delay "${3:-}" ;;
      *) die "set-delay: NAME is pg-replica-1, pg-replica-2 or maria-replica" ;;
    esac ;;
  measure-delay)
    [ "${2:-}" = maria-replica ] || die "measure-delay: NAME is maria-replica"
    maria_visible_after_ms 10 || die "measure-delay: no write could be made on maria-primary" ;;
  check-delay)
    [ "${2:-}" = maria-replica ] || die "check-delay: NAME is maria-replica"
    want="${3:-$(current_maria_delay)}"
    [[ "$want" =~ ^[0-9]+$ ]] || die "check-delay: the delay must be a whole number of seconds, got '$want'"
    ensure_maria_delay "$want" ;;
  start-replication)
    [ "${2:-}" = maria-replica ] || die "start-replication: NAME is maria-replica"
    resume_maria_replication ;;
  patroni-*) patroni_command "$@" ;;
  pgpool-set) shift; pgpool_set "$@" ;;
  semisync) semisync "${2:-}" ;;
  tls-require) maria_tls_require "${2:-}" ;;
  fleet-up)
    [ -f "$ENV_FILE" ] || die "fleet-up: the sandbox is not up ($DIR); run: $0 up --fleet"
    # shellcheck disable=SC1090
    delay=$(source "$ENV_FILE"; echo "$GW_PG_DELAY_MS") maria=$(source "$ENV_FILE"; echo "$GW_MARIA_DELAY_S")
    fleet_up
    write_env "$delay" "$maria" ;;
  fleet-down) fleet_down; [ -f "$ENV_FILE" ] && write_env "$(source "$ENV_FILE"; echo "$GW_PG_DELAY_MS")" "$(source "$ENV_FILE"; echo "$GW_MARIA_DELAY_S")"; say "fleet-down: the fleet's agents, Prometheus servers and Alertmanager are stopped" ;;
  *) echo "usage: $0 up [--pg-delay-ms N] [--maria-delay-s N] [--patroni] [--tls] [--fleet] | fleet-up | fleet-down | tls-require on|off | status | down | stop NAME | start NAME | set-delay NAME N | measure-delay maria-replica | check-delay maria-replica [N] | start-replication maria-replica | pgpool-set KEY=VALUE... | semisync on|off | patroni-stop|patroni-start|patroni-kill|patroni-add|patroni-remove pg-mN | patroni-wait pg-mN..." >&2; exit 2 ;;
esac

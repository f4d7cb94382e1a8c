#!/usr/bin/env bash
# A local sandbox of real database servers on loopback, for the demo and the integration tests.
#
#   scripts/sandbox.sh up [--pg-delay-ms N]   start (or reconfigure) everything; idempotent
#   scripts/sandbox.sh status                 show what runs
#   scripts/sandbox.sh down                   stop what this script started and delete its data
#   scripts/sandbox.sh stop NAME | start NAME one server: pg-primary, pg-replica-1, pg-replica-2
#   scripts/sandbox.sh set-delay NAME MS      apply delay of a PostgreSQL replica, live
#
# PostgreSQL 15: a primary and two hot-standby streaming replicas (pg_basebackup -R);
# pg-replica-2 applies WAL --pg-delay-ms late (recovery_min_apply_delay). Servers run as an
# unprivileged user (ghostwatch-sbx when started as root). Data, sockets and logs live under
# $GHOSTWATCH_SANDBOX_DIR (default /tmp/ghostwatch-sandbox); DSNs go to its env.sh, which
# the demo and the tests source.
set -euo pipefail

DIR="${GHOSTWATCH_SANDBOX_DIR:-${TMPDIR:-/tmp}/ghostwatch-sandbox}"
ENV_FILE="$DIR/env.sh"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_PORT_PRIMARY="${GW_PG_PORT_PRIMARY:-55432}"
PG_PORT_REPLICA1=$((PG_PORT_PRIMARY + 1))
PG_PORT_REPLICA2=$((PG_PORT_PRIMARY + 2))
SBX_USER=ghostwatch-sbx

die() { echo "sandbox: $*" >&2; exit 1; }
say() { echo "sandbox: $*" >&2; }

run_user() { if [ "$(id -u)" -eq 0 ]; then echo "$SBX_USER"; else id -un; fi; }

as_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$SBX_USER" -- "$@"; else "$@"; fi
}

ensure_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  id "$SBX_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$SBX_USER"
}

pg_port() {
  case "$1" in
    pg-primary) echo "$PG_PORT_PRIMARY" ;;
    pg-replica-1) echo "$PG_PORT_REPLICA1" ;;
    pg-replica-2) echo "$PG_PORT_REPLICA2" ;;
    *) die "unknown server '$1' (known: pg-primary, pg-replica-1, pg-replica-2)" ;;
  esac
}

pg_running() { [ -d "$DIR/$1" ] && as_user "$PG_BIN/pg_ctl" -D "$DIR/$1" status >/dev/null 2>&1; }

pg_start() {
  pg_running "$1" && return 0
  [ -d "$DIR/$1" ] || die "$1 has no data directory; run 'up' first"
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
log_min_messages = warning
include_if_exists = 'sandbox_delay.conf'
CONF
}

init_primary() {
  local d="$DIR/pg-primary"
  [ -d "$d" ] && return 0
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
}

init_replica() {
  local name=$1 port=$2 d="$DIR/$1"
  [ -d "$d" ] && return 0
  say "initialising $name on port $port (pg_basebackup -R)"
  as_user env PGPASSWORD="$(admin_password)" "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT_PRIMARY" \
    -U gwadmin -D "$d" -R -X stream -c fast >"$DIR/$name-basebackup.log" 2>&1 ||
    die "pg_basebackup for $name failed; see $DIR/$name-basebackup.log"
  echo "port = $port" | as_user tee -a "$d/postgresql.conf" >/dev/null
}

set_delay() {
  local name=$1 ms=$2
  [[ "$ms" =~ ^[0-9]+$ ]] || die "delay must be a whole number of milliseconds, got '$ms'"
  echo "recovery_min_apply_delay = '${ms}ms'" | as_user tee "$DIR/$name/sandbox_delay.conf" >/dev/null
  if pg_running "$name"; then as_user "$PG_BIN/pg_ctl" -D "$DIR/$name" reload >/dev/null; fi
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
export GW_PG_DELAY_MS='$1'
ENV
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
  local delay=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --pg-delay-ms) delay="${2:-}"; shift 2 ;;
      --pg-delay-ms=*) delay="${1#*=}"; shift ;;
      *) die "up: unknown option '$1' (known: --pg-delay-ms N)" ;;
    esac
  done
  [ -x "$PG_BIN/postgres" ] || die "PostgreSQL 15 is not installed ($PG_BIN); run scripts/install-deps.sh"
  ensure_user
  mkdir -p "$DIR"
  [ "$(id -u)" -eq 0 ] && chown "$SBX_USER" "$DIR"
  chmod 755 "$DIR"
  for f in admin.pw agent.pw; do
    [ -s "$DIR/$f" ] || { new_password >"$DIR/$f"; chmod 644 "$DIR/$f"; }
  done
  init_primary
  pg_start pg-primary
  init_replica pg-replica-1 "$PG_PORT_REPLICA1"
  init_replica pg-replica-2 "$PG_PORT_REPLICA2"
  if [ -z "$delay" ]; then
    delay=$(sed -n "s/^recovery_min_apply_delay = '\([0-9]*\)ms'/\1/p" "$DIR/pg-replica-2/sandbox_delay.conf" 2>/dev/null || true)
    delay=${delay:-0}
  fi
  set_delay pg-replica-2 "$delay"
  pg_start pg-replica-1
  pg_start pg-replica-2
  wait_streaming
  write_env "$delay"
  say "up: pg-primary :$PG_PORT_PRIMARY, pg-replica-1 :$PG_PORT_REPLICA1, pg-replica-2 :$PG_PORT_REPLICA2 (apply delay ${delay}ms), as user $(run_user)"
  echo "source $ENV_FILE"
  grep '^export GW_PG_.*_DSN' "$ENV_FILE" | grep -v ADMIN | sed 's/^export /  /'
}

cmd_status() {
  local rc=0
  for s in pg-primary pg-replica-1 pg-replica-2; do
    if pg_running "$s"; then echo "$s: running on 127.0.0.1:$(pg_port "$s")"; else echo "$s: stopped"; rc=1; fi
  done
  [ -f "$ENV_FILE" ] && echo "env: $ENV_FILE"
  return $rc
}

cmd_down() {
  [ -d "$DIR" ] || { say "nothing to stop"; return 0; }
  for s in pg-replica-2 pg-replica-1 pg-primary; do pg_stop "$s" || say "could not stop $s"; done
  rm -rf "$DIR"
  say "down: stopped and removed $DIR"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  stop) pg_port "${2:-}" >/dev/null; pg_stop "$2" ;;
  start) pg_port "${2:-}" >/dev/null; pg_start "$2" ;;
  set-delay) pg_port "${2:-}" >/dev/null; set_delay "$2" "${3:-}" ;;
  *) echo "usage: $0 up [--pg-delay-ms N] | status | down | stop NAME | start NAME | set-delay NAME MS" >&2; exit 2 ;;
esac

# The sandbox's HA cluster (sourced by scripts/sandbox.sh; `up --patroni`): etcd (Debian's
# etcd-server) and Patroni (Debian's patroni) running PostgreSQL 15 members pg-m0, pg-m1, pg-m2 on
# loopback ports of their own, each with its REST API, so that discovery and switchovers are
# tested against the real thing. patronictl works with `-c $GW_PATRONI_CONFIG`.
#
# Ports, from the sandbox's PostgreSQL base port B: members' PostgreSQL B+30.., their REST APIs
# B+35.., etcd B+40 (clients) and B+41 (peers). At most 5 members (pg-m0 .. pg-m4).

PATRONI_DIR="$DIR/patroni"
PATRONI_SCOPE=gwsbx
PATRONI_PG_BASE=$((PG_PORT_PRIMARY + 30))
PATRONI_API_BASE=$((PG_PORT_PRIMARY + 35))
ETCD_PORT=$((PG_PORT_PRIMARY + 40))
ETCD_PEER_PORT=$((PG_PORT_PRIMARY + 41))
PATRONI_MEMBERS="pg-m0 pg-m1 pg-m2"

patroni_enabled() { [ -f "$DIR/patroni.enabled" ]; }

member_index() {
  [[ "$1" =~ ^pg-m([0-4])$ ]] || die "unknown Patroni member '$1' (pg-m0 .. pg-m4)"
  echo "${BASH_REMATCH[1]}"
}
member_pg_port() { echo $((PATRONI_PG_BASE + $(member_index "$1"))); }
member_api_port() { echo $((PATRONI_API_BASE + $(member_index "$1"))); }
member_api() { echo "http://127.0.0.1:$(member_api_port "$1")"; }

# The process of a member's Patroni (its command line names its config file), or of etcd: the
# program itself, not the runuser that started it (its command line says the same).
program_pid() {  # COMM PATTERN
  local pid
  for pid in $(pgrep -f -- "$2" || true); do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && { echo "$pid"; return 0; }
  done
  return 0
}
patroni_pid() { program_pid patroni "patroni $PATRONI_DIR/$1.yml"; }
etcd_pid() { program_pid etcd "etcd --name gwsbx --data-dir $PATRONI_DIR/etcd"; }

etcd_start() {
  [ -n "$(etcd_pid)" ] && return 0
  command -v etcd >/dev/null || die "etcd is not installed (Debian's etcd-server); run scripts/install-deps.sh"
  as_user mkdir -p "$PATRONI_DIR/etcd"
  as_user setsid etcd --name gwsbx --data-dir "$PATRONI_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "gwsbx=http://127.0.0.1:$ETCD_PEER_PORT" </dev/null >"$PATRONI_DIR/etcd.log" 2>&1 &
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "etcd did not become healthy; see $PATRONI_DIR/etcd.log"
}

# Patroni's settings for one member. The superuser, replication and rewind users share the
# sandbox's admin password; Patroni keeps them in a pgpass file of its own.
patroni_conf() {
  local name=$1 pg api pw
  pg=$(member_pg_port "$name")
  api=$(member_api_port "$name")
  pw=$(admin_password)
  cat <<CONF
scope: $PATRONI_SCOPE
name: $name
restapi:
  listen: 127.0.0.1:$api
  connect_address: 127.0.0.1:$api
etcd3:
  hosts: 127.0.0.1:$ETCD_PORT
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_log_hints: "on"
        wal_receiver_status_interval: 1s
  initdb:
    - encoding: UTF8
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
postgresql:
  listen: 127.0.0.1:$pg
  connect_address: 127.0.0.1:$pg
  data_dir: $PATRONI_DIR/$name
  bin_dir: $PG_BIN
  pgpass: $PATRONI_DIR/$name.pgpass
  authentication:
    replication: {username: replicator, password: "$pw"}
    superuser: {username: postgres, password: "$pw"}
    rewind: {username: rewinder, password: "$pw"}
  parameters:
    unix_socket_directories: $PATRONI_DIR
    max_connections: 100
CONF
}

patroni_member_start() {
  local name=$1
  [ -n "$(patroni_pid "$name")" ] && return 0
  command -v patroni >/dev/null || die "Patroni is not installed; run scripts/install-deps.sh"
  # Its PostgreSQL outlived its Patroni (an interrupted `up`): stopped, so that Patroni starts
  # it under its own control.
  if member_postgres_running "$name"; then
    as_user "$PG_BIN/pg_ctl" -D "$PATRONI_DIR/$name" -m fast -w -t 60 stop >/dev/null 2>&1 ||
      kill -KILL "$(member_postgres_pid "$name")" 2>/dev/null || true
  fi
  # Only the servers' user may read it: it holds the cluster's passwords.
  patroni_conf "$name" | as_user tee "$PATRONI_DIR/$name.yml" >/dev/null
  chmod 600 "$PATRONI_DIR/$name.yml"
  as_user setsid patroni "$PATRONI_DIR/$name.yml" </dev/null >>"$PATRONI_DIR/$name.log" 2>&1 &
  for _ in $(seq 1 50); do [ -n "$(patroni_pid "$name")" ] && return 0; sleep 0.1; done
  die "patroni $name did not start; see $PATRONI_DIR/$name.log"
}

# GET /cluster from the first member's API that answers.
patroni_cluster() {
  local m
  for m in pg-m0 pg-m1 pg-m2 pg-m3 pg-m4; do
    curl -sf --max-time 2 "$(member_api "$m")/cluster" 2>/dev/null && return 0
  done
  return 1
}

# "NAME ROLE STATE" per member, as the cluster reports them.
patroni_members() {
  patroni_cluster | python3 -c 'import json,sys
for m in json.load(sys.stdin)["members"]: print(m["name"], m["role"], m.get("state", ""))'
}

patroni_leader() { patroni_members 2>/dev/null | awk '$2 == "leader" {print $1}'; }

# Until a leader runs and every member in $1 (names) is running or streaming.
patroni_wait() {
  local want="$1" limit="${2:-120}" members ok
  for _ in $(seq 1 $((limit * 5))); do
    members=$(patroni_members 2>/dev/null || true)
    ok=1
    grep -q " leader running" <<<"$members" || ok=0
    for m in $want; do grep -Eq "^$m [a-z_]+ (running|streaming)$" <<<"$members" || ok=0; done
    [ "$ok" = 1 ] && return 0
    sleep 0.2
  done
  die "the Patroni cluster is not up after ${limit} s: $(tr '\n' ';' <<<"$members"); see $PATRONI_DIR/*.log"
}

psql_patroni() {
  local port=$1; shift
  PGPASSWORD="$(admin_password)" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"
}

# The agent's role and the app database, on whichever member leads (replicated to the others).
patroni_users() {
  local leader port
  leader=$(patroni_leader)
  port=$(member_pg_port "$leader")
  psql_patroni "$port" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'app'" | grep -q 1 ||
    psql_patroni "$port" -d postgres -c "CREATE DATABASE app"
  psql_patroni "$port" -d postgres <<SQL
DO \$\$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ghostwatch') THEN CREATE ROLE ghostwatch LOGIN; END IF; END\$\$;
ALTER ROLE ghostwatch PASSWORD '$(agent_password)';
GRANT CREATE, CONNECT ON DATABASE app TO ghostwatch;
SQL
}

patroni_up() {
  touch "$DIR/patroni.enabled"
  # A cluster whose first bootstrap was interrupted may have its DCS say "initialised" without
  # the users Patroni creates after initdb: it is made again, as the other servers are.
  if [ -d "$PATRONI_DIR" ] && [ ! -f "$DIR/patroni.done" ]; then
    say "the Patroni cluster's initialisation did not finish earlier; starting it over"
    patroni_down
    stop_strays "$PATRONI_DIR/"
    rm -rf "${PATRONI_DIR:?}"
  fi
  as_user mkdir -p "$PATRONI_DIR"
  etcd_start
  local m running=""
  for m in $PATRONI_MEMBERS; do
    patroni_member_start "$m"
    [ -z "$running" ] && patroni_wait "$m"  # the first one bootstraps the cluster alone
    running="$running $m"
  done
  # Members added later (patroni-add) come back with the others.
  for f in "$PATRONI_DIR"/pg-m[3-4].yml; do
    [ -e "$f" ] || continue
    m=$(basename "$f" .yml)
    patroni_member_start "$m"
    running="$running $m"
  done
  patroni_wait "$running"
  patroni_users
  touch "$DIR/patroni.done"
  say "up: Patroni cluster $PATRONI_SCOPE:$running (PostgreSQL :$PATRONI_PG_BASE.., REST API :$PATRONI_API_BASE.., etcd :$ETCD_PORT); leader $(patroni_leader)"
}

patroni_env() {
  patroni_enabled || return 0
  local urls="" m
  for m in pg-m0 pg-m1 pg-m2; do urls="$urls${urls:+,}$(member_api "$m")"; done
  cat <<ENV
export GW_PATRONI_URLS='$urls'
export GW_PATRONI_CONFIG='$PATRONI_DIR/pg-m0.yml'
export GW_PATRONI_PG_PORT_BASE='$PATRONI_PG_BASE'
export GW_PATRONI_SCOPE='$PATRONI_SCOPE'
export GW_PATRONI_ADMIN_PASSWORD='$(admin_password)'
ENV
}

# TERM: Patroni stops its PostgreSQL and takes its member key out of etcd (a clean leave).
patroni_member_stop() {
  local pid
  pid=$(patroni_pid "$1")
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do pid_alive "$pid" || return 0; sleep 0.1; done
  say "patroni $1 (pid $pid) did not stop within 30 s of TERM; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

# A crash: Patroni and its PostgreSQL killed at once, nothing cleaned up (a failover follows
# when it led).
patroni_member_kill() {
  local name=$1 pid pm
  pid=$(patroni_pid "$name")
  pm=$(head -1 "$PATRONI_DIR/$name/postmaster.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  [ -n "$pm" ] && kill -KILL "$pm" 2>/dev/null
  return 0
}

# A member removed for good: stopped, and its data gone.
patroni_member_remove() {
  patroni_member_stop "$1"
  rm -rf "${PATRONI_DIR:?}/$1" "$PATRONI_DIR/$1.yml" "$PATRONI_DIR/$1.pgpass"
}

patroni_down() {
  [ -d "$PATRONI_DIR" ] || return 0
  local m
  for m in pg-m4 pg-m3 pg-m2 pg-m1 pg-m0; do patroni_member_stop "$m"; done
  local pid
  pid=$(etcd_pid)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
  fi
}

patroni_status() {
  patroni_enabled || return 0
  [ -n "$(etcd_pid)" ] && echo "etcd: running on 127.0.0.1:$ETCD_PORT" || echo "etcd: stopped"
  patroni_members 2>/dev/null | sed 's/^/patroni /' || echo "patroni: no member answers"
}

# The ports the cluster needs that none of its own programs holds yet (an interrupted `up` may
# have left some running: they are reused, not reported as in the way).
patroni_free_ports_needed() {
  [ -n "$(etcd_pid)" ] || echo "$ETCD_PORT $ETCD_PEER_PORT"
  local m
  for m in $PATRONI_MEMBERS; do
    [ -n "$(patroni_pid "$m")" ] && continue
    member_postgres_running "$m" || echo "$(member_pg_port "$m")"
    echo "$(member_api_port "$m")"
  done
}

member_postgres_pid() { head -1 "$PATRONI_DIR/$1/postmaster.pid" 2>/dev/null || true; }
member_postgres_running() { pid_alive "$(member_postgres_pid "$1")"; }

# Commands: patroni-start|patroni-stop|patroni-kill|patroni-add|patroni-remove NAME, patroni-wait NAMES.
patroni_command() {
  local cmd=$1 name=${2:-}
  patroni_enabled || die "$cmd: the sandbox has no Patroni cluster; run 'up --patroni' first"
  [ -n "$name" ] || die "$cmd: name a member (pg-m0 .. pg-m4)"
  case "$cmd" in
    patroni-start) member_index "$name" >/dev/null; patroni_member_start "$name" ;;
    patroni-stop) member_index "$name" >/dev/null; patroni_member_stop "$name" ;;
    patroni-kill) member_index "$name" >/dev/null; patroni_member_kill "$name" ;;
    patroni-add) member_index "$name" >/dev/null; patroni_member_start "$name"; patroni_wait "$name" ;;
    patroni-remove) member_index "$name" >/dev/null; patroni_member_remove "$name" ;;
    patroni-wait) shift; patroni_wait "$*" ;;
  esac
}

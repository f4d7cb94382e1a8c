# Sourced by the bench scripts: the sandbox's admin credentials and ports from its env.sh, and
# clients that take the password through the environment (PGPASSWORD, MYSQL_PWD), never on a
# command line, where ps would show it to every user. Not exported: the sandbox script's own
# root logins go by socket, without a password.
: "${GW_PG_ADMIN_PRIMARY_DSN:?source the sandbox env.sh first}"
: "${GW_MARIA_ADMIN_PRIMARY_DSN:?source the sandbox env.sh first}"

dsn_field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
pg_password=$(dsn_field password "$GW_PG_ADMIN_PRIMARY_DSN")
pg_port_primary=$(dsn_field port "$GW_PG_ADMIN_PRIMARY_DSN")
pg_port_replica1=$(dsn_field port "$GW_PG_ADMIN_REPLICA1_DSN")
pg_port_replica2=$(dsn_field port "$GW_PG_ADMIN_REPLICA2_DSN")
maria_admin=${GW_MARIA_ADMIN_PRIMARY_DSN#mysql://}
maria_user=${maria_admin%%:*}
maria_password=${maria_admin#*:}
maria_password=${maria_password%@*}
maria_port_primary=${GW_MARIA_PRIMARY_ADDR##*:}
maria_port_replica=${GW_MARIA_REPLICA_ADDR##*:}

pg() { PGPASSWORD=$pg_password psql -XAtq -h 127.0.0.1 -p "$1" -U gwadmin -d app -c "$2"; }
maria() { MYSQL_PWD=$maria_password mysql -h127.0.0.1 -P"$1" -u"$maria_user" -N -e "$2"; }

# An agent's DSNs: its passwords stay ${...} references that the agent resolves from its own
# environment (the sandbox's env.sh exports them).
agent_pg_dsn() { echo "host=127.0.0.1 port=$1 dbname=app user=ghostwatch password=\${GW_PG_PASSWORD} application_name=$2"; }
agent_maria_dsn() { echo "mysql://ghostwatch:\${GW_MARIA_PASSWORD}@127.0.0.1:$1/"; }

# The probe "pg" over the sandbox's primary and both replicas, as an agent config's list item.
pg_probe_yaml() {  # INTERVAL POLL_INTERVAL APPLICATION_NAME
  cat <<YAML
  - name: pg
    kind: postgres
    primary: "$(agent_pg_dsn "$pg_port_primary" "$3")"
    interval: $1
    poll_interval: $2
    targets:
      - name: replica-1
        dsn: "$(agent_pg_dsn "$pg_port_replica1" "$3")"
      - name: replica-2
        dsn: "$(agent_pg_dsn "$pg_port_replica2" "$3")"
YAML
}

# "heap / all forks and index | live / dead | updates (HOT) | autovacuums" of the canary table,
# updates counted from UPDATES0 and HOT0 (default: since the statistics began).
canary_table_state() {  # [UPDATES0 HOT0]
  pg "$pg_port_primary" "SELECT pg_size_pretty(pg_relation_size(relid)) || ' / ' || pg_size_pretty(pg_total_relation_size(relid))
    || ' | ' || n_live_tup || ' / ' || n_dead_tup
    || ' | ' || (n_tup_upd - ${1:-0}) || ' (' || (n_tup_hot_upd - ${2:-0}) || ') | ' || autovacuum_count
    FROM pg_stat_user_tables WHERE relid = 'ghostwatch.canary'::regclass"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

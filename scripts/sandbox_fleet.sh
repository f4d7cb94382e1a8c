# Sourced by scripts/sandbox.sh: a fleet on top of the sandbox's servers, as
# docs/guides/fleet.md ("Running a fleet") lays it out.
#
#   cluster orders = the PostgreSQL cluster: agents orders-a and orders-b (an HA pair, each its
#                    own agent.id), scraped by Prometheus fleet-edge-orders in agent mode with
#                    external_labels {cluster: orders}
#   cluster billing = the MariaDB cluster: agent billing, scraped by fleet-edge-billing
#                    ({cluster: billing})
#   both edges remote-write to fleet-prometheus (--web.enable-remote-write-receiver), which
#   evaluates alerts/ghostwatch.rules.yml and the rules `ghostwatch rules` makes of the fleet's
#   SLOs ($DIR/fleet/slos.yml), and sends alerts to
#   Debian's Alertmanager, whose webhook receiver (scripts/fleet_webhook.py) appends every
#   notification to $DIR/fleet/notifications.jsonl.
#
# The rules are the shipped ones with one change: every `for:` of N minutes becomes N seconds,
# so that a notification follows a fault in seconds (the expressions and windows are unchanged;
# promtool's tests cover the real durations).
#
# The agents are the binary $GHOSTWATCH_BIN (default build/ghostwatch); they run as the caller.

FLEET_CENTRAL_PORT=$((PG_PORT_PRIMARY + 42))
FLEET_EDGE_ORDERS_PORT=$((PG_PORT_PRIMARY + 43))
FLEET_EDGE_BILLING_PORT=$((PG_PORT_PRIMARY + 44))
ALERTMANAGER_PORT=$((PG_PORT_PRIMARY + 45))
FLEET_WEBHOOK_PORT=$((PG_PORT_PRIMARY + 46))
AGENT_ORDERS_A_PORT=$((PG_PORT_PRIMARY + 47))
AGENT_ORDERS_B_PORT=$((PG_PORT_PRIMARY + 48))
AGENT_BILLING_PORT=$((PG_PORT_PRIMARY + 49))
FLEET_SERVERS="fleet-webhook alertmanager fleet-prometheus fleet-edge-orders fleet-edge-billing agent-orders-a agent-orders-b agent-billing"
FLEET_DIR="$DIR/fleet"
FLEET_TABLE=fleet_users

fleet_enabled() { [ -f "$DIR/fleet.enabled" ]; }
fleet_servers() { if fleet_enabled; then echo "$FLEET_SERVERS"; fi; }

fleet_server_port() {
  case "$1" in
    fleet-prometheus) echo "$FLEET_CENTRAL_PORT" ;;
    fleet-edge-orders) echo "$FLEET_EDGE_ORDERS_PORT" ;;
    fleet-edge-billing) echo "$FLEET_EDGE_BILLING_PORT" ;;
    alertmanager) echo "$ALERTMANAGER_PORT" ;;
    fleet-webhook) echo "$FLEET_WEBHOOK_PORT" ;;
    agent-orders-a) echo "$AGENT_ORDERS_A_PORT" ;;
    agent-orders-b) echo "$AGENT_ORDERS_B_PORT" ;;
    agent-billing) echo "$AGENT_BILLING_PORT" ;;
    *) return 1 ;;
  esac
}

fleet_agent_bin() {
  local bin="${GHOSTWATCH_BIN:-$REPO/build/ghostwatch}"
  [ -x "$bin" ] || die "the fleet's agents need the ghostwatch binary: build it (cmake -S . -B build && cmake --build build) or set GHOSTWATCH_BIN (looked for $bin)"
  echo "$bin"
}

# The fleet's SLOs, written as a user writes them, and their rules made by `ghostwatch rules`:
# orders' replicas within 250 ms (replica-2 applies WAL 200 ms late), billing's within 2 s (its
# replica's MASTER_DELAY is 1 s in the test sandbox).
fleet_slos() {
  cat <<CONF
slos:
  - name: orders-replicas
    probe: pg
    target_regex: "replica-.*"
    threshold: 250ms
    objective: 0.99
    window: 28d
  - name: billing-replica
    probe: maria
    threshold: 2s
    objective: 0.99
    window: 28d
CONF
}

fleet_rules() {
  fleet_slos >"$FLEET_DIR/slos.yml"
  "$(fleet_agent_bin)" rules --config "$FLEET_DIR/slos.yml" >"$FLEET_DIR/slo.rules.yml" ||
    die "ghostwatch rules refused $FLEET_DIR/slos.yml"
  cp "$REPO/alerts/ghostwatch.rules.yml" "$FLEET_DIR/ghostwatch.rules.yml"
  local f
  for f in ghostwatch.rules.yml slo.rules.yml; do
    sed -i -E 's/^(\s*for: )([0-9]+)m$/\1\2s/' "$FLEET_DIR/$f"
    chmod 644 "$FLEET_DIR/$f"
  done
}

fleet_central_config() {  # [rules]
  cat <<CONF
# The central Prometheus: no scrapes of its own; the edges remote-write to /api/v1/write.
global:
  evaluation_interval: 1s
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$ALERTMANAGER_PORT"]
CONF
  [ "${1:-}" = rules ] && printf 'rule_files:\n  - %s\n  - %s\n' "$FLEET_DIR/ghostwatch.rules.yml" "$FLEET_DIR/slo.rules.yml"
  return 0
}

# The central Prometheus starts without rules: they are loaded once both clusters' series
# arrive (fleet_load_rules), or its first evaluations, with seconds for minutes, would see no
# agent at all and notify "absent" for the seconds remote write takes to begin.
fleet_central_start() {
  pid_running fleet-prometheus && return 0
  fleet_rules
  fleet_central_config >"$FLEET_DIR/central.yml"
  chmod 644 "$FLEET_DIR/central.yml"
  as_user mkdir -p "$FLEET_DIR/central-data"
  as_user setsid prometheus --config.file="$FLEET_DIR/central.yml" --storage.tsdb.path="$FLEET_DIR/central-data" \
    --web.enable-remote-write-receiver --web.listen-address="127.0.0.1:$FLEET_CENTRAL_PORT" \
    </dev/null >"$FLEET_DIR/fleet-prometheus.log" 2>&1 &
  wait_http_ready fleet-prometheus "http://127.0.0.1:$FLEET_CENTRAL_PORT/-/ready" "--config.file=$FLEET_DIR/central.yml" "$FLEET_DIR/fleet-prometheus.log"
}

fleet_clusters_arrived() {
  curl -sf --max-time 2 "http://127.0.0.1:$FLEET_CENTRAL_PORT/api/v1/query" \
    --data-urlencode 'query=count(count by (cluster) (up{job="ghostwatch"} == 1))' 2>/dev/null |
    grep -q '"value":\[[0-9.]*,"2"\]'
}

fleet_rules_loaded() {
  curl -sf --max-time 2 "http://127.0.0.1:$FLEET_CENTRAL_PORT/api/v1/rules" 2>/dev/null | grep -q '"name":"ghostwatch.alerts"'
}

fleet_load_rules() {
  fleet_rules_loaded && return 0
  local i
  for i in $(seq 1 300); do fleet_clusters_arrived && break; sleep 0.1; done
  [ "$i" -lt 300 ] || die "the central Prometheus has no series from both clusters after 30 s; see $FLEET_DIR/fleet-edge-*.log"
  fleet_central_config rules >"$FLEET_DIR/central.yml"
  kill -HUP "$(cat "$DIR/fleet-prometheus.pid")"
  for _ in $(seq 1 100); do fleet_rules_loaded && return 0; sleep 0.1; done
  die "the central Prometheus did not load the rules; see $FLEET_DIR/fleet-prometheus.log"
}

fleet_edge_start() {  # CLUSTER AGENT_PORT...
  local cluster=$1; shift
  local name="fleet-edge-$cluster" port targets="" p
  port=$(fleet_server_port "$name")
  pid_running "$name" && return 0
  for p in "$@"; do targets+="${targets:+, }\"127.0.0.1:$p\""; done
  cat >"$FLEET_DIR/edge-$cluster.yml" <<CONF
# Prometheus in agent mode beside cluster $cluster: scrapes its agents, labels every series with
# the cluster, and forwards them to the central Prometheus.
global:
  scrape_interval: 1s
  external_labels:
    cluster: $cluster
scrape_configs:
  - job_name: ghostwatch
    static_configs:
      - targets: [$targets]
remote_write:
  - url: http://127.0.0.1:$FLEET_CENTRAL_PORT/api/v1/write
    queue_config:
      batch_send_deadline: 1s
CONF
  chmod 644 "$FLEET_DIR/edge-$cluster.yml"
  as_user mkdir -p "$FLEET_DIR/edge-$cluster-data"
  as_user setsid prometheus --enable-feature=agent --config.file="$FLEET_DIR/edge-$cluster.yml" \
    --storage.agent.path="$FLEET_DIR/edge-$cluster-data" --web.listen-address="127.0.0.1:$port" \
    </dev/null >"$FLEET_DIR/$name.log" 2>&1 &
  wait_http_ready "$name" "http://127.0.0.1:$port/-/ready" "--config.file=$FLEET_DIR/edge-$cluster.yml" "$FLEET_DIR/$name.log"
}

fleet_alertmanager_start() {
  pid_running alertmanager && return 0
  command -v prometheus-alertmanager >/dev/null || die "Alertmanager is not installed; run scripts/install-deps.sh"
  cat >"$FLEET_DIR/alertmanager.yml" <<CONF
# One notification per problem: the rules already merge an HA pair's agents (they drop instance
# and pod), and each group is one alert name on one cluster's target (or SLO).
route:
  receiver: webhook
  group_by: [alertname, cluster, probe, target, slo]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 24h
receivers:
  - name: webhook
    webhook_configs:
      - url: http://127.0.0.1:$FLEET_WEBHOOK_PORT/
        send_resolved: true
inhibit_rules:
  # A cluster without any agent: its agents' own alerts add nothing.
  - source_matchers: [alertname="GhostwatchAgentAbsent"]
    target_matchers: [alertname="GhostwatchAgentDown"]
    equal: [cluster]
  # A page for an SLO's target makes its ticket redundant.
  - source_matchers: [severity="page"]
    target_matchers: [severity="ticket"]
    equal: [cluster, probe, target, slo]
CONF
  chmod 644 "$FLEET_DIR/alertmanager.yml"
  as_user mkdir -p "$FLEET_DIR/alertmanager-data"
  # No cluster port: a single Alertmanager (its gossip would bind 0.0.0.0:9094).
  as_user setsid prometheus-alertmanager --config.file="$FLEET_DIR/alertmanager.yml" \
    --storage.path="$FLEET_DIR/alertmanager-data" --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
    --cluster.listen-address= </dev/null >"$FLEET_DIR/alertmanager.log" 2>&1 &
  wait_http_ready alertmanager "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready" "--config.file=$FLEET_DIR/alertmanager.yml" "$FLEET_DIR/alertmanager.log"
}

fleet_webhook_start() {
  pid_running fleet-webhook && return 0
  as_user touch "$FLEET_DIR/notifications.jsonl"
  # A copy the sandbox user can read wherever the repository lives.
  cp "$REPO/scripts/fleet_webhook.py" "$FLEET_DIR/fleet_webhook.py"
  chmod 644 "$FLEET_DIR/fleet_webhook.py"
  as_user setsid python3 "$FLEET_DIR/fleet_webhook.py" "$FLEET_WEBHOOK_PORT" "$FLEET_DIR/notifications.jsonl" \
    </dev/null >"$FLEET_DIR/fleet-webhook.log" 2>&1 &
  wait_http_ready fleet-webhook "http://127.0.0.1:$FLEET_WEBHOOK_PORT/healthz" "fleet_webhook.py $FLEET_WEBHOOK_PORT" "$FLEET_DIR/fleet-webhook.log"
}

fleet_pg_dsn() { echo "host=127.0.0.1 port=$1 dbname=app user=ghostwatch password=\${GW_PG_PASSWORD} connect_timeout=2"; }

fleet_orders_config() {  # AGENT_ID PORT
  cat <<CONF
agent:
  id: $1
  listen: 127.0.0.1:$2
probes:
  - name: pg
    kind: postgres
    primary: "$(fleet_pg_dsn "$PG_PORT_PRIMARY")"
    interval: 500ms
    poll_interval: 10ms
    timeout: 5s
    targets:
      - name: replica-1
        dsn: "$(fleet_pg_dsn "$PG_PORT_REPLICA1")"
      - name: replica-2
        dsn: "$(fleet_pg_dsn "$PG_PORT_REPLICA2")"
    read_paths:
      - name: haproxy
        dsn: "$(fleet_pg_dsn "$HAPROXY_PORT")"
    read_delays: [0ms, 1s]
  - name: users-cache
    kind: reconcile
    cache:
      redis: "127.0.0.1:$REDIS_PORT"
      key: "fleet:$1:{id}"
    source:
      probe: pg
      table: $FLEET_TABLE
      id_column: id
      version_column: version
    grace: 0ms
    every: 5s
CONF
}

fleet_billing_config() {
  cat <<CONF
agent:
  id: billing
  listen: 127.0.0.1:$AGENT_BILLING_PORT
probes:
  - name: maria
    kind: mysql
    primary: "mysql://ghostwatch:\${GW_MARIA_PASSWORD}@127.0.0.1:$MARIA_PORT_PRIMARY/"
    interval: 1200ms
    poll_interval: 10ms
    timeout: 10s
    targets:
      - name: replica
        dsn: "mysql://ghostwatch:\${GW_MARIA_PASSWORD}@127.0.0.1:$MARIA_PORT_REPLICA/"
CONF
}

fleet_agent_start() {  # NAME
  local name=$1 port config bin
  pid_running "$name" && return 0
  port=$(fleet_server_port "$name")
  config="$FLEET_DIR/$name.yaml"
  case "$name" in
    agent-orders-a) fleet_orders_config orders-a "$port" >"$config" ;;
    agent-orders-b) fleet_orders_config orders-b "$port" >"$config" ;;
    agent-billing) fleet_billing_config >"$config" ;;
  esac
  bin=$(fleet_agent_bin)
  GW_PG_PASSWORD="$(agent_password)" GW_MARIA_PASSWORD="$(agent_password)" \
    setsid "$bin" run --config "$config" </dev/null >"$FLEET_DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" && return 0
    pid_running "$name" || break
    sleep 0.1
  done
  die "$name did not start; see $FLEET_DIR/$name.log"
}

# The reconciler's table: ten users at version 1, readable by the agent's role.
fleet_table() {
  psql_admin "$PG_PORT_PRIMARY" -d app -q -c "SET client_min_messages = warning;
    CREATE TABLE IF NOT EXISTS $FLEET_TABLE (id int PRIMARY KEY, version bigint NOT NULL);
    INSERT INTO $FLEET_TABLE SELECT g, 1 FROM generate_series(1, 10) g ON CONFLICT DO NOTHING;
    GRANT SELECT ON $FLEET_TABLE TO ghostwatch;" >/dev/null
}

fleet_check_ports() {
  local s port
  for s in $FLEET_SERVERS; do
    pid_running "$s" && continue
    port=$(fleet_server_port "$s")
    port_in_use "$port" && port_taken "$port" "$s"
  done
  return 0
}

fleet_up() {
  fleet_agent_bin >/dev/null
  fleet_check_ports
  mkdir -p "$FLEET_DIR"
  [ "$(id -u)" -eq 0 ] && chown "$SBX_USER" "$FLEET_DIR"
  chmod 755 "$FLEET_DIR"
  touch "$DIR/fleet.enabled"
  fleet_table
  fleet_webhook_start
  fleet_alertmanager_start
  fleet_central_start
  fleet_agent_start agent-orders-a
  fleet_agent_start agent-orders-b
  fleet_agent_start agent-billing
  fleet_edge_start orders "$AGENT_ORDERS_A_PORT" "$AGENT_ORDERS_B_PORT"
  fleet_edge_start billing "$AGENT_BILLING_PORT"
  fleet_load_rules
  say "up: fleet: agents orders-a :$AGENT_ORDERS_A_PORT and orders-b :$AGENT_ORDERS_B_PORT (PostgreSQL, cluster orders), billing :$AGENT_BILLING_PORT (MariaDB, cluster billing); edge Prometheus in agent mode :$FLEET_EDGE_ORDERS_PORT, :$FLEET_EDGE_BILLING_PORT -> central Prometheus :$FLEET_CENTRAL_PORT -> Alertmanager :$ALERTMANAGER_PORT -> webhook :$FLEET_WEBHOOK_PORT ($FLEET_DIR/notifications.jsonl)"
}

fleet_down() {
  local s
  for s in agent-billing agent-orders-b agent-orders-a fleet-edge-billing fleet-edge-orders fleet-prometheus alertmanager fleet-webhook; do
    pid_stop "$s" || say "could not stop $s"
  done
  rm -rf "${FLEET_DIR:?}" "$DIR/fleet.enabled"
}

fleet_start_server() {
  case "$1" in
    fleet-prometheus) fleet_central_start; fleet_load_rules ;;
    fleet-edge-orders) fleet_edge_start orders "$AGENT_ORDERS_A_PORT" "$AGENT_ORDERS_B_PORT" ;;
    fleet-edge-billing) fleet_edge_start billing "$AGENT_BILLING_PORT" ;;
    alertmanager) fleet_alertmanager_start ;;
    fleet-webhook) fleet_webhook_start ;;
    agent-*) fleet_agent_start "$1" ;;
  esac
}

fleet_env() {
  fleet_enabled || return 0
  cat <<ENV
export GW_FLEET_PROMETHEUS_URL='http://127.0.0.1:$FLEET_CENTRAL_PORT'
export GW_FLEET_ALERTMANAGER_URL='http://127.0.0.1:$ALERTMANAGER_PORT'
export GW_FLEET_NOTIFICATIONS='$FLEET_DIR/notifications.jsonl'
export GW_FLEET_AGENT_ORDERS_A_ADDR='127.0.0.1:$AGENT_ORDERS_A_PORT'
export GW_FLEET_AGENT_ORDERS_B_ADDR='127.0.0.1:$AGENT_ORDERS_B_PORT'
export GW_FLEET_AGENT_BILLING_ADDR='127.0.0.1:$AGENT_BILLING_PORT'
ENV
}

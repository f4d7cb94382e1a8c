#!/usr/bin/env bash
# Soak: one `ghostwatch run` with 100 targets polled every 10 ms for 30 minutes while something
# breaks every minute; the agent's RSS, open descriptors and threads sampled every 10 s.
#
#   bench/soak.sh [MINUTES] [OUT_DIR]        defaults: 30, build/soak
#
# A benchmark, not a test: it needs 30 quiet minutes and a sandbox of its own
# (PostgreSQL 29432-29434, MariaDB 29306-29307, the rest up to 29456), so it can run beside the
# test sandbox and a demo. It prints the series and a verdict; the method is in bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
out=${2:-build/soak}
mkdir -p "$out"
out=$(cd "$out" && pwd)

export GHOSTWATCH_SANDBOX_DIR="${TMPDIR:-/tmp}/ghostwatch-soak-sandbox"
export GW_PG_PORT_PRIMARY=29432 GW_MARIA_PORT_PRIMARY=29306
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target ghostwatch cache_pipeline >/dev/null
scripts/sandbox.sh up --pg-delay-ms 50 --maria-delay-s 0 >/dev/null
# shellcheck disable=SC1091
source "$GHOSTWATCH_SANDBOX_DIR/env.sh"
sbx=$GHOSTWATCH_SANDBOX_DIR
port=$((GW_PG_PORT_PRIMARY + 23))  # the sandbox's Prometheus scrapes this one

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$out/pipeline.pid" ] && kill -KILL "$(cat "$out/pipeline.pid")" 2>/dev/null || true
  for s in pg-replica-1 pg-replica-2; do signal_server "$s" CONT 2>/dev/null || true; done
  scripts/sandbox.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the config: 100 targets -------------------------------------------------------------
# postgres probe: 40 targets over the two replicas and 10 caches fed by the reference pipeline;
# every target polled every 10 ms whether a canary is outstanding or not (idle_poll_interval);
# mysql probe: 50 targets on the replica; a reconciler over 5000 Redis entries every 10 s.
pg_sql() { psql -qAtX "$GW_PG_ADMIN_PRIMARY_DSN" -c "$1"; }
pg_sql "DROP TABLE IF EXISTS soak_users; CREATE TABLE soak_users (id int PRIMARY KEY, version bigint NOT NULL);
        INSERT INTO soak_users SELECT g, 1 FROM generate_series(1, 5000) g; GRANT SELECT ON soak_users TO ghostwatch"
fill_redis() {
  seq 1 5000 | awk '{printf "SET soak:user:%d {\"version\":1}\n", $1}' |
    redis-cli -h 127.0.0.1 -p "${GW_REDIS_ADDR##*:}" >/dev/null
}
fill_redis

config="$out/soak.yaml"
timing_and_targets() {  # the same for both probes
  cat <<YAML
    interval: 1s
    poll_interval: 10ms
    idle_poll_interval: 10ms  # polled all along, the heaviest case
    timeout: 30s
    connect_timeout: 1s
    query_timeout: 1s
    targets:
YAML
}
{
  cat <<YAML
agent:
  id: soak
  listen: 127.0.0.1:$port
probes:
  - name: pg
    kind: postgres
    primary: "\${GW_PG_PRIMARY_DSN} password=\${GW_PG_PASSWORD}"
YAML
  timing_and_targets
  for i in $(seq -w 1 40); do
    printf '      - name: pg-%s\n        dsn: "${GW_PG_REPLICA%s_DSN} password=${GW_PG_PASSWORD}"\n' "$i" $((10#$i % 2 + 1))
  done
  for i in $(seq 1 5); do
    printf '      - name: redis-%s\n        redis: "${GW_REDIS_ADDR}"\n        key: "canary:{agent}:{probe}"\n' "$i"
    printf '      - name: memcached-%s\n        memcached: "${GW_MEMCACHED_ADDR}"\n        key: "canary:{agent}:{probe}"\n' "$i"
  done
  cat <<YAML
  - name: maria
    kind: mysql
    primary: "mysql://ghostwatch:\${GW_MARIA_PASSWORD}@\${GW_MARIA_PRIMARY_ADDR}/"
YAML
  timing_and_targets
  for i in $(seq -w 1 50); do
    printf '      - name: maria-%s\n        dsn: "mysql://ghostwatch:${GW_MARIA_PASSWORD}@${GW_MARIA_REPLICA_ADDR}/"\n' "$i"
  done
  cat <<YAML
  - name: users-cache
    kind: reconcile
    every: 10s
    cache:
      redis: "\${GW_REDIS_ADDR}"
      key: "soak:user:{id}"
      format: json
      field: /version
    source:
      dsn: "\${GW_PG_PRIMARY_DSN} password=\${GW_PG_PASSWORD}"
      table: soak_users
      id_column: id
      version_column: version
    grace: 1s
YAML
} >"$config"
build/ghostwatch check-config "$config" >/dev/null

# --- the agent and the cache pipeline ------------------------------------------------------
build/ghostwatch run --config "$config" >"$out/agent.log" 2>&1 &
agent=$!
pids+=("$agent")
# The pipeline is the "application" feeding the caches; it is restarted when a fault kills it.
(
  while kill -0 "$agent" 2>/dev/null; do
    build/tests/cache_pipeline "$GW_PG_PRIMARY_DSN password=$GW_PG_PASSWORD" soak pg 20 "$GW_REDIS_ADDR" \
      "$GW_MEMCACHED_ADDR" >>"$out/pipeline.log" 2>&1 &
    echo $! >"$out/pipeline.pid"
    wait $! || sleep 1
  done
) &
pids+=("$!")
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done

# --- faults: one a minute, each undone after 20 s ------------------------------------------
server_pids() {  # a PostgreSQL server's postmaster and every process under it
  local main
  main=$(head -1 "$sbx/$1/postmaster.pid")
  echo "$main" $(pgrep -P "$main")
}
signal_server() { kill -"$2" $(server_pids "$1"); }
maria_replica() { mysql --socket="$sbx/maria-replica.sock" -uroot -e "$1"; }
faults=(
  "stop pg-replica-1 (fast shutdown)|scripts/sandbox.sh stop pg-replica-1|scripts/sandbox.sh start pg-replica-1"
  "freeze pg-replica-2 (SIGSTOP: connections hang, no reset)|signal_server pg-replica-2 STOP|signal_server pg-replica-2 CONT"
  "restart Redis and FLUSHALL|scripts/sandbox.sh stop redis|scripts/sandbox.sh start redis; redis-cli -p ${GW_REDIS_ADDR##*:} FLUSHALL >/dev/null; fill_redis"
  "restart memcached|scripts/sandbox.sh stop memcached|scripts/sandbox.sh start memcached"
  "STOP SLAVE SQL_THREAD on the MariaDB replica|maria_replica 'STOP SLAVE SQL_THREAD'|scripts/sandbox.sh start-replication maria-replica >/dev/null"
  "stop the PostgreSQL primary|scripts/sandbox.sh stop pg-primary|scripts/sandbox.sh start pg-primary"
  "pause replay on pg-replica-2|psql -qAtX \"$GW_PG_ADMIN_REPLICA2_DSN\" -c 'SELECT pg_wal_replay_pause()' >/dev/null|psql -qAtX \"$GW_PG_ADMIN_REPLICA2_DSN\" -c 'SELECT pg_wal_replay_resume()' >/dev/null"
  "20 SIGHUPs in a row (reloads)|for _ in \$(seq 1 20); do kill -HUP $agent; done|true"
  "stop the MariaDB replica server|scripts/sandbox.sh stop maria-replica|scripts/sandbox.sh start maria-replica"
  "terminate the agent's sessions on both replicas|psql -qAtX \"$GW_PG_ADMIN_REPLICA1_DSN\" -c \"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'ghostwatch'\" >/dev/null; psql -qAtX \"$GW_PG_ADMIN_REPLICA2_DSN\" -c \"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'ghostwatch'\" >/dev/null|true"
)

metric_sum() {  # NAME_REGEX: sum of the matching samples in /metrics
  awk -v re="$1" '$0 !~ /^#/ && $1 ~ re { s += $2 } END { printf "%d", s }' <<<"$metrics"
}
series="$out/series.csv"
echo "seconds,rss_kb,fds,threads,targets_up,writes_ok,writes_error,fault" >"$series"
start=$(date +%s)
end=$((start + minutes * 60))
fault_index=0
undo=""
active=""
echo "soak: $minutes min, 100 targets at poll_interval 10ms, agent pid $agent; series in $series"
while [ "$(date +%s)" -lt "$end" ]; do
  kill -0 "$agent" 2>/dev/null || { echo "soak: the agent died"; tail -20 "$out/agent.log"; exit 1; }
  elapsed=$(( $(date +%s) - start ))
  # A fault at 30 s past each minute (after the first), undone 20 s later.
  if [ -z "$active" ] && [ "$elapsed" -ge 60 ] && [ $(( elapsed % 60 )) -ge 30 ] && [ $(( elapsed % 60 )) -lt 40 ]; then
    IFS='|' read -r active inject undo <<<"${faults[$(( fault_index % ${#faults[@]} ))]}"
    fault_index=$((fault_index + 1))
    echo "soak: t=${elapsed}s fault: $active"
    eval "$inject" >>"$out/faults.log" 2>&1 || echo "soak: (injecting failed: see $out/faults.log)"
    undo_at=$((elapsed + 20))
  elif [ -n "$active" ] && [ "$elapsed" -ge "$undo_at" ]; then
    eval "$undo" >>"$out/faults.log" 2>&1 || echo "soak: (undoing failed: see $out/faults.log)"
    echo "soak: t=${elapsed}s undone: $active"
    active=""
  fi
  if [ $(( elapsed % 10 )) -eq 0 ] && [ "${last_sample:-x}" != "$elapsed" ]; then
    last_sample=$elapsed
    metrics=$(curl -s -m 2 "http://127.0.0.1:$port/metrics" || true)
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$agent/status")
    threads=$(awk '/^Threads:/ { print $2 }' "/proc/$agent/status")
    fds=$(find "/proc/$agent/fd" -mindepth 1 -maxdepth 1 | wc -l)
    echo "$elapsed,$rss,$fds,$threads,$(metric_sum '^ghostwatch_target_up'),$(metric_sum '^ghostwatch_canary_writes_total.*result="ok"'),$(metric_sum '^ghostwatch_canary_writes_total.*result="error"'),${active:-}" >>"$series"
  fi
  sleep 0.5
done
[ -z "$active" ] || eval "$undo" >>"$out/faults.log" 2>&1 || true

# --- the verdict ----------------------------------------------------------------------------
# Warm-up: the first pass through the fault list. Each fault's first occurrence grows the pools
# (connections, buffers, the allocator's free lists) to their high-water mark; a leak shows as
# growth on the later passes. RSS also dips during an outage (the downed targets' buffers are
# returned), so growth is measured against the level at the end of the warm-up.
warm=$(( 60 + 60 * ${#faults[@]} ))
cat "$series"
awk -F, -v warm="$warm" 'NR > 1 && $1 >= warm {
    n++; if (n == 1) base = $2
    if (n == 1 || $2 < rmin) rmin = $2; if ($2 > rmax) rmax = $2; last = $2
    if (n == 1 || $3 < fmin) fmin = $3; if ($3 > fmax) fmax = $3
    if (n == 1 || $4 < tmin) tmin = $4; if ($4 > tmax) tmax = $4
  }
  END {
    printf "after the %d s warm-up (%d samples): RSS %.1f MB at its end, then %.1f-%.1f MB, %.1f MB at the last sample (highest %+d kB); fds %d-%d, threads %d-%d\n",
      warm, n, base / 1024, rmin / 1024, rmax / 1024, last / 1024, rmax - base, fmin, fmax, tmin, tmax
    exit !(n > 0 && rmax - base <= 1024)
  }' "$series" && echo "soak: RSS flat: never more than 1 MB above its level at the end of the warm-up" ||
  echo "soak: RSS rose more than 1 MB above its level at the end of the warm-up"
sleep 25  # the last fault's recovery
metrics=$(curl -s -m 2 "http://127.0.0.1:$port/metrics" || true)
echo "soak: targets up at the end: $(metric_sum '^ghostwatch_target_up') of 100"

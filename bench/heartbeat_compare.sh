#!/usr/bin/env bash
# Accuracy beside pt-heartbeat (percona-toolkit): the same MariaDB replica measured at once by
# pt-heartbeat at --interval 1 and 0.1 and by ghostwatch with 1 ms polling and with server-side
# waits, for each replication delay given.
#
#   bench/heartbeat_compare.sh [SECONDS_PER_RUN=20] [DELAYS_S="1 0"]
#
# Needs a running sandbox (scripts/sandbox.sh up; source its env.sh) and a release build. It
# sets the replica's MASTER_DELAY through scripts/sandbox.sh set-delay and puts back the one it
# found. A benchmark, not a test: the method and the figures are in bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
delays=${2:-"1 0"}
command -v pt-heartbeat >/dev/null || { echo "pt-heartbeat is missing (apt-get install percona-toolkit)" >&2; exit 2; }
[ -x build/ghostwatch ] || { echo "build/ghostwatch is missing: build first" >&2; exit 2; }

source bench/sandbox_env.sh
admin_user=$maria_user
admin_password=$maria_password
primary_port=$maria_port_primary
replica_port=$maria_port_replica
work=$(mktemp -d)
original_delay=${GW_MARIA_DELAY_S:-0}
cleanup() {
  scripts/sandbox.sh set-delay maria-replica "$original_delay" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# pt-heartbeat's DBD::mysql reads the password from MYSQL_PWD too (bench/sandbox_env.sh).
sql() { maria "$@"; }
pt_dsn() { echo "h=127.0.0.1,P=$1,u=$admin_user"; }

# p50, p90 and |p50 - truth| of seconds, one per line on stdin; then samples per second.
summarise() {
  local truth=$1 duration=$2
  sort -g | awk -v truth="$truth" -v d="$duration" '
    { x[NR] = $1 }
    END {
      if (NR == 0) { printf "%8s %8s %10s %10s\n", "-", "-", "-", "0"; exit }
      p50 = x[int((NR - 1) * 0.5) + 1]; p90 = x[int((NR - 1) * 0.9) + 1]
      err = p50 - truth; if (err < 0) err = -err
      printf "%8.1f %8.1f %10.1f %10.1f\n", p50 * 1000, p90 * 1000, err * 1000, NR / d
    }'
}

# pt-heartbeat at `interval`, in a database of its own: --update on the primary, --monitor on
# the replica; the monitor's readings go to $work/monitor-<db>.log.
start_pt_heartbeat() {
  local interval=$1 db=$2
  sql "$primary_port" "CREATE DATABASE IF NOT EXISTS $db"
  MYSQL_PWD=$admin_password pt-heartbeat --update --create-table --interval "$interval" --run-time $((seconds + 10)) \
    -D "$db" "$(pt_dsn "$primary_port")" >"$work/update-$db.log" 2>&1 &
  pids+=($!)
  sleep 4  # the table and the first beats reach the (delayed) replica
  MYSQL_PWD=$admin_password pt-heartbeat --monitor --interval "$interval" --run-time "$seconds" --master-server-id "$server_id" \
    -D "$db" "$(pt_dsn "$replica_port")" >"$work/monitor-$db.log" 2>&1 &
  pids+=($!)
}

# "1.10s [  0.02s,  0.00s,  0.00s ]": the first figure is the lag of that reading.
pt_heartbeat_summary() {
  sed -n 's/^ *\([0-9.]*\)s \[.*/\1/p' "$work/monitor-$1.log" | summarise "$2" "$seconds"
}

# ghostwatch on the same replica: two probes, a canary every 100 ms each (10 samples/s, as
# pt-heartbeat at --interval 0.1), one polled every 1 ms, one waited for on the server.
run_ghostwatch() {
  echo "probes:" >"$work/gw.yaml"
  for wait in poll server; do
    cat >>"$work/gw.yaml" <<EOF
  - name: $wait
    kind: mysql
    primary: "mysql://ghostwatch:\${GW_MARIA_PASSWORD}@\${GW_MARIA_PRIMARY_ADDR}/"
    interval: 100ms
    poll_interval: 1ms
    wait: $wait
    timeout: 10s
    targets:
      - name: replica
        dsn: "mysql://ghostwatch:\${GW_MARIA_PASSWORD}@\${GW_MARIA_REPLICA_ADDR}/"
EOF
  done
  build/ghostwatch probe --config "$work/gw.yaml" --duration "${seconds}s" --output json >"$work/gw.json" 2>/dev/null || true
}

# The probe's one target in the JSON report (pretty-printed: a field per line).
ghostwatch_summary() {
  awk -v probe="$1" -v truth="$2" -v d="$seconds" '
    /"name": "(poll|server)"/ { current = ($0 ~ "\"" probe "\"") }
    /"reported_lag": \{/ { nested = 1 }
    nested { if ($0 ~ /\}/) nested = 0; next }  # the server-reported lag has fields of the same names
    current && /"(samples|p50_seconds|p90_seconds|resolution_seconds)":/ {
      gsub(/[",]/, ""); value[$1] = $2
    }
    END {
      if (value["samples:"] + 0 == 0) { printf "%8s %8s %10s %10s  (resolution -)\n", "-", "-", "-", "0"; exit }
      p50 = value["p50_seconds:"]; err = p50 - truth; if (err < 0) err = -err
      printf "%8.1f %8.1f %10.1f %10.1f  (resolution %.2f ms)\n", p50 * 1000, value["p90_seconds:"] * 1000,
             err * 1000, value["samples:"] / d, value["resolution_seconds:"] * 1000
    }' "$work/gw.json"
}

server_id=$(sql "$primary_port" 'SELECT @@server_id')
for delay in $delays; do
  scripts/sandbox.sh set-delay maria-replica "$delay" >/dev/null
  pids=()
  # All four at once, so that they measure the same replica through the same moments.
  start_pt_heartbeat 1 gw_hb_1s
  start_pt_heartbeat 0.1 gw_hb_100ms
  run_ghostwatch
  wait "${pids[@]}" || true
  echo "--- MariaDB replica, MASTER_DELAY=$delay s; the four side by side for ${seconds} s ---"
  printf '%-34s %8s %8s %10s %10s\n' "" "p50 ms" "p90 ms" "|p50-d| ms" "samples/s"
  printf '%-34s ' "pt-heartbeat --interval 1"; pt_heartbeat_summary gw_hb_1s "$delay"
  printf '%-34s ' "pt-heartbeat --interval 0.1"; pt_heartbeat_summary gw_hb_100ms "$delay"
  printf '%-34s ' "ghostwatch, 1 ms polling"; ghostwatch_summary poll "$delay"
  printf '%-34s ' "ghostwatch, server-side waits"; ghostwatch_summary server "$delay"
done
sql "$primary_port" "DROP DATABASE IF EXISTS gw_hb_1s; DROP DATABASE IF EXISTS gw_hb_100ms"

#!/usr/bin/env bash
# The settings users trust to prevent stale reads, measured end to end on the sandbox with
# `ghostwatch probe`, as docs/guides/promises.md's table of promises:
#   - pgpool-II load balancing over the primary and both replicas (pg-replica-2 200 ms behind):
#     alone, with delay_threshold at two values, with disable_load_balance_on_write = transaction
#     and = always; through a plain path (a fresh connection per read) and a session path (the
#     path writes its own row and reads it back on that connection); stale share at 0 ms, 10 ms,
#     100 ms and 1 s after the write;
#   - PostgreSQL synchronous_commit = local, on, remote_write, remote_apply, one probe each side by
#     side, with pg-replica-1 the synchronous standby made 200 ms late: stale share at 0 ms on it
#     and the write latency;
#   - MariaDB asynchronous and semi-synchronous replication (MASTER_DELAY 1 s): the same figures.
#
#   bench/promises.sh [CANARIES=200]
#
# Needs the sandbox made as the tests make it (scripts/sandbox.sh up --pg-delay-ms 200
# --maria-delay-s 1; source its env.sh) and a release build. Puts back pgpool's defaults,
# pg-replica-1's zero delay and asynchronous MariaDB replication when it ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
canaries=${1:-200}
[[ "$canaries" =~ ^[1-9][0-9]*$ ]] || { echo "CANARIES must be a positive whole number, got '$canaries'" >&2; exit 2; }
: "${GW_PGPOOL_DSN:?source the sandbox env.sh first (scripts/sandbox.sh up)}"
[ -x build/ghostwatch ] || { echo "build/ghostwatch is missing: build first" >&2; exit 2; }
command -v jq >/dev/null || { echo "jq is missing (apt-get install jq)" >&2; exit 2; }
sandbox() { scripts/sandbox.sh "$@" >/dev/null 2>&1; }
work=$(mktemp -d)
cleanup() {
  sandbox pgpool-set defaults || true
  sandbox set-delay pg-replica-1 0 || true
  sandbox semisync off || true
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

header=$(printf 'agent:\n  id: promises-%s\nprobes:' "$$")$'\n'

# PROBE INTERVAL [SETTINGS]: a postgres probe over both replicas.
pg_probe() {
  local settings=""
  [ -z "${3:-}" ] || settings="session_settings: {$3}"
  cat <<EOF
  - name: $1
    kind: postgres
    primary: "\${GW_PG_PRIMARY_DSN} password=\${GW_PG_PASSWORD}"
    interval: $2
    timeout: 10s
    $settings
    targets:
      - {name: replica-1, dsn: "\${GW_PG_REPLICA1_DSN} password=\${GW_PG_PASSWORD}"}
      - {name: replica-2, dsn: "\${GW_PG_REPLICA2_DSN} password=\${GW_PG_PASSWORD}"}
EOF
}

# NAME CONFIG_TEXT CANARIES: the JSON report in $work/NAME.json.
run() {
  printf '%s' "$2" >"$work/$1.yaml"
  build/ghostwatch probe --config "$work/$1.yaml" --canaries "$3" --output json >"$work/$1.json" 2>"$work/$1.err" || true
  jq -e '.probes | length > 0' "$work/$1.json" >/dev/null 2>&1 || { echo "the run $1 failed:" >&2; cat "$work/$1.err" >&2; exit 1; }
}

# REPORT PROBE PATH DELAY: "12.5% (25/200)", the stale share of the answered reads.
stale() {
  jq -r --arg p "$2" --arg r "$3" --arg d "$4" '
    .probes[] | select(.name == $p) | .read_paths[] | select(.name == $r) | .delays[] | select(.delay == $d)
    | (.reads - .errors) as $n
    | if $n > 0 then "\(100 * .stale / $n * 10 | round / 10)% (\(.stale)/\($n))" else "-" end' "$work/$1.json"
}

# REPORT PROBE: "p50 1.2 ms, p99 14.0 ms" of the canary writes.
write_ms() {
  jq -r --arg p "$2" '.probes[] | select(.name == $p)
    | "\(.write_p50_seconds * 10000 | round / 10) ms | \(.write_p99_seconds * 10000 | round / 10) ms"' "$work/$1.json"
}

echo "### pgpool-II: stale reads through it, pg-replica-2 200 ms behind ($canaries canaries each, 100 ms apart)"
echo
echo "| pgpool setting | path | 0 ms | 10 ms | 100 ms | 1 s |"
echo "| --- | --- | --- | --- | --- | --- |"
pgpool_row() {  # LABEL NAME PGPOOL_SETTINGS...
  local label=$1 name=$2
  shift 2
  scripts/sandbox.sh pgpool-set defaults "$@" >/dev/null 2>&1 || { echo "pgpool-set $* failed" >&2; exit 1; }
  run "$name" "$header$(pg_probe pg 100ms)
    read_paths:
      - {name: plain, dsn: \"\${GW_PGPOOL_DSN} password=\${GW_PG_PASSWORD}\", max_concurrent: 16}
      - {name: session, dsn: \"\${GW_PGPOOL_DSN} password=\${GW_PG_PASSWORD}\", session: true, max_concurrent: 16}
    read_delays: [0ms, 10ms, 100ms, 1s]
" "$canaries"
  local path
  for path in plain session; do
    echo "| $label | $path | $(stale "$name" pg "$path" 0ms) | $(stale "$name" pg "$path" 10ms) | $(stale "$name" pg "$path" 100ms) | $(stale "$name" pg "$path" 1s) |"
  done
}
pgpool_row "load balancing alone (disable_load_balance_on_write = off)" lb disable_load_balance_on_write=off
pgpool_row "delay_threshold = 1 byte, sr_check_period = 1 s" dt1 disable_load_balance_on_write=off delay_threshold=1 sr_check_period=1
pgpool_row "delay_threshold = 1 MB, sr_check_period = 1 s" dt1m disable_load_balance_on_write=off delay_threshold=1000000 sr_check_period=1
pgpool_row "disable_load_balance_on_write = transaction (the default)" tx disable_load_balance_on_write=transaction
pgpool_row "disable_load_balance_on_write = always" always disable_load_balance_on_write=always
sandbox pgpool-set defaults

commit_canaries=$(( (canaries + 1) / 2 ))
echo
echo "### Commit settings: a read of the replica at the commit's ack ($commit_canaries canaries each)"
echo
echo "| setting | replica | stale at 0 ms | write p50 | write p99 |"
echo "| --- | --- | --- | --- | --- |"
sandbox set-delay pg-replica-1 200 || { echo "set-delay pg-replica-1 200 failed" >&2; exit 1; }
config="$header"
for setting in local on remote_write remote_apply; do
  config+="$(pg_probe "$setting" 300ms "synchronous_commit: $setting")
    read_paths:
      - {name: standby, targets: [replica-1]}
    read_delays: [0ms]
"
done
run commit "$config" "$commit_canaries"
for setting in local on remote_write remote_apply; do
  echo "| PostgreSQL synchronous_commit = $setting | pg-replica-1 (synchronous standby, 200 ms apply delay) | $(stale commit "$setting" standby 0ms) | $(write_ms commit "$setting") |"
done
sandbox set-delay pg-replica-1 0

maria_run() {  # NAME
  run "$1" "$header  - name: maria
    kind: mysql
    primary: \"mysql://ghostwatch:\${GW_MARIA_PASSWORD}@\${GW_MARIA_PRIMARY_ADDR}/\"
    interval: 300ms
    timeout: 10s
    targets:
      - {name: replica, dsn: \"mysql://ghostwatch:\${GW_MARIA_PASSWORD}@\${GW_MARIA_REPLICA_ADDR}/\"}
    read_paths:
      - {name: replica, targets: [replica]}
    read_delays: [0ms]
" "$commit_canaries"
}
maria_run async
scripts/sandbox.sh semisync on >/dev/null 2>&1 || { echo "semisync on failed" >&2; exit 1; }
maria_run semisync
sandbox semisync off
echo "| MariaDB asynchronous replication | maria-replica (MASTER_DELAY 1 s) | $(stale async maria replica 0ms) | $(write_ms async maria) |"
echo "| MariaDB semi-synchronous replication | maria-replica (MASTER_DELAY 1 s) | $(stale semisync maria replica 0ms) | $(write_ms semisync maria) |"

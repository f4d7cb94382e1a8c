#!/usr/bin/env bash
# The container image end to end (CI runs it from scripts/test.sh, as root, with the sandbox up
# and its env.sh sourced): builds it (scripts/image.sh), runs it as the user 65532 with a
# read-only root filesystem, no capabilities, explicit ulimits and the config directory mounted
# read-only, on the host's network (the sandbox listens on loopback); checks /readyz, replica-2's
# lag samples in /metrics (its apply delay), a reload by SIGHUP through `podman kill`, HTTPS with
# basic auth through the TLS shims in the image, and a clean stop (exit 0 well within the grace
# period). Prints the image's size and layers.
#
#   scripts/image-check.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"
engine=${CONTAINER_ENGINE:-podman}
[ -n "${GW_PG_PRIMARY_DSN:-}" ] || { echo "image-check: source the sandbox's env.sh first" >&2; exit 1; }

say() { echo "image-check: $*"; }
fail() { echo "image-check: FAILED: $*" >&2; [ -z "${name:-}" ] || "$engine" logs "$name" 2>&1 | tail -20 >&2; exit 1; }

# GHOSTWATCH_IMAGE: an image scripts/image.sh has just built (scripts/test.sh builds it while the
# sanitizer build compiles); otherwise it is built here.
image=${GHOSTWATCH_IMAGE:-$(scripts/image.sh "$build_dir" | tail -1)}
size=$("$engine" image inspect --format '{{.Size}}' "$image")
say "built $image: $((size / 1000000)) MB uncompressed ($size bytes)"
"$engine" history --format '  {{.Size}}  {{.CreatedBy}}' "$image" | cut -c1-140
[ "$size" -lt 60000000 ] || fail "the image is $size bytes, over 60 MB"

port=$(( ${GW_PG_PORT_PRIMARY:-26432} + 28 ))
name=gw-image-check-$$
config=$(mktemp -d)
chmod 0755 "$config"  # the container's user reads it
cleanup() {
  "$engine" rm -f "$name" >/dev/null 2>&1 || true
  rm -rf "$config"
}
trap cleanup EXIT
# The config directory as the container sees it: readable by its user, passwords by environment.
write_config() {  # INTERVAL [WEB_CONFIG LINE]
  cat >"$config/ghostwatch.yaml" <<CONF
agent:
  id: image-check
  listen: 127.0.0.1:$port
${2:-}
probes:
  - name: pg
    kind: postgres
    primary: "\${GW_PG_PRIMARY_DSN} password=\${GW_PG_PASSWORD}"
    interval: $1
    targets:
      - name: replica-1
        dsn: "\${GW_PG_REPLICA1_DSN} password=\${GW_PG_PASSWORD}"
      - name: replica-2
        dsn: "\${GW_PG_REPLICA2_DSN} password=\${GW_PG_PASSWORD}"
CONF
  chmod 0644 "$config/ghostwatch.yaml"
}
run_image() {
  "$engine" run -d --name "$name" --network host --read-only --user 65532:65532 --cap-drop ALL \
    --security-opt no-new-privileges --ulimit nofile=1024:1024 --ulimit nproc=256:256 \
    -v "$config:/etc/ghostwatch:ro" -e GW_PG_PRIMARY_DSN -e GW_PG_REPLICA1_DSN -e GW_PG_REPLICA2_DSN -e GW_PG_PASSWORD \
    "$image" >/dev/null
}
source scripts/agent_checks.sh
samples() { awk -v n="$(metric 'ghostwatch_visibility_lag_seconds_count{probe="pg",target="replica-2"}')" 'BEGIN { exit !(n >= 5) }'; }

write_config 200ms
run_image
eventually 30 http_ok "http://127.0.0.1:$port/readyz" || fail "/readyz never answered 200"
say "ready: /readyz 200 (user $("$engine" inspect --format '{{.Config.User}}' "$name"), read-only root: $("$engine" inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$name"))"
eventually 30 samples || fail "no lag samples of replica-2 in /metrics"
count=$(metric 'ghostwatch_visibility_lag_seconds_count{probe="pg",target="replica-2"}')
sum=$(metric 'ghostwatch_visibility_lag_seconds_sum{probe="pg",target="replica-2"}')
mean_ms=$(awk -v s="$sum" -v n="$count" 'BEGIN { printf "%.1f", s / n * 1000 }')
delay=${GW_PG_DELAY_MS:-200}
awk -v m="$mean_ms" -v d="$delay" 'BEGIN { exit !(m >= d - 30 && m < d + 1000) }' ||
  fail "replica-2's mean lag $mean_ms ms is not its apply delay of $delay ms"
say "metrics: replica-2 $count samples, mean lag $mean_ms ms (apply delay $delay ms)"

loaded_at=$(metric ghostwatch_config_last_reload_success_timestamp_seconds)
sleep 1.1  # so that the success timestamp visibly moves
write_config 300ms
"$engine" kill --signal HUP "$name" >/dev/null
eventually 10 reloaded_since "$loaded_at" || fail "SIGHUP did not reload the config"
[ "$(metric ghostwatch_config_last_reload_successful)" = 1 ] || fail "the reload by SIGHUP failed"
"$engine" logs "$name" 2>&1 | grep -q 'config reloaded: 0 unchanged, 1 restarted' || fail "the log does not show the restarted probe"
say "reload: podman kill --signal HUP re-read the config (1 probe restarted)"

started=$SECONDS
"$engine" stop -t 20 "$name" >/dev/null
took=$((SECONDS - started))
code=$("$engine" inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || fail "the agent exited $code on SIGTERM"
[ "$took" -lt 15 ] || fail "the agent took $took s to stop"
say "stop: exit 0 in ${took} s on SIGTERM"
"$engine" rm "$name" >/dev/null

# HTTPS with basic auth: civetweb reaches OpenSSL through the shims the image carries.
mkdir -p "$config/tls"
cp "$GW_SANDBOX_DIR/tls/agent.crt" "$GW_SANDBOX_DIR/tls/agent.key" "$config/tls/"
sed -e 's|cert_file: .*|cert_file: tls/agent.crt|' -e 's|key_file: .*|key_file: tls/agent.key|' "$GW_WEB_CONFIG" \
  >"$config/web-config.yml"
chmod -R a+rX "$config"
write_config 200ms "  web_config: /etc/ghostwatch/web-config.yml"
run_image
eventually 30 http_ok --cacert "$GW_TLS_CA" -u "$GW_SCRAPE_USER:$GW_SCRAPE_PASSWORD" "https://127.0.0.1:$port/metrics" || fail "no HTTPS from the image"
[ "$(http_status --cacert "$GW_TLS_CA" "https://127.0.0.1:$port/metrics")" = 401 ] || fail "HTTPS without credentials was not refused"
"$engine" stop -t 20 "$name" >/dev/null
say "HTTPS with basic auth: 200 with credentials, 401 without"

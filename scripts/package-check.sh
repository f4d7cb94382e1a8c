#!/usr/bin/env bash
# The Debian package end to end (CI runs it from scripts/test.sh, as root, with the sandbox up and
# its env.sh sourced): builds the .deb, lints it, installs it with dpkg, checks the unit with
# systemd-analyze (verify, and an exposure of 2.0 or lower), runs the unit's ExecStart as its
# service user against the sandbox (plain HTTP, then HTTPS with basic auth through the installed
# OpenSSL shims), reloads it as ExecReload does, stops it, and purges the package.
#
#   scripts/package-check.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"
[ "$(id -u)" -eq 0 ] || { echo "package-check: needs root (dpkg -i)" >&2; exit 1; }
[ -n "${GW_PG_PRIMARY_DSN:-}" ] || { echo "package-check: source the sandbox's env.sh first" >&2; exit 1; }

say() { echo "package-check: $*"; }
fail() { echo "package-check: FAILED: $*" >&2; exit 1; }

deb=$(scripts/package.sh "$build_dir" | tail -1)
say "built $deb ($(du -k "$deb" | cut -f1) KiB)"
dpkg-deb -c "$deb" | awk '{print "  " $6}' | grep -v '/$'

lint=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v 'running with root privileges' || true)
errors=$(printf '%s\n' "$lint" | grep -c '^E:' || true)
warnings=$(printf '%s\n' "$lint" | grep -c '^W:' || true)
[ -n "$lint" ] && printf '%s\n' "$lint" | sed 's/^/  /'
say "lintian: $errors errors, $warnings warnings"
[ "$errors" -eq 0 ] || fail "lintian reports errors"

# Whatever happens, no agent of the service user outlives the check (a leftover would hold the
# port of the next run), and the package goes.
cleanup() {
  pkill -u ghostwatch -f "ghostwatch run" 2>/dev/null || true
  dpkg --purge ghostwatch >/dev/null 2>&1 || true
}
trap cleanup EXIT
dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb"
say "installed: $(ghostwatch version)"
ghostwatch check-config /etc/ghostwatch/ghostwatch.yaml >/dev/null || fail "check-config rejects the shipped config"
say "check-config accepts /etc/ghostwatch/ghostwatch.yaml"
[ "$(stat -c '%U:%G %a' /etc/ghostwatch/ghostwatch.yaml)" = "root:ghostwatch 640" ] || fail "config ownership/mode"
man -w ghostwatch >/dev/null || fail "no man page ghostwatch(1)"

unit=/lib/systemd/system/ghostwatch.service
verify=$(systemd-analyze verify "$unit" 2>&1 || true)
# verify also parses the units around ours and complains about theirs (Debian's pgpool2.service
# uses an obsolete StandardOutput=syslog): shown, but only what it says of ours fails the check.
others=$(printf '%s\n' "$verify" | grep -v -e "^$unit" -e '^ghostwatch.service' | sed '/^$/d' || true)
[ -z "$others" ] || say "systemd-analyze verify about other packages' units (not checked): $(printf '%s' "$others" | tr '\n' ' ')"
verify=$(printf '%s\n' "$verify" | grep -e "^$unit" -e '^ghostwatch.service' || true)
[ -z "$verify" ] || { printf '%s\n' "$verify" | sed 's/^/  /'; fail "systemd-analyze verify"; }
exposure=$(systemd-analyze security --offline=true "$unit" 2>&1 | sed -n 's/.*Overall exposure level for ghostwatch.service: \([0-9.]*\).*/\1/p')
say "systemd-analyze verify: clean; security exposure: $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }' || fail "exposure $exposure is above 2.0"

# The unit's own command line and user, run by hand (systemd is not PID 1 here).
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
service_user=$(sed -n 's/^User=//p' "$unit")
port=$(( ${GW_PG_PORT_PRIMARY:-26432} + 25 ))
backup=$(mktemp)
cp -p /etc/ghostwatch/ghostwatch.yaml "$backup"
write_config() {
  cat >/etc/ghostwatch/ghostwatch.yaml <<CONF
agent:
  id: package-check
  listen: 127.0.0.1:$port
$1
probes:
  - name: pg
    kind: postgres
    primary: "\${GW_PG_PRIMARY_DSN} password=\${GW_PG_PASSWORD}"
    interval: 200ms
    targets:
      - name: replica-1
        dsn: "\${GW_PG_REPLICA1_DSN} password=\${GW_PG_PASSWORD}"
CONF
}
run_unit() {
  # shellcheck disable=SC2086
  runuser -u "$service_user" -- env GW_PG_PRIMARY_DSN="$GW_PG_PRIMARY_DSN" GW_PG_REPLICA1_DSN="$GW_PG_REPLICA1_DSN" \
    GW_PG_PASSWORD="$GW_PG_PASSWORD" $exec_start >"$1" 2>&1 &
}
source scripts/agent_checks.sh

write_config ""
log=$(mktemp)
run_unit "$log"
pid=$!
eventually 10 http_ok "http://127.0.0.1:$port/readyz" || { cat "$log"; fail "the service never became ready"; }
replica_up() { [ "$(metric 'ghostwatch_target_up{probe="pg",target="replica-1"}')" = 1 ]; }
eventually 10 replica_up || { cat "$log"; fail "replica-1 is not up in /metrics"; }
agent_pid=$(pgrep -o -u "$service_user" -f "ghostwatch run")
loaded_at=$(metric ghostwatch_config_last_reload_success_timestamp_seconds)
kill -HUP "$agent_pid"   # what ExecReload sends
eventually 10 reloaded_since "$loaded_at" || { cat "$log"; fail "SIGHUP did not reload the config"; }
[ "$(metric ghostwatch_config_last_reload_successful)" = 1 ] || fail "the reload on SIGHUP failed"
kill -TERM "$agent_pid"
wait "$pid" || fail "the service did not exit 0 on SIGTERM"
say "ExecStart as $service_user: ready, replica-1 up, reloaded on SIGHUP, stopped on SIGTERM"

# HTTPS with basic auth, from the installed shims in /usr/lib/ghostwatch.
install -d -m 0750 -g "$service_user" /etc/ghostwatch/tls
install -m 0640 -g "$service_user" "$GW_SANDBOX_DIR/tls/agent.crt" "$GW_SANDBOX_DIR/tls/agent.key" /etc/ghostwatch/tls/
sed -e 's|cert_file: .*|cert_file: tls/agent.crt|' -e 's|key_file: .*|key_file: tls/agent.key|' "$GW_WEB_CONFIG" \
  >/etc/ghostwatch/web-config.yml
chgrp "$service_user" /etc/ghostwatch/web-config.yml
chmod 0640 /etc/ghostwatch/web-config.yml
write_config "  web_config: /etc/ghostwatch/web-config.yml"
run_unit "$log"
pid=$!
eventually 10 http_ok --cacert "$GW_TLS_CA" -u "$GW_SCRAPE_USER:$GW_SCRAPE_PASSWORD" "https://127.0.0.1:$port/metrics" ||
  { cat "$log"; fail "no HTTPS from the installed agent"; }
[ "$(http_status --cacert "$GW_TLS_CA" "https://127.0.0.1:$port/metrics")" = 401 ] ||
  fail "HTTPS without credentials was not refused"
kill -TERM "$(pgrep -o -u "$service_user" -f "ghostwatch run")"
wait "$pid" || fail "the HTTPS service did not exit 0"
say "ExecStart as $service_user over HTTPS: 200 with credentials, 401 without"
cp -p "$backup" /etc/ghostwatch/ghostwatch.yaml
rm -f "$backup" "$log" /etc/ghostwatch/web-config.yml
rm -rf /etc/ghostwatch/tls

dpkg --purge ghostwatch >/dev/null || fail "dpkg --purge"
[ ! -e /usr/bin/ghostwatch ] && [ ! -e /etc/ghostwatch ] || fail "purge left files behind"
trap - EXIT
say "purged: /usr/bin/ghostwatch and /etc/ghostwatch are gone"

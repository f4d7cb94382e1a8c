# Sourced by scripts/package-check.sh and scripts/image-check.sh: waiting on an agent that
# listens on 127.0.0.1:$port and reading its HTTP answers.

eventually() {  # SECONDS COMMAND...: true once COMMAND succeeds within SECONDS, tried every 0.1 s
  local tries=$(($1 * 10))
  shift
  for _ in $(seq 1 "$tries"); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}
http_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" || true; }  # CURL_ARGS...: "000" when none
http_ok() { [ "$(http_status "$@")" = 200 ]; }
# The body first, then the search: `curl | grep -q` under pipefail fails when grep has its line
# and quits before curl's last write (about one scrape in 200 here).
metric() {  # NAME: its value in the agent's /metrics, or nothing
  local body
  body=$(curl -s --max-time 5 "http://127.0.0.1:$port/metrics") || return 0
  awk -v name="$1" '$1 == name { print $2 }' <<<"$body"
}
# True once the last successful reload is later than BEFORE (its time, from metric).
reloaded_since() {  # BEFORE
  awk -v a="$(metric ghostwatch_config_last_reload_success_timestamp_seconds)" -v b="$1" 'BEGIN { exit !(a > b) }'
}

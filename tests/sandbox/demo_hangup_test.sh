#!/usr/bin/env bash
# The terminal closed under scripts/demo.sh (a window closed, an ssh session dropped) must take
# the demo's agent and its whole sandbox down, as Ctrl-C does. The demo runs under script(1),
# which is killed with SIGKILL once the agent serves: the terminal hangs up under the demo.
#
#   tests/sandbox/demo_hangup_test.sh   (its own directory and ports: PostgreSQL 21432-21434,
#                                       MariaDB 21306-21307, the rest up to 21456, the agent 21455)
set -euo pipefail
cd "$(dirname "$0")/../.."
export GHOSTWATCH_SANDBOX_DIR="${TMPDIR:-/tmp}/ghostwatch-demo-hangup-test"
export GW_PG_PORT_PRIMARY=21432 GW_MARIA_PORT_PRIMARY=21306 GW_AGENT_PORT=21455
dir=$GHOSTWATCH_SANDBOX_DIR
log="$dir.terminal.log"
term=""
cleanup() {
  [ -z "$term" ] || kill -KILL "$term" 2>/dev/null || true
  pkill -KILL -f -- "--listen 127.0.0.1:$GW_AGENT_PORT" 2>/dev/null || true
  scripts/sandbox.sh down >/dev/null 2>&1 || true
}
fail() { echo "FAIL: $*" >&2; echo "--- the demo's terminal ---" >&2; tail -20 "$log" >&2 || true; cleanup; exit 1; }
left_running() { pgrep -fa -- "$dir/|--listen 127.0.0.1:$GW_AGENT_PORT" | grep -v demo_hangup_test || true; }

cleanup
trap cleanup EXIT
# close_terminal_when WHAT CONDITION...: starts the demo on a terminal of its own, closes the
# terminal (script(1) killed) once CONDITION holds, then requires that nothing of it is left.
close_terminal_when() {
  local what=$1; shift
  # dash, not bash, between script(1) and the demo, as in CI: dash does not exec its last command.
  SHELL=/bin/sh setsid script -q -e -f -c "scripts/demo.sh" "$log" </dev/null >/dev/null 2>&1 &
  term=$!
  for _ in $(seq 1 1800); do
    "$@" && break
    kill -0 "$term" 2>/dev/null || fail "the demo ended before $what"
    sleep 0.1
  done
  "$@" || fail "the demo did not reach '$what' within 180 s"
  local servers
  servers=$(scripts/sandbox.sh status 2>/dev/null | grep -c ': running' || true)
  kill -KILL "$term"
  wait "$term" 2>/dev/null || true
  term=""
  for _ in $(seq 1 600); do
    [ -z "$(left_running)" ] && [ ! -d "$dir" ] && break
    sleep 0.1
  done
  local left
  left=$(left_running)
  [ -z "$left" ] || fail "60 s after the terminal closed $what these still run: $left"
  [ ! -d "$dir" ] || fail "the sandbox directory $dir is still there after the terminal closed $what"
  echo "terminal closed $what ($servers sandbox servers running): nothing left, the sandbox removed"
}
agent_serves() { curl -sf "http://127.0.0.1:$GW_AGENT_PORT/healthz" >/dev/null 2>&1; }
sandbox_half_up() { [ -f "$dir/pg-primary.done" ] && ! [ -f "$dir/maria-replica.done" ]; }

close_terminal_when "while the sandbox came up" sandbox_half_up
close_terminal_when "while the agent ran" agent_serves
rm -f "$log"
echo "PASS: a terminal closed under scripts/demo.sh, while its sandbox comes up or while its agent runs, leaves nothing running"

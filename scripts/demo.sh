#!/usr/bin/env bash
# The main job on a fresh machine: installs what is missing, builds, starts the sandbox (two
# PostgreSQL replicas, the second applying WAL 200 ms late; a MariaDB replica with
# MASTER_DELAY=1), runs one agent with both probes and a live per-replica lag table in the
# terminal while serving http://127.0.0.1:9739/metrics. Ctrl-C stops the agent and the sandbox.
#
#   scripts/demo.sh [--pg-delay-ms N] [--maria-delay-s N] [--keep]
#   --keep leaves the sandbox running afterwards
#   GW_AGENT_PORT (default 9739) moves the agent's port; GHOSTWATCH_SANDBOX_DIR, GW_PG_PORT_PRIMARY
#   and GW_MARIA_PORT_PRIMARY move the sandbox (scripts/sandbox.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

delay=200
maria_delay=1
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --pg-delay-ms) delay="$2"; shift 2 ;;
    --maria-delay-s) maria_delay="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--pg-delay-ms N] [--maria-delay-s N] [--keep]" >&2; exit 2 ;;
  esac
done

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target ghostwatch

# The sandbox's Prometheus scrapes the demo agent (alert rules loaded).
export GW_AGENT_PORT="${GW_AGENT_PORT:-9739}"
if [ "$keep" = 0 ]; then
  # The sandbox goes down however the demo ends. A signal that kills bash skips its EXIT trap, and
  # a closed terminal sends SIGHUP: so HUP and TERM become an exit. (While the agent runs, bash
  # takes the signal once the agent has stopped, as it does on a hangup.)
  trap 'scripts/sandbox.sh down' EXIT
  trap 'exit 129' HUP
  trap 'exit 143' TERM
fi
scripts/sandbox.sh up --pg-delay-ms "$delay" --maria-delay-s "$maria_delay"
# shellcheck disable=SC1091
source "${GHOSTWATCH_SANDBOX_DIR:-${TMPDIR:-/tmp}/ghostwatch-sandbox}/env.sh"

echo
echo "demo: agent running; status page http://127.0.0.1:$GW_AGENT_PORT/, metrics on /metrics; Ctrl-C stops everything"
echo "demo: Prometheus with the alert rules at $GW_PROMETHEUS_URL (try /alerts)"
echo "demo: a one-shot report meanwhile: build/ghostwatch probe --config examples/sandbox.yaml"
echo
# Not exec: the trap above must run after the agent exits. Ctrl-C stops it with status 0.
status=0
build/ghostwatch run --config examples/sandbox.yaml --listen "127.0.0.1:$GW_AGENT_PORT" --live || status=$?
if [ "$status" -ne 0 ]; then
  echo "demo: the agent exited with status $status (its port taken? GW_AGENT_PORT=N scripts/demo.sh moves it)" >&2
fi
exit "$status"

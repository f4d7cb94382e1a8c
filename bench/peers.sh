#!/usr/bin/env bash
# Peers side by side: postgres_exporter, mysqld_exporter, pt-heartbeat and ghostwatch at the same
# time against the sandbox, through scenarios with injected truth (a steady apply delay under
# writes, an idle primary, replay paused, the WAL receiver / IO thread cut, a write burst), in
# one table: what each reports and what was true, whether and when it flagged a stop, its CPU
# and its scrape size. Method: bench/peers.py's header; figures: docs/benchmarks/peers.md.
#
#   bench/peers.sh [SECONDS_PER_SCENARIO=20] [SCENARIOS=steady,idle,paused,cut,burst]
#
# Needs the sandbox as the tests make it (scripts/sandbox.sh up --pg-delay-ms 200
# --maria-delay-s 1; source its env.sh) and a release build. Starts pt-heartbeat and stops it
# again; puts replay, the WAL receiver and the MariaDB replica's threads back as they were.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${GW_PG_EXPORTER_URL:?source the sandbox env.sh first (scripts/sandbox.sh up)}"
[ -x build/ghostwatch ] || { echo "build/ghostwatch is missing: build first" >&2; exit 2; }
# Debian's interpreter: the standard library is all it needs.
exec /usr/bin/python3 bench/peers.py "$@"

#!/usr/bin/env bash
# scripts/check_layering.sh fails on an include that runs up the layers and names it, and passes
# a tree whose includes all run down.
set -euo pipefail
check=$1
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree"/{common,exporters,probes/postgres,agent}
echo '#include "common/clock.h"' >"$tree/exporters/sink.h"
echo '#include "exporters/sink.h"' >"$tree/probes/postgres/probe.cpp"
echo '#include "probes/postgres/probe.h"' >"$tree/agent/main.cpp"
echo '#include <vector>' >"$tree/common/clock.h"
"$check" "$tree" >/dev/null || { echo "a tree whose includes run down was refused" >&2; exit 1; }

printf '#include <string>\n  #include "probes/postgres/probe.h"\n' >"$tree/exporters/sink.h"
echo '#include "agent/config.h"' >"$tree/common/clock.h"
if out=$("$check" "$tree" 2>&1); then echo "includes that run up the layers were let through" >&2; exit 1; fi
grep -qF 'exporters/sink.h:2 includes "probes/postgres/probe.h"' <<<"$out" || { echo "not named: $out" >&2; exit 1; }
grep -qF 'common/clock.h:1 includes "agent/config.h"' <<<"$out" || { echo "not named: $out" >&2; exit 1; }
grep -qF '2 include(s)' <<<"$out" || { echo "miscounted: $out" >&2; exit 1; }
echo "ok: a downward tree passes; two upward includes are named with file and line"

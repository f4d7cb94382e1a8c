#!/usr/bin/env bash
# Fails when an include runs up the layers: agent -> probes -> exporters -> common. A layer may
# include its own headers and those of the layers below it, never those above; each offending
# include is named with its file and line. Tests, benchmarks and fuzzers may include anything.
#
#   scripts/check_layering.sh [SOURCE_ROOT=the repository]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
layers=(common exporters probes agent)

rank() {  # LAYER -> its index in $layers, or nothing for a directory outside them
  local i
  for i in "${!layers[@]}"; do [ "${layers[$i]}" != "$1" ] || { echo "$i"; return; }; done
}

bad=0
checked=0
for layer in "${layers[@]}"; do
  [ -d "$root/$layer" ] || continue
  own=$(rank "$layer")
  while IFS= read -r hit; do
    # hit: path:line:#include "dir/..."
    file=${hit%%:*}
    rest=${hit#*:}
    line=${rest%%:*}
    target=$(sed -n 's/.*#include "\([^"]*\)".*/\1/p' <<<"$rest")
    included=$(rank "${target%%/*}")
    [ -n "$included" ] || continue
    if [ "$included" -gt "$own" ]; then
      echo "${file#"$root"/}:$line includes \"$target\": $layer/ may include only ${layers[*]:0:own+1}" >&2
      bad=$((bad + 1))
    fi
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"' --include='*.h' --include='*.cpp' "$root/$layer" || true)
  checked=$((checked + $(find "$root/$layer" -name '*.h' -o -name '*.cpp' | wc -l)))
done
if [ "$bad" -gt 0 ]; then
  echo "layering: $bad include(s) run up the layers (${layers[*]}, lowest first)" >&2
  exit 1
fi
echo "layering: $checked files, no include runs up the layers (${layers[*]}, lowest first)"

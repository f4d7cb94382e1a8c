#!/usr/bin/env bash
# Builds the container image ghostwatch:<version> from deploy/docker/Dockerfile, with podman (or
# CONTAINER_ENGINE=docker), from the Debian package (scripts/package.sh builds it).
#
#   scripts/image.sh [BUILD_DIR=build]
#
# The Dockerfile starts from debian:12-slim. Where that image is not present and cannot be
# pulled (no registry reachable), this makes it first: Debian 12, minbase, by mmdebstrap from the
# host's Debian archive, without documentation, manuals and locales as the slim image, imported
# under that name. The same Dockerfile then serves users with a registry unchanged. Prints the
# image's name last.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
engine=${CONTAINER_ENGINE:-podman}
base=debian:12-slim
version=$(sed -n 's/^project(ghostwatch VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
image=ghostwatch:$version
command -v "$engine" >/dev/null || { echo "image: $engine is missing (apt-get install podman runc)" >&2; exit 2; }

deb=$(scripts/package.sh "$build_dir" | tail -1)
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$deb" "$context/"  # the build context holds the package alone

make_base() {
  command -v mmdebstrap >/dev/null || { echo "image: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 2; }
  echo "image: no $base to pull; making it with mmdebstrap (Debian 12, minbase)" >&2
  local slim=()
  for path in /usr/share/doc/'*' /usr/share/man/'*' /usr/share/info/'*' /usr/share/locale/'*' /usr/share/lintian/'*'; do
    slim+=(--dpkgopt="path-exclude=$path")
  done
  slim+=(--dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-include=/usr/share/locale/locale.alias')
  mmdebstrap --quiet --variant=minbase --mode=root --format=tar "${slim[@]}" bookworm "$context/base.tar"
  "$engine" import --quiet "$context/base.tar" "$base" >/dev/null
  rm -f "$context/base.tar"
}

if ! "$engine" image inspect "$base" >/dev/null 2>&1; then
  "$engine" pull --quiet "docker.io/library/$base" >/dev/null 2>&1 || make_base
fi
"$engine" build --pull=never --quiet -f deploy/docker/Dockerfile -t "$image" "$context" >/dev/null
echo "$image"

#!/usr/bin/env bash
# Builds the Debian package: build/ghostwatch_<version>_<arch>.deb (CPack's DEB generator,
# shared-library dependencies computed by dpkg-shlibdeps).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j"$(nproc)" --target ghostwatch ghostwatch_ssl_compat ghostwatch_crypto_compat packaging_docs
(cd "$build_dir" && cpack -G DEB >/dev/null)
deb=$(ls -t "$build_dir"/ghostwatch_*.deb | head -1)
echo "$deb"

#!/usr/bin/env bash
# Installs every build and test dependency of ghostwatch with apt-get.
# Idempotent: packages already present are skipped without touching apt's lists.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config git
  libpq-dev prometheus-cpp-dev libboost-program-options-dev libyaml-cpp-dev
  nlohmann-json3-dev libgtest-dev libgmock-dev libcurl4-openssl-dev zlib1g-dev libdeflate-dev
  libhiredis-dev libmemcached-dev libcivetweb-dev libssl-dev libcrypt-dev libspdlog-dev libc-ares-dev
  # sandbox and integration tests
  default-libmysqlclient-dev
  postgresql-15 postgresql-client-15 mariadb-server mariadb-client haproxy redis-server memcached prometheus curl procps iproute2 util-linux passwd
  # the HTTP surface's tests: certificates, bcrypt hashes, a headless browser
  openssl whois chromium
  # the Debian package and its checks
  dpkg-dev lintian man-db adduser
  # the fault suite (network namespaces, black holes) and the fuzzers
  nftables clang libclang-rt-14-dev
  # bench/heartbeat_compare.sh: pt-heartbeat beside ghostwatch
  percona-toolkit
  # the sandbox's HA cluster (up --patroni): discovery and switchovers against the real thing
  patroni etcd-server
  # discovery's dns source against a real DNS server (A and SRV records)
  dnsmasq
  # the promises and the peers (tests/integration/promises_test.cpp, bench/peers.sh): a
  # load-balancing pooler, and the exporters ghostwatch is compared with
  pgpool2 prometheus-postgres-exporter prometheus-mysqld-exporter
  # TLS to every server (tests/integration/tls_test.cpp): a TLS tunnel for the reference cache
  # pipeline, and the impostor servers' Python
  socat python3
  # the fleet sandbox (up --fleet, tests/fleet): alerts delivered by a real Alertmanager
  prometheus-alertmanager
  # the container image (scripts/image.sh, scripts/image-check.sh): built and run with podman, its
  # base made by mmdebstrap where no registry is reachable
  podman runc netavark aardvark-dns iptables mmdebstrap uidmap
  # the documentation site (mkdocs build --strict)
  mkdocs mkdocs-material
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Commands a machine may already have from elsewhere (its own Node.js, a kubectl): Debian's
# packages only where the command is missing. scripts/k8s-check.sh renders the Kubernetes
# manifests with kubectl and validates them with npm packages.
for pair in kubectl:kubernetes-client npm:npm; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The prometheus package would start a system-wide server on :9090; policy-rc.d keeps
# package installs from starting any service, so only the sandbox runs servers.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  created_policy=1
fi
trap '[ $created_policy -eq 1 ] && $SUDO rm -f "$policy"' EXIT
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# Installs every Debian 12 package that Siphon's build, tests, demo and benchmarks need.
# Idempotent: when everything is already installed it prints nothing and exits 0.
# Run as root (or with sudo). Usage: scripts/install-deps.sh
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  libpq-dev libmariadb-dev unixodbc unixodbc-dev
  librdkafka-dev libavro-dev libyaml-dev libjansson-dev libcmocka-dev
  libcurl4-openssl-dev libmicrohttpd-dev
  postgresql postgresql-contrib mariadb-server
  odbc-postgresql odbc-mariadb libsqliteodbc
  kcat
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run this script as root, or install them with apt-get" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts no server on install here, but where it does, stop the packaged clusters:
# our tests start their own throwaway servers on free ports.
echo "install-deps: done"

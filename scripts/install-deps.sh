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

# Node and npm run the interoperability test (tests/interop: Siphon's messages decoded by the
# avsc package). Any Node >= 18 will do, whoever installed it (Debian's nodejs, NodeSource...):
# Debian's packages are only asked for when there is no node or npm at all.
NODE_PKGS=()
command -v node >/dev/null 2>&1 || NODE_PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || NODE_PKGS+=(npm)

# avsc, at the version tests/interop/package-lock.json pins, into tests/interop/node_modules
# (gitignored). Skipped when that version is already there.
install_avsc() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/interop"
  [ -f "$dir/package-lock.json" ] || return 0
  local want have
  want=$(cd "$dir" && node -p "require('./package-lock.json').packages['node_modules/avsc'].version")
  have=$(cd "$dir" && node -p "try { require('./node_modules/avsc/package.json').version } catch (e) { '' }")
  [ "$have" = "$want" ] && return 0
  echo "install-deps: installing avsc $want into tests/interop/node_modules (npm ci)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

missing=()
for p in "${PKGS[@]}" "${NODE_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  install_avsc
  exit 0
fi

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
install_avsc
echo "install-deps: done"

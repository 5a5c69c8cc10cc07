#!/usr/bin/env bash
# Runs the demo built by `make demo`: see examples/demo/demo.c.
set -euo pipefail
BUILD_DIR=$(dirname "$1")
export SIPHON_BIN="$(cd "$BUILD_DIR" && pwd)/siphon"
export SIPHON_SOURCE_DIR="$(cd "$(dirname "$0")/.." && pwd)"
exec "$BUILD_DIR/siphon-demo"

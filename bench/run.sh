#!/bin/sh
# bench/run.sh - what `make bench` runs: the Postgres-to-Kafka benchmark against the siphon
# binary of a build folder. Usage: bench/run.sh BUILD_DIR [bench_pg_to_kafka options...]
# (e.g. --quick for a smoke run, --perf to profile siphon, --phases tput).
# `bench/run.sh BUILD_DIR snapshot [bench_snapshot_to_kafka options...]` runs the initial
# snapshot benchmark instead (2,000,000 rows into Kafka against psql \copy; about 2 minutes),
# writing BUILD_DIR/bench-snapshot-report.md; `bench/run.sh BUILD_DIR mapping [...]` the
# mapping + Avro encoding benchmark (one core, no server); `bench/run.sh BUILD_DIR kafka [...]`
# librdkafka alone into the mock cluster (the floor under every Kafka-bound benchmark).
#
# Prints the results as it goes and writes them as Markdown to BUILD_DIR/bench-report.md; the
# reference run and how to read it are in docs/performance.md. Takes under two minutes on two
# cores; run it on an otherwise idle machine, since everything (PostgreSQL, siphon, the mock
# Kafka cluster, the consumers) shares the same CPUs.
set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR [options]" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
shift
src=$(cd "$(dirname "$0")/.." && pwd)

bin="$build/bench_pg_to_kafka"
report="$build/bench-report.md"
case "${1:-}" in
    snapshot) shift; bin="$build/bench_snapshot_to_kafka"; report="$build/bench-snapshot-report.md" ;;
    mapping) shift; bin="$build/bench_mapping_encode"; report="$build/bench-mapping-report.md" ;;
    kafka) shift; bin="$build/bench_kafka_produce"; report="$build/bench-kafka-report.md" ;;
esac
if [ ! -x "$bin" ] || [ ! -x "$build/siphon" ]; then
    echo "bench: $bin or $build/siphon is missing; build first (make build)" >&2
    exit 1
fi

build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
case "$build_type" in
    Release|RelWithDebInfo) ;;
    *) echo "bench: warning: $build is a '${build_type:-unknown}' build; numbers from an optimized" \
            "build (Release/RelWithDebInfo) are the ones to compare" >&2 ;;
esac
if grep -q '^SIPHON_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
    echo "bench: warning: $build is built with sanitizers; the numbers mean little" >&2
fi

SIPHON_BIN="$build/siphon" SIPHON_SOURCE_DIR="$src" BENCH_BUILD_TYPE="${build_type:-unknown}" \
    exec "$bin" --report "$report" "$@"

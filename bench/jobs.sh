#!/usr/bin/env bash
# Email-job throughput on Redis: this project's workers (crates/app/examples/jobs_bench.rs:
# sealed email jobs through the outbox, a transport that does nothing) and BullMQ 5 with a
# no-op processor (bench/bullmq), on the same redis-server in the same run, by one and by two
# worker processes, at a few concurrencies each. Prints jobs/s drained, the CPU time Redis and the
# workers spent per job while draining (ours), and enqueue-to-done p50/p99.
# Usage: bench/jobs.sh [jobs]   (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
jobs="${1:-100000}"

command -v redis-server >/dev/null || { echo "redis-server is missing (scripts/test.sh installs it)"; exit 1; }
[ -d bench/bullmq/node_modules/bullmq ] || (cd bench/bullmq && npm ci --no-audit --no-fund --silent)
cargo build --release -q -p app --example jobs_bench
bench="$(realpath "${CARGO_TARGET_DIR:-target}")/release/examples/jobs_bench"

port=$(free_port)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning &
redis=$!
trap 'kill $redis 2>/dev/null; wait $redis 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

for workers in 1 2; do
  for concurrency in 1 16 256; do
    "$bench" run "redis://127.0.0.1:$port" "$workers" "$jobs" "$concurrency"
  done
  for concurrency in 1 10 50 200; do
    node bench/bullmq/bench.mjs run "$port" "$workers" "$jobs" "$concurrency"
  done
done

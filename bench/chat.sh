#!/usr/bin/env bash
# Chat fan-out: 200 Socket.IO clients in one room, one sender keeping 50 messages in flight,
# against the release console-api and against a plain Socket.IO 4 server on Node (the same
# events), both driven by the same load generator (crates/app/examples/chat_load.rs) over the
# Socket.IO protocol. Each server is pinned to core 0 and the load to core 1 when there are two.
# With redis-server installed, also across two console-api instances sharing one Redis
# (receivers alternate between them). Prints deliveries/s and send-to-receive p50/p99 (ms).
# Usage: bench/chat.sh [seconds] [receivers] [in-flight]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
seconds="${1:-10}"
receivers="${2:-200}"
in_flight="${3:-50}"

cargo build --release -q --bin console-api --example chat_load -p console-api -p app
target="$(realpath "${CARGO_TARGET_DIR:-target}")/release"
[ -d bench/chat-peer/node_modules ] || (cd bench/chat-peer && npm ci --silent --no-audit --no-fund)
pin_server="" pin_load=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  pin_server="taskset -c 0" pin_load="taskset -c 1"
fi

scratch=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$scratch"' EXIT

# Starts one console-api (extra environment in the arguments); its port in $started.
start_api() {
  local dir
  started=$(free_port)
  dir=$(mktemp -d -p "$scratch")
  (cd "$dir" && exec env PORT="$started" DATA_DIR="$dir" LOG_LEVEL=error "$@" \
    JWT_ACCESS_SECRET=chat-bench-access-secret-0123456789abcdef \
    JWT_REFRESH_SECRET=chat-bench-refresh-secret-0123456789abcdef \
    WS_RATE_LIMIT_PER_MINUTE=4000000000 WS_RATE_LIMIT_PER_HOUR=4000000000 \
    WS_MAX_CONNECTIONS_PER_USER=100000 WS_MAX_CONNECTIONS_PER_IP=100000 \
    THROTTLE_AUTH_LIMIT=1000 $pin_server "$target/console-api") >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$started/api/v1/health/ready" >/dev/null && break; sleep 0.1; done
}

token_from() {
  curl -sf -X POST "http://127.0.0.1:$1/api/v1/auth/register" -H 'content-type: application/json' \
    -d '{"name":"Chat Bench","email":"chat-bench@example.com","password":"Benchmark1"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["accessToken"])'
}

load() {
  local url=$1 token=$2
  shift 2
  $pin_load "$target/examples/chat_load" "$url" "$token" "$receivers" "$in_flight" "$seconds" "$@"
}
row() { printf "%-52s %12s %10s %10s\n" "$@"; }

row "scenario ($receivers receivers, $in_flight in flight, ${seconds}s)" "deliveries/s" "p50 ms" "p99 ms"

start_api
api=$started
token=$(token_from "$api")
read -r ours ours_p50 ours_p99 < <(load "ws://127.0.0.1:$api/socket.io/" "$token")
row "console-api, one instance (Socket.IO)" "$ours" "$ours_p50" "$ours_p99"

peer_port=$(free_port)
(cd bench/chat-peer && exec $pin_server node server.mjs "$peer_port") >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s "http://127.0.0.1:$peer_port/socket.io/?EIO=4&transport=polling" >/dev/null && break; sleep 0.1; done
read -r node node_p50 node_p99 < <(load "ws://127.0.0.1:$peer_port/socket.io/" "none")
row "Socket.IO 4 on Node $(node --version)" "$node" "$node_p50" "$node_p99"
python3 -c "print(f'{\"ratio (one instance / Socket.IO)\":<52} {$ours / $node:>11.2f}x   (goal: 3x)')"

# Two instances through Redis (unpinned): the receivers alternate between them, the sender is
# on the first, so half the deliveries cross Redis. Shared storage for the sign-in: the MongoDB
# stand-in of the tests (scripts/test.sh installs it into .venv).
if command -v redis-server >/dev/null && [ -x .venv/bin/python ]; then
  redis_port=$(free_port) mongo_port=$(free_port)
  redis-server --port "$redis_port" --save '' --appendonly no --daemonize no --loglevel warning >/dev/null &
  pids+=($!)
  .venv/bin/python scripts/nx_27017_exact.py --db memory -p "$mongo_port" --pid-file "$scratch/nx.pid" >/dev/null 2>&1 &
  pids+=($!)
  sleep 1
  shared=(REDIS_URL="redis://127.0.0.1:$redis_port" MONGODB_URI="mongodb://127.0.0.1:$mongo_port/?directConnection=true"
    MONGODB_DATABASE=chatbench JOB_PAYLOAD_KEY=0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0)
  # Not pinned: two servers, Redis and the stand-in would share one core.
  saved_pin=$pin_server pin_server=""
  start_api "${shared[@]}"
  first=$started
  start_api "${shared[@]}"
  second=$started
  pin_server=$saved_pin
  token=$(token_from "$first")
  read -r two two_p50 two_p99 < <(load "ws://127.0.0.1:$first/socket.io/" "$token" "ws://127.0.0.1:$second/socket.io/")
  row "console-api, two instances through Redis" "$two" "$two_p50" "$two_p99"
fi

#!/usr/bin/env bash
# Counts the instructions GET /auth/me costs per request, next to the bench's bare actix-web
# handler serving the same bytes: valgrind's callgrind on the release binaries, counters zeroed
# after a warm-up, then a fixed number of requests on one keep-alive connection. Unlike req/s,
# instruction counts do not move with whatever else the machine runs. The profiles stay in the
# output directory for the per-function account (callgrind_annotate, kcachegrind).
# Usage: bench/callgrind.sh [requests] [output-dir]   (default 2000, target/callgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
requests="${1:-2000}"
out="$(realpath -m "${2:-target/callgrind}")"
command -v valgrind >/dev/null 2>&1 || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
cargo build --release -q --bin console-api --example bare_json -p console-api -p http-api
binary="$(realpath "${CARGO_TARGET_DIR:-target}")/release/console-api"
bare_binary="$(realpath "${CARGO_TARGET_DIR:-target}")/release/examples/bare_json"
rm -rf "$out" && mkdir -p "$out"
data=$(mktemp -d)
server=""
# (`set -e` holds in the trap too: with no server left, `kill` must not decide the exit status.)
trap '[ -z "$server" ] || { kill $server 2>/dev/null; wait $server 2>/dev/null || true; }; rm -rf "$data"' EXIT

wait_for() { for _ in $(seq 600); do curl -sf "$1" >/dev/null && return; sleep 0.2; done; exit 1; }
# GETs http://127.0.0.1:$1$2, $3 times on one connection, with the bearer token $4 if given.
get_many() {
  python3 - "$@" <<'PY'
import http.client, sys
port, path, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
headers = {"Authorization": "Bearer " + sys.argv[4]} if len(sys.argv) > 4 else {}
connection = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(count):
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"{path}: {response.status}")
PY
}
# Zeroes the counters of callgrind process $1, runs the measured requests (the other
# arguments, for get_many), dumps, stops it and prints the instructions per request.
measure() {
  local pid=$1 label=$2; shift 2
  callgrind_control -z "$pid" >/dev/null 2>&1
  get_many "$@"
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  server=""
  local total
  total=$(callgrind_annotate "$(ls "$out/$label".*.1)" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  printf "%-32s %8s instructions per request\n" "$label" "$((total / requests))"
}

# The API (its subshell execs valgrind, so $! is valgrind's pid): fast hashing for the sign-up,
# limits the run cannot reach, and a liveness cache longer than the run, so every request takes
# the steady-state path.
port=$(free_port)
(cd "$data" && exec env PORT="$port" DATA_DIR="$data" LOG_LEVEL=error SESSION_CHECK_TTL=10m \
  THROTTLE_LIMIT=100000000 THROTTLE_AUTH_LIMIT=100000000 \
  ARGON2_MEMORY_COST=1024 ARGON2_TIME_COST=1 ARGON2_PARALLELISM=1 \
  valgrind --tool=callgrind --callgrind-out-file="$out/auth-me.%p" "$binary" >"$out/auth-me.log" 2>&1) &
server=$!
wait_for "http://127.0.0.1:$port/api/v1/health/ready"
token=$(curl -sf -X POST "http://127.0.0.1:$port/api/v1/auth/register" -H 'content-type: application/json' \
  -d '{"name":"Bench User","email":"bench@example.com","password":"Benchmark1","username":"bench"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["accessToken"])')
curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/auth/me" > "$data/me.json"
get_many "$port" /api/v1/auth/me 300 "$token"
measure "$server" auth-me "$port" /api/v1/auth/me "$requests" "$token"

# The ceiling: the bench's bare handler, serving the same bytes.
port=$(free_port)
valgrind --tool=callgrind --callgrind-out-file="$out/bare.%p" "$bare_binary" "$port" "$data/me.json" \
  >"$out/bare.log" 2>&1 &
server=$!
wait_for "http://127.0.0.1:$port/"
get_many "$port" / 300
measure "$server" bare "$port" / "$requests"

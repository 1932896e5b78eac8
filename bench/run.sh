#!/usr/bin/env bash
# Benchmarks the release console-api on loopback with wrk and prints req/s and latency
# percentiles for: GET /health, GET /auth/me, POST /auth/login (default argon2 parameters),
# GET /auth/me while logins saturate the CPU, and the portfolio reads (public and owner lists
# of 50 projects) next to a bare actix-web handler serving the same bytes.
# Usage: bench/run.sh [seconds-per-run]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
seconds="${1:-10}"

ensure_package wrk
cargo build --release -q --bin console-api --example bare_json -p console-api -p http-api
binary="$(realpath "${CARGO_TARGET_DIR:-target}")/release/console-api"
bare_binary="$(realpath "${CARGO_TARGET_DIR:-target}")/release/examples/bare_json"

data=$(mktemp -d)
port=$(free_port)
base="http://127.0.0.1:$port/api/v1"
(cd "$data" && exec env PORT="$port" DATA_DIR="$data" LOG_LEVEL=error THROTTLE_LIMIT=100000000 THROTTLE_AUTH_LIMIT=100000000 \
  "$binary") &
api=$!
bare=""
trap 'kill $api $bare 2>/dev/null; wait $api $bare 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -sf "$base/health/ready" >/dev/null && break; sleep 0.1; done

token=$(curl -sf -X POST "$base/auth/register" -H 'content-type: application/json' \
  -d '{"name":"Bench User","email":"bench@example.com","password":"Benchmark1","username":"bench"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["accessToken"])')


printf "%-44s %10s %10s %10s\n" "scenario (${seconds}s each, $(nproc) cores)" "req/s" "p50" "p99"
printf "%-44s " "GET /health (2 threads, 32 conns)"
wrk -t2 -c32 -d"${seconds}s" --latency "$base/health" | summarise
printf "%-44s " "GET /auth/me (2 threads, 32 conns)"
wrk -t2 -c32 -d"${seconds}s" --latency -H "Authorization: Bearer $token" "$base/auth/me" | summarise
printf "%-44s " "POST /auth/login (argon2 65536/3/4, 8 conns)"
wrk -t2 -c8 -d"${seconds}s" --latency -s bench/login.lua "$base/auth/login" | summarise

# /auth/me measured while a second wrk keeps every core busy with logins.
wrk -t1 -c8 -d"$((seconds + 4))s" -s bench/login.lua "$base/auth/login" > "$data/background.txt" &
background=$!
sleep 2
printf "%-44s " "GET /auth/me while logins saturate (4 conns)"
wrk -t1 -c4 -d"${seconds}s" --latency -H "Authorization: Bearer $token" "$base/auth/me" | summarise
wait $background
printf "%-44s " "  (the saturating logins meanwhile)"
summarise < "$data/background.txt"

# Portfolio reads: 50 projects, a public profile, and the same bytes from a bare handler.
for n in $(seq 50); do
  curl -sf -X POST "$base/portfolio/projects" -H 'content-type: application/json' -H "Authorization: Bearer $token" \
    -d "{\"title\":\"Project $n\",\"description\":\"A project used to measure the public portfolio read path.\",\"url\":\"https://example.com/p/$n\",\"tags\":[\"rust\",\"web\"],\"technologies\":[\"actix\",\"sqlite\"],\"startDate\":\"2024-01-01\"}" >/dev/null
done
curl -sf -X PATCH "$base/portfolio/profile" -H 'content-type: application/json' -H "Authorization: Bearer $token" \
  -d '{"isPublic":true}' >/dev/null
public="$base/public/portfolio/bench/projects"
curl -sf "$public" > "$data/public.json"
bare_port=$(free_port)
"$bare_binary" "$bare_port" "$data/public.json" &
bare=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$bare_port/" >/dev/null && break; sleep 0.1; done

printf "%-44s " "bare actix handler, same $(wc -c < "$data/public.json")-byte body"
wrk -t2 -c32 -d"${seconds}s" --latency "http://127.0.0.1:$bare_port/" | summarise
printf "%-44s " "GET /public/portfolio/:u/projects (50)"
wrk -t2 -c32 -d"${seconds}s" --latency "$public" | summarise
printf "%-44s " "GET /portfolio/projects?limit=50 (owner)"
wrk -t2 -c32 -d"${seconds}s" --latency -H "Authorization: Bearer $token" "$base/portfolio/projects?limit=50" | summarise
kill $bare; wait $bare 2>/dev/null || true; bare=""

# Each read against its ceiling: a bare actix-web handler serving the same bytes, both servers
# pinned to core 0 and wrk to core 1 (64 connections), so the ratio says what our layers cost.
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  taskset -a -p -c 0 "$api" >/dev/null
  echo
  printf "%-44s %10s %10s %10s\n" "pinned: server core 0, wrk core 1" "req/s" "ceiling" "ratio"
  ratio_to_ceiling() { # label, url, auth header or "", saved body
    local label=$1 url=$2 auth=$3 body=$4 port pid ours ceiling
    port=$(free_port)
    taskset -c 0 "$bare_binary" "$port" "$body" &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
    ceiling=$(taskset -c 1 wrk -t1 -c64 -d"${seconds}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
    kill $pid; wait $pid 2>/dev/null || true
    if [ -n "$auth" ]; then
      ours=$(taskset -c 1 wrk -t1 -c64 -d"${seconds}s" -H "$auth" "$url" | awk '/Requests\/sec/ {print $2}')
    else
      ours=$(taskset -c 1 wrk -t1 -c64 -d"${seconds}s" "$url" | awk '/Requests\/sec/ {print $2}')
    fi
    printf "%-44s %10s %10s %9.0f%%\n" "$label" "$ours" "$ceiling" "$(python3 -c "print(100*$ours/$ceiling)")"
  }
  curl -sf -H "Authorization: Bearer $token" "$base/auth/me" > "$data/me.json"
  curl -sf -H "Authorization: Bearer $token" "$base/portfolio/projects?limit=50" > "$data/owner.json"
  ratio_to_ceiling "GET /auth/me" "$base/auth/me" "Authorization: Bearer $token" "$data/me.json"
  ratio_to_ceiling "GET /public/portfolio/:u/projects (50)" "$public" "" "$data/public.json"
  ratio_to_ceiling "GET /portfolio/projects?limit=50 (owner)" "$base/portfolio/projects?limit=50" \
    "Authorization: Bearer $token" "$data/owner.json"
fi

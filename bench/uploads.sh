#!/usr/bin/env bash
# Measures the picture upload path: a 2 MP JPEG (with an EXIF orientation) posted as multipart
# to POST /api/v1/upload/image of the release console-api — decoded off the event loop, turned
# upright, re-encoded without metadata, thumbnailed, both written to disk — then the same upload
# through sharp in a small Node peer (bench/sharp-peer, the NestJS version's library) in the same
# run. Prints images/s one at a time and with 16 uploads in flight, and each server's peak
# resident memory (VmHWM) over the run.
# Usage: bench/uploads.sh [uploads-per-run]   (default 160)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
total="${1:-160}"

cargo build --release -q --bin console-api
binary="$(realpath "${CARGO_TARGET_DIR:-target}")/release/console-api"
peer=bench/sharp-peer
[ -d "$peer/node_modules/sharp" ] || npm install --prefix "$peer" --no-audit --no-fund --loglevel=error

work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
peak_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
node "$peer/make-photo.mjs" "$work/photo.jpg"

port=$(free_port)
(cd "$work" && exec env PORT="$port" DATA_DIR="$work/api" LOG_LEVEL=error THROTTLE_LIMIT=100000000 \
  THROTTLE_UPLOAD_LIMIT=100000000 THROTTLE_AUTH_LIMIT=100000000 "$binary") &
api=$!
pids+=("$api")
base="http://127.0.0.1:$port/api/v1"
for _ in $(seq 100); do curl -sf "$base/health/ready" >/dev/null && break; sleep 0.1; done
token=$(curl -sf -X POST "$base/auth/register" -H 'content-type: application/json' \
  -d '{"name":"Bench User","email":"bench@example.com","password":"Benchmark1","username":"bench"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["accessToken"])')

peer_port=$(free_port)
node "$peer/server.mjs" "$peer_port" "$work/peer" &
node_pid=$!
pids+=("$node_pid")
for _ in $(seq 100); do curl -s "http://127.0.0.1:$peer_port/" >/dev/null 2>&1 && break; sleep 0.1; done

measure() { # label url token pid
  local label=$1 url=$2 auth=$3 pid=$4 idle one sixteen
  node "$peer/load.mjs" "$url" "$auth" "$work/photo.jpg" 16 4 >/dev/null   # warm-up
  idle=$(rss_kib "$pid")
  one=$(node "$peer/load.mjs" "$url" "$auth" "$work/photo.jpg" "$((total / 4))" 1)
  sixteen=$(node "$peer/load.mjs" "$url" "$auth" "$work/photo.jpg" "$total" 16)
  printf "%-34s %12s %12s %10s MiB %10s MiB %9s\n" "$label" "${one% *}" "${sixteen% *}" \
    "$((idle / 1024))" "$(($(peak_kib "$pid") / 1024))" "$(( ${one#* } + ${sixteen#* } ))"
}

echo "2 MP JPEG ($(wc -c < "$work/photo.jpg") bytes, EXIF orientation 6) -> upright JPEG q85 + 320 px thumbnail, $(nproc) cores"
printf "%-34s %12s %12s %14s %14s %9s\n" "server" "img/s (1)" "img/s (16)" "RSS idle" "peak RSS" "failures"
measure "console-api (image, jpeg-encoder)" "$base/upload/image" "$token" "$api"
measure "Node 20 + sharp $(node -p "require('./$peer/node_modules/sharp/package.json').version")" \
  "http://127.0.0.1:$peer_port/upload" - "$node_pid"

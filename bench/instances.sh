#!/usr/bin/env bash
# One console-api against two behind nginx (deploy/nginx/console.conf), on one Redis and one
# embedded database: GET /auth/me and the public projects list, wrk through each. On a 2-core
# machine the two instances and nginx share the cores the one instance had alone, so the figure
# is for the record (what the proxy hop and the shared Redis counters cost), not a goal.
# Usage: bench/instances.sh [seconds-per-run]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
seconds="${1:-10}"

for tool in wrk nginx redis-server; do ensure_package "$tool"; done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
cargo build --release -q --bin console-api -p console-api
binary="$(realpath "${CARGO_TARGET_DIR:-target}")/release/console-api"

work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

redis_port=$(free_port)
redis-server --port "$redis_port" --dir "$work" --save "" --appendonly no >/dev/null &
pids+=($!)
api_ports=("$(free_port)" "$(free_port)")
for port in "${api_ports[@]}"; do
  # Without MongoDB, every instance works on the one embedded database (one host).
  (cd "$work" && exec env PORT="$port" DATA_DIR="$work/data" LOG_LEVEL=error REDIS_URL="redis://127.0.0.1:$redis_port" \
    JOB_PAYLOAD_KEY=0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0 \
    THROTTLE_LIMIT=100000000 THROTTLE_AUTH_LIMIT=100000000 \
    TRUSTED_PROXY_HEADER=X-Forwarded-For TRUSTED_PROXIES=127.0.0.1 "$binary") &
  pids+=($!)
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/api/v1/health/ready" >/dev/null && break; sleep 0.1; done
done

nginx_port=$(free_port)
mkdir -p "$work/nginx"
sed -e "s/listen 8080;/listen 127.0.0.1:$nginx_port;/" \
    -e "s/127.0.0.1:3001/127.0.0.1:${api_ports[0]}/" -e "s/127.0.0.1:3002/127.0.0.1:${api_ports[1]}/" \
    deploy/nginx/console.conf > "$work/nginx/site.conf"
user_line=""; [ "$(id -u)" -eq 0 ] && user_line="user root;"
cat > "$work/nginx/nginx.conf" <<CONF
$user_line
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi; uwsgi_temp_path $work/nginx/uwsgi; scgi_temp_path $work/nginx/scgi;
  include $work/nginx/site.conf;
}
CONF
"$nginx_bin" -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$nginx_port/api/v1/health" >/dev/null && break; sleep 0.1; done

direct="http://127.0.0.1:${api_ports[0]}/api/v1"
token=$(curl -sf -X POST "$direct/auth/register" -H 'content-type: application/json' \
  -d '{"name":"Bench User","email":"bench@example.com","password":"Benchmark1","username":"bench"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["accessToken"])')
curl -sf -X PATCH "$direct/portfolio/profile" -H 'content-type: application/json' -H "Authorization: Bearer $token" \
  -d '{"isPublic":true}' >/dev/null
for n in $(seq 20); do
  curl -sf -X POST "$direct/portfolio/projects" -H 'content-type: application/json' -H "Authorization: Bearer $token" \
    -d "{\"title\":\"Project $n\",\"description\":\"Measured through one instance and through two behind nginx.\"}" >/dev/null
done

printf "%-52s %10s %10s %10s\n" "scenario (${seconds}s each, $(nproc) cores, 32 conns)" "req/s" "p50" "p99"
for target in "one instance|$direct" "two instances behind nginx|http://127.0.0.1:$nginx_port/api/v1"; do
  name=${target%%|*}; base=${target#*|}
  printf "%-52s " "GET /auth/me, $name"
  wrk -t2 -c32 -d"${seconds}s" --latency -H "Authorization: Bearer $token" "$base/auth/me" | summarise
  printf "%-52s " "GET /public/portfolio/bench/projects, $name"
  wrk -t2 -c32 -d"${seconds}s" --latency "$base/public/portfolio/bench/projects" | summarise
done

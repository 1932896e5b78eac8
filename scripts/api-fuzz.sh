#!/usr/bin/env bash
# Fuzzes the API against its own OpenAPI document with schemathesis: every check, against the
# debug binary on a fresh embedded store, signed in as a fixture account, with another account's
# public portfolio (an item in every section) so that the public routes answer 200; the
# document's links let the stateful phase reach the items it creates. Fails on any failure.
# Usage: scripts/api-fuzz.sh [examples-per-operation] [seed]   (default 5, 1; seed "random": none)
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-5}"
seed="${2:-1}"

# One version, so that a seed draws the same cases on every machine.
version="$(cat scripts/schemathesis-version)"
if [ "$(.venv/bin/schemathesis --version 2>/dev/null)" != "schemathesis, version $version" ]; then
  echo "installing schemathesis $version into .venv"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check "schemathesis==$version"
fi

cargo build -q --bin console-api
binary="$(realpath "${CARGO_TARGET_DIR:-target}")/debug/console-api"

data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port/api/v1"
# Fast hashing and limits no fuzz run reaches: the limiter has its own tests.
(cd "$data" && exec env -i PATH="$PATH" PORT="$port" DATA_DIR="$data" LOG_LEVEL=error \
  ARGON2_MEMORY_COST=1024 ARGON2_TIME_COST=1 ARGON2_PARALLELISM=1 \
  THROTTLE_LIMIT=100000000 THROTTLE_AUTH_LIMIT=100000000 THROTTLE_UPLOAD_LIMIT=100000000 "$binary" >"$data/api.log" 2>&1) &
api=$!
# `|| true`: the API ends by the signal, which must not become this script's exit status.
trap 'kill $api 2>/dev/null; wait $api 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -sf "$base/health/ready" >/dev/null && break; sleep 0.1; done

# Prints the value at a `/`-separated path of the JSON read from stdin.
pick() { .venv/bin/python -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("/"): v=v[int(k)] if isinstance(v,list) else v[k]
print(v)' "$1"; }
call() { # method path token [json]
  curl -sf -X "$1" "$base$2" -H "Authorization: Bearer $3" ${4:+-H 'content-type: application/json' -d "$4"}
}
register() { # username
  curl -sf -X POST "$base/auth/register" -H 'content-type: application/json' \
    -d "{\"name\":\"Fuzz Owner\",\"email\":\"$1@example.com\",\"password\":\"Fuzzing-owner1\",\"username\":\"$1\"}" |
    pick data/accessToken
}

# The owner of a public portfolio with an item in every section, for the public routes; the
# fuzzing itself signs in as another account, so that nothing it does hides that portfolio.
owner="fuzz-owner"
token=$(register "$owner")
call PATCH /portfolio/profile "$token" '{"isPublic":true,"headline":"Fuzzed"}' >/dev/null
company=$(call POST /portfolio/companies "$token" '{"name":"Acme","website":"https://acme.example"}' | pick data/id)
call POST /portfolio/projects "$token" '{"title":"Console","tags":["rust"],"startDate":"2024-01-01"}' >/dev/null
call POST /portfolio/skills "$token" '{"name":"Rust","category":"language","level":90}' >/dev/null
call POST /portfolio/experiences "$token" \
  "{\"title\":\"Engineer\",\"companyId\":\"$company\",\"startDate\":\"2020-01-01\"}" >/dev/null
call POST /portfolio/education "$token" '{"institution":"University","degree":"BSc","gpa":3.5}' >/dev/null
call POST /portfolio/certifications "$token" '{"name":"Cert","issuer":"Issuer"}' >/dev/null
post=$(call POST /portfolio/blog "$token" '{"title":"Hello","content":"First post"}' | pick data/id)
call PATCH "/portfolio/blog/$post/publish" "$token" '{"published":true}' >/dev/null
call POST /portfolio/testimonials "$token" '{"name":"Grace","content":"Great work","rating":5}' >/dev/null
call POST /portfolio/contacts "$token" '{"platform":"GitHub","url":"https://github.com/fuzz"}' >/dev/null

fuzzer_token=$(register "fuzz-user")
# A spare account with two sessions, which the logout and session-revoking routes may end.
spare_token=$(register "fuzz-spare")
logout_token=$(curl -sf -X POST "$base/auth/login" -H 'content-type: application/json' \
  -d '{"email":"fuzz-spare@example.com","password":"Fuzzing-owner1"}' | pick data/accessToken)

echo "schemathesis: $examples examples per operation, seed $seed, against $base"
seed_flag=()
[ "$seed" = random ] || seed_flag=(--seed "$seed")
FUZZ_USERNAME="$owner" FUZZ_TOKEN="$fuzzer_token" FUZZ_SPARE_TOKEN="$spare_token" \
  FUZZ_LOGOUT_TOKEN="$logout_token" \
  .venv/bin/schemathesis --config-file scripts/api-fuzz.toml run "$base/docs/openapi.json" --checks all \
  --max-examples "$examples" "${seed_flag[@]}" --generation-database none --no-color \
  || { echo "the API's log ends:"; tail -20 "$data/api.log"; exit 1; }

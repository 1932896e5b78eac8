#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs the
# format, lint and architecture checks and every test. README.md and .ci/run call exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Redis (tests start their own instances on free ports).
if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq redis-server >/dev/null; fi
fi

# Chromium (Debian's package) and playwright-core (npm), which drive the admin dashboard in
# tests/jobs.rs.
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
fi
# nginx (Debian's package), the load balancer of the cluster test (tests/cluster.rs), with the
# reference configuration deploy/nginx/console.conf.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "installing nginx"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq nginx >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq nginx >/dev/null; fi
fi
# promtool (Debian's prometheus package), which checks every process's /metrics in
# tests/metrics.rs as Prometheus would read it.
if ! command -v promtool >/dev/null 2>&1; then
  echo "installing promtool (prometheus)"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null; fi
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "installing playwright-core into tests/browser"
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi

# nx-27017, the MongoDB wire-protocol stand-in, and schemathesis, which fuzzes the API against
# its OpenAPI document (scripts/api-fuzz.sh), in a project-local virtualenv.
if [ ! -x .venv/bin/nx-27017 ]; then
  echo "installing nx-27017 into .venv"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check nx-27017
fi
export NX_27017_PYTHON="$PWD/.venv/bin/python"
SCHEMATHESIS_VERSION="$(cat scripts/schemathesis-version)"
if [ "$(.venv/bin/schemathesis --version 2>/dev/null)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION into .venv"
  .venv/bin/pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# moto's server mode, the S3-compatible server the object-storage tests write to.
MOTO_VERSION="5.2.6"
if ! .venv/bin/pip show moto 2>/dev/null | grep -qx "Version: $MOTO_VERSION" || [ ! -x .venv/bin/moto_server ]; then
  echo "installing moto[server] $MOTO_VERSION into .venv"
  .venv/bin/pip install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

# socket.io-client, the real front-end library the Socket.IO endpoint is tested with.
if [ ! -d tests/socketio/node_modules ]; then
  echo "installing socket.io-client into tests/socketio"
  (cd tests/socketio && npm ci --silent --no-audit --no-fund)
fi

# The SMTP server the tests read is their own (crates/testkit), so nothing to start here.

# Every test runs here: none skips for want of an outside server (testkit::skip_without).
export RUN_SLOW_TESTS=1

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
cargo build --workspace --bins -q
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
# The API against its own OpenAPI document: a short run with a fixed seed.
./scripts/api-fuzz.sh 5 1
# …and stops the console-api it started.
if command -v pgrep >/dev/null 2>&1 && pgrep -f "$PWD/target/debug/console-api" >/dev/null; then
  echo "scripts/api-fuzz.sh left a console-api running" >&2
  exit 1
fi

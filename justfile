# Console Backend tasks. `just` comes from `pip install rust-just` (or `cargo install just`).

# Start the API on the embedded store (data in ./data).
run:
    cargo run --release --bin console-api

# The whole suite, exactly as CI runs it (installs redis-server and nx-27017 when missing).
test:
    ./scripts/test.sh

# The inner loop: the tests that need no outside server, binary, browser or whole app.
quick:
    cargo nextest run --workspace --profile quick

# Fuzz the API against its OpenAPI document with schemathesis (every check); the test command
# runs 5 examples per operation with seed 1.
fuzz examples="100" seed="random":
    ./scripts/api-fuzz.sh {{examples}} {{seed}}

# Load-test the release binary on loopback (optional seconds per scenario), then one instance
# against two behind nginx, then the email jobs on Redis against BullMQ.
bench seconds="10":
    ./bench/run.sh {{seconds}}
    ./bench/instances.sh {{seconds}}
    ./bench/jobs.sh

# One console-api next to two behind nginx (the reference configuration), on one Redis.
bench-instances seconds="10":
    ./bench/instances.sh {{seconds}}

# Email-job throughput on Redis against BullMQ 5 on the same server (optional job count).
bench-jobs jobs="100000":
    ./bench/jobs.sh {{jobs}}

# Instructions per GET /auth/me and per request of the bare handler, under callgrind.
callgrind requests="2000":
    ./bench/callgrind.sh {{requests}}

# Chat fan-out: 200 Socket.IO clients in one room, against a Node Socket.IO 4 server too.
bench-chat seconds="10":
    ./bench/chat.sh {{seconds}}

# The upload path (2 MP JPEG: decode, orient, re-encode, thumbnail) against sharp in a Node peer;
# optional uploads per run.
bench-uploads uploads="160":
    ./bench/uploads.sh {{uploads}}

# Regenerate .env.example and the README configuration table from crates/app/src/config.rs.
env-example:
    UPDATE_ENV_EXAMPLE=1 cargo test -q -p app --lib config

# Regenerate every generated document: .env.example, the README's configuration table and
# its error-code catalogue.
generated: env-example
    UPDATE_ERROR_CODES=1 cargo test -q -p http-api --lib problem

# Format and lint as CI does.
lint:
    cargo fmt --all
    cargo clippy --workspace --all-targets -- -D warnings

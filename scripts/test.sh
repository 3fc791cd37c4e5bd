#!/usr/bin/env bash
# The whole test suite: lints, Rust tests (real servers, real sockets, real redis-server),
# browser tests (headless Debian chromium), Schemathesis against the OpenAPI document, and a
# k6 smoke run of every load script.
# Installs what it needs first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

bash scripts/setup.sh

# The tests hold many sockets at once (fan-out to thousands of viewers, claim storms):
# open files up to the hard limit.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 65536 ]; then
  echo "test: the open-file hard limit is $hard, below 65536: if a socket-heavy test fails with" \
       "'Too many open files', raise it (as root: ulimit -Hn 65536; a container:" \
       "--ulimit nofile=65536:65536; a systemd unit: LimitNOFILE=65536)." >&2
fi
if ! ulimit -n "$hard" 2>/dev/null; then
  echo "test: cannot raise the open-file limit to $hard; it stays $(ulimit -n)" >&2
fi

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== rust tests"
cargo test --workspace --no-fail-fast

echo "== browser tests"
cargo build --quiet --bin dropwire
if [ -f overlay-web/tests/package.json ]; then
  DROPWIRE_BIN="$PWD/target/debug/dropwire" npm --prefix overlay-web/tests test
fi

echo "== example webhook receivers (Python and JavaScript, the standardwebhooks libraries)"
DW_SERVE_ARGS="--webhook-allow-private true --webhook-retry-schedule 0,1,1,1,1,1,1,1" \
  bash scripts/with-server.sh bash docs/examples/check.sh

echo "== schemathesis: the API against its OpenAPI document, every check (scripts/schemathesis.sh)"
DROPWIRE_BIN="$PWD/target/debug/dropwire" bash scripts/schemathesis.sh

echo "== deploy: the files agree, and the topology runs (nginx, two hubs, Redis, PostgreSQL, Prometheus)"
.venv/bin/python scripts/check-deploy.py
python3 scripts/check-dashboards.py --self-test >/dev/null
cargo build --quiet --bin dropwire --bin dropwire-swarm
bash scripts/topology.sh 1000 50

echo "== k6 smoke"
if [ -f load-tests/smoke.sh ]; then
  bash scripts/with-server.sh bash load-tests/smoke.sh
fi
echo "== all tests passed"

#!/usr/bin/env bash
# The whole test suite: lints, Rust tests (real servers, real sockets, real redis-server),
# browser tests (headless Debian chromium), and a k6 smoke run of every load script.
# Installs what it needs first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

bash scripts/setup.sh

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

echo "== deploy: the files agree, and the topology runs (nginx, two hubs, Redis, PostgreSQL, Prometheus)"
python3 scripts/check-deploy.py
python3 scripts/check-dashboards.py --self-test >/dev/null
cargo build --quiet --bin dropwire --bin dropwire-swarm
bash scripts/topology.sh 1000 50

echo "== k6 smoke"
if [ -f load-tests/smoke.sh ]; then
  bash scripts/with-server.sh bash load-tests/smoke.sh
fi
echo "== all tests passed"

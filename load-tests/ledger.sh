#!/usr/bin/env bash
# What the funnel ledger costs and sustains:
#  1. ledger writes per second, SQLite and PostgreSQL (examples/ledger_bench.rs);
#  2. a claim storm's p99 with the ledger on (embedded SQLite) and off, ROUNDS rounds
#     alternating on/off on the embedded store, VIEWERS viewers, STOCK units; the target is
#     p99(on) ≤ 1.1 × p99(off), judged on the medians of the rounds.
#
#   bash load-tests/ledger.sh [VIEWERS] [STOCK] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
VIEWERS="${1:-10000}"
STOCK="${2:-50}"
ROUNDS="${3:-3}"
cargo build --quiet --release --bin dropwire --bin dropwire-swarm
echo "== ledger writes"
cargo run --quiet --release -p dropwire-funnel --example ledger_bench -- --viewers "$VIEWERS"

echo "== claim storm, $VIEWERS viewers, $STOCK units, ledger on and off"
WORK="$(mktemp -d)"
. load-tests/lib.sh
compare_storms "$VIEWERS" "$STOCK" "$ROUNDS" "ledger facts" "ledger on" "" "ledger off" "LEDGER=off"

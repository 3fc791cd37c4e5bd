#!/usr/bin/env bash
# A claim storm seen by viewers, on one hub node: VIEWERS viewers with tokens, a SKU with
# STOCK units, the reveal fired once all are connected, every viewer claiming on arrival.
# BACKEND is `embedded` (the journaled store, fsync on) or `redis` (a redis-server this
# script starts on a free port with appendonly yes, appendfsync always). Prints the swarm's
# summary (claim latency from the reveal reaching a viewer to its answer) and the hub's
# dropwire_claim_store_seconds (time the store took, from asking to the answer).
#
#   bash load-tests/storm.sh [embedded|redis] [VIEWERS] [STOCK]
#
# FAIR_START_MS=2000 gives the SKU a fair start of that many ms (0–60000): claims in the
# window are entered in a draw and answered when it is held, so latencies include the window.
# LEDGER=off runs the hub without its funnel ledger (default: the embedded SQLite ledger;
# LEDGER=postgres://… for another), to measure what the ledger costs the storm.
# HOOKS="URL URL …" (or URL|URL|…) registers a webhook endpoint for every event at each URL first (the hub
# then runs with --webhook-allow-private true), to measure what webhooks cost the storm.
#
# Needs release builds: cargo build --release --bin dropwire --bin dropwire-swarm
set -euo pipefail
cd "$(dirname "$0")/.."
BACKEND="${1:-redis}"
VIEWERS="${2:-10000}"
STOCK="${3:-50}"
TOKEN="claim-storm-bench-token-0123456789"
BIN=target/release
WORK="$(mktemp -d)"
ulimit -n "$(ulimit -Hn)"

. load-tests/lib.sh
PORT=$(free_port)

store=()
case "$BACKEND" in
  embedded) ;;
  redis)
    REDIS_PORT=$(free_port)
    start_redis "$REDIS_PORT" --appendonly yes --appendfsync always
    store=(--redis "redis://127.0.0.1:$REDIS_PORT/0")
    ;;
  *) echo "usage: $0 [embedded|redis] [VIEWERS] [STOCK]" >&2; exit 2 ;;
esac

DROPWIRE_LOG=warn "$BIN/dropwire" serve --bind "127.0.0.1:$PORT" --admin-token "$TOKEN" \
  --data-dir "$WORK/data" "${store[@]}" ${LEDGER:+--ledger "$LEDGER"} \
  ${HOOKS:+--webhook-allow-private true} > "$WORK/hub.out" 2>&1 &
pids+=($!)
wait_ready "$PORT"
hooks="${HOOKS:-}"
for url in ${hooks//|/ }; do
  curl -fsS -X POST "http://127.0.0.1:$PORT/api/v1/webhooks" -H "Authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' -d "{\"url\": \"$url\", \"events\": [\"*\"]}" > /dev/null
done

"$BIN/dropwire-swarm" --server "http://127.0.0.1:$PORT" --admin-token "$TOKEN" \
  --viewers "$VIEWERS" --claim --stock "$STOCK" --fair-start-ms "${FAIR_START_MS:-0}" --broadcasts 0 2>&1 \
  | grep -vE '^\[swarm\] (connecting|connected) '
if [ "${LEDGER:-}" != off ]; then
  # The feed writes off the claim path: give it a moment, then count what it wrote.
  sleep 2
  curl -fs "http://127.0.0.1:$PORT/metrics" | awk '/^dropwire_ledger_facts_total\{outcome="recorded"\}/ {r=$2} /^dropwire_ledger_facts_total\{outcome="dropped"\}/ {d=$2} END {printf "ledger facts: %d recorded, %d dropped\n", r, d}'
fi
if [ -n "${HOOKS:-}" ]; then
  curl -fs "http://127.0.0.1:$PORT/metrics" | awk '/^dropwire_webhook_deliveries_total/ {split($1, a, "\""); d[a[2]]=$2} END {printf "webhooks: %d delivered, %d failed tries, %d dead (2 s after the storm)\n", d["delivered"], d["failed"], d["dead"]}'
fi
echo "== hub: time the store took per claim"
curl -fs "http://127.0.0.1:$PORT/metrics" | grep -E '^dropwire_claim_store_seconds_(sum|count)' \
  | awk '/_sum/ {s=$2} /_count/ {c=$2} END {if (c > 0) printf "%d claims, mean %.1f ms in the store\n", c, 1000*s/c}'

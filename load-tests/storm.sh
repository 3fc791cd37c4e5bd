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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

store=()
case "$BACKEND" in
  embedded) ;;
  redis)
    REDIS_PORT=$(free_port)
    # In a session of its own, as a Redis service would be: with autogroup scheduling a
    # process in this script's session shares one CPU share with the hub and the swarm.
    setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes \
      --appendfsync always --dir "$WORK" --logfile "$WORK/redis.log" &
    pids+=($!)
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
    store=(--redis "redis://127.0.0.1:$REDIS_PORT/0")
    ;;
  *) echo "usage: $0 [embedded|redis] [VIEWERS] [STOCK]" >&2; exit 2 ;;
esac

DROPWIRE_LOG=warn "$BIN/dropwire" serve --bind "127.0.0.1:$PORT" --admin-token "$TOKEN" \
  --data-dir "$WORK/data" "${store[@]}" > "$WORK/hub.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

"$BIN/dropwire-swarm" --server "http://127.0.0.1:$PORT" --admin-token "$TOKEN" \
  --viewers "$VIEWERS" --claim --stock "$STOCK" --broadcasts 0 2>&1 \
  | grep -vE '^\[swarm\] (connecting|connected) '
echo "== hub: time the store took per claim"
curl -fs "http://127.0.0.1:$PORT/metrics" | grep -E '^dropwire_claim_store_seconds_(sum|count)' \
  | awk '/_sum/ {s=$2} /_count/ {c=$2} END {if (c > 0) printf "%d claims, mean %.1f ms in the store\n", c, 1000*s/c}'

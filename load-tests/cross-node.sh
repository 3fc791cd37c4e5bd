#!/usr/bin/env bash
# Cross-node fan-out, measured: two hub nodes (A, B) share one Redis this script starts on a
# free port. A coordinator swarm with a few viewers on node A creates the drop and fires the
# measured cues through A's API; VIEWERS viewers watch on node B. Both print cue ts → viewer
# latency: A's viewers are "same node" (through Redis all the same), B's are "other node".
#
#   bash load-tests/cross-node.sh [VIEWERS] [BROADCASTS]      (env: ON_A=100 GAP_MS=500)
#
# Needs release builds: cargo build --release --bin dropwire --bin dropwire-swarm
set -euo pipefail
cd "$(dirname "$0")/.."
VIEWERS="${1:-1000}"
BROADCASTS="${2:-20}"
ON_A="${ON_A:-100}"
# The coordinator only sees its own viewers get a cue; leave node B time to finish one
# before the next, as a single swarm does by waiting for all of its viewers.
GAP_MS="${GAP_MS:-500}"
TOKEN="cross-node-bench-token-0123456789"
BIN=target/release
WORK="$(mktemp -d)"
ulimit -n "$(ulimit -Hn)"

. load-tests/lib.sh
REDIS_PORT=$(free_port)
A_PORT=$(free_port)
B_PORT=$(free_port)
start_redis "$REDIS_PORT" --appendonly no

for node in a:"$A_PORT" b:"$B_PORT"; do
  name=${node%%:*}; port=${node##*:}
  DROPWIRE_LOG=warn "$BIN/dropwire" serve --redis "redis://127.0.0.1:$REDIS_PORT/0" \
    --bind "127.0.0.1:$port" --admin-token "$TOKEN" --data-dir "$WORK/$name" \
    > "$WORK/$name.out" 2>&1 &
  pids+=($!)
done
wait_ready "$A_PORT"
wait_ready "$B_PORT"

ID="xnode-$(date +%s%3N)"
"$BIN/dropwire-swarm" --server "http://127.0.0.1:$A_PORT" --admin-token "$TOKEN" \
  --viewers "$ON_A" --drop-id "$ID" --expect-viewers $((VIEWERS + ON_A)) \
  --broadcasts "$BROADCASTS" --gap-ms "$GAP_MS" --report "$WORK/a.json" > "$WORK/a.txt" 2>&1 &
coordinator=$!
for _ in $(seq 200); do
  curl -fs -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$B_PORT/api/v1/drops/$ID" >/dev/null && break
  sleep 0.05
done
"$BIN/dropwire-swarm" --server "http://127.0.0.1:$B_PORT" --admin-token "$TOKEN" \
  --viewers "$VIEWERS" --join "$ID" --report "$WORK/b.json" > "$WORK/b.txt" 2>&1 || true
wait "$coordinator" || true

echo "== node A (drives the drop; $ON_A viewers, same node as the API calls)"
cat "$WORK/a.txt"
echo
echo "== node B ($VIEWERS viewers, another node)"
cat "$WORK/b.txt"

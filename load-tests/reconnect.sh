#!/usr/bin/env bash
# A reconnect storm, measured: two hub nodes (A, B) on one Redis this script starts on a
# free port. VIEWERS viewers (one swarm process) watch a drop on node A and claim at the
# reveal; node A is killed (SIGKILL) right after the reveal, while the claims are in flight,
# and every viewer resumes on node B at once (with `since`, jittered backoff as the overlay
# does, its unanswered claim asked again with the same rid). Prints the swarm's figures:
# the time from the kill to the last viewer back, gaps (must be 0), broadcasts a resume
# skipped (0), claims answered (all, once) and granted (the stock exactly), and node B's
# busy refusals (--max-handshakes).
#
#   bash load-tests/reconnect.sh [VIEWERS] [STOCK]   (env: MAX_HANDSHAKES=2048 REDIS_TIMEOUT_MS=500)
#
# Needs release builds: cargo build --release --bin dropwire --bin dropwire-swarm
set -euo pipefail
cd "$(dirname "$0")/.."
VIEWERS="${1:-10000}"
STOCK="${2:-50}"
TOKEN="reconnect-bench-token-0123456789"
BIN="${BIN:-target/release}"
WORK="$(mktemp -d)"
ulimit -n "$(ulimit -Hn)"

. load-tests/lib.sh
REDIS_PORT=$(free_port); A_PORT=$(free_port); B_PORT=$(free_port)
start_redis "$REDIS_PORT" --appendonly no

for node in a:"$A_PORT" b:"$B_PORT"; do
  name=${node%%:*}; port=${node##*:}
  DROPWIRE_LOG=warn "$BIN/dropwire" serve --redis "redis://127.0.0.1:$REDIS_PORT/0" \
    --bind "127.0.0.1:$port" --admin-token "$TOKEN" --data-dir "$WORK/$name" --ledger off \
    --max-handshakes "${MAX_HANDSHAKES:-2048}" --redis-timeout-ms "${REDIS_TIMEOUT_MS:-500}" \
    > "$WORK/$name.out" 2>&1 &
  pids+=($!)
  [ "$name" = a ] && A_PID=$!
done
wait_ready "$A_PORT"
wait_ready "$B_PORT"

echo "== $VIEWERS viewers on node A; A killed at the reveal; all resume on node B"
set +e
"$BIN/dropwire-swarm" --server "http://127.0.0.1:$A_PORT" --admin-token "$TOKEN" \
  --viewers "$VIEWERS" --claim --stock "$STOCK" --broadcasts 5 --gap-ms 200 \
  --resume --resume-server "http://127.0.0.1:$B_PORT" --kill-pid "$A_PID" --kill-at reveal \
  --report "$WORK/swarm.json" --strict 2> "$WORK/swarm.err"
rc=$?
set -e
grep -E 'killed|problem' "$WORK/swarm.err" || true
echo "node B refused (busy, before the upgrade): $(curl -fs "http://127.0.0.1:$B_PORT/metrics" \
  | awk '/^dropwire_connection_refusals_total\{reason="busy"\}/ {print $2}')"
python3 - "$WORK/swarm.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"resume: {r['resumed']} viewers back on node B, the last {r['resume_all_s']:.2f} s after the kill; "
      f"gaps {r['gaps']}, skipped by snapshot {r['snapshot_gaps']}, dropped {r['dropped']}; "
      f"claims answered {r['claims_sent'] - r['claims_unanswered']} of {r['claims_sent']}, "
      f"granted {r['claims_ok']} (server {r['server_claims']}) of stock {r['stock']}")
PY
exit $rc

#!/usr/bin/env bash
# Four hub nodes, 60,000 viewers: four hubs share one redis-server this script starts on a
# free port; one swarm process per node holds VIEWERS_PER_NODE viewers of one drop (this
# machine's hard limit is 20,000 open files per process, so one process cannot hold more
# than ~19,000 sockets; each swarm spreads its sockets over the loopback source addresses
# 127.0.0.1–64, so ephemeral ports never run out). The coordinator on node A creates the
# drop, waits until the hub counts every node's viewers, and fires BROADCASTS cues through
# node A's API; nodes B–D deliver them from Redis. Prints, over all nodes: every viewer's
# cue latency (ts → receive), the time to the last viewer of each cue (p50, p99, worst),
# the four hubs' CPU per delivered message and RSS per connection (summed over the hubs,
# `--server-pid A,B,C,D`), and what redis-server used.
#
#   bash load-tests/sixty-k.sh [VIEWERS_PER_NODE=15000]
#
# Environment: SIXTYK_BROADCASTS=20 SIXTYK_GAP_MS=1000 (after a cue reached node A's
# viewers, before the next: leaves the other nodes time to finish it) KEEP=1 (keep the
# work dir: hub logs, reports). Builds the release binaries first.
set -euo pipefail
cd "$(dirname "$0")/.."
PER_NODE="${1:-15000}"
BROADCASTS="${SIXTYK_BROADCASTS:-20}"
GAP_MS="${SIXTYK_GAP_MS:-1000}"
NODES=(a b c d)
TOTAL=$((PER_NODE * ${#NODES[@]}))
TOKEN="sixty-k-bench-token-0123456789abc"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
echo "== build (release)"
cargo build --release --quiet --bin dropwire --bin dropwire-swarm
BIN="$CARGO_TARGET_DIR/release"
WORK="$(mktemp -d /tmp/dropwire-sixty-k.XXXXXX)"
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((PER_NODE + 500)) ]; then
  echo "open-file limit $(ulimit -n) is too low for $PER_NODE viewers per node" >&2
  exit 1
fi
. load-tests/lib.sh

REDIS_PORT=$(free_port)
start_redis "$REDIS_PORT" --appendonly no
REDIS_PID=$(redis-cli -p "$REDIS_PORT" info server | awk -F: '/^process_id:/ {print $2}' | tr -d '\r')
declare -A PORT HUB
for n in "${NODES[@]}"; do
  PORT[$n]=$(free_port)
  DROPWIRE_LOG=warn "$BIN/dropwire" serve --redis "redis://127.0.0.1:$REDIS_PORT/0" \
    --bind "127.0.0.1:${PORT[$n]}" --admin-token "$TOKEN" --data-dir "$WORK/$n" \
    >"$WORK/$n.log" 2>&1 &
  HUB[$n]=$!
  pids+=($!)
done
for n in "${NODES[@]}"; do wait_ready "${PORT[$n]}"; done
HUB_PIDS=$(IFS=,; echo "${HUB[*]}")
redis_cpu() { sed 's/.*) //' "/proc/$REDIS_PID/stat" | awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($12 + $13) / hz}'; }
REDIS_CPU0=$(redis_cpu)

ID="sixty-k-$(date +%s%3N)"
echo "== $TOTAL viewers: $PER_NODE on each of ${#NODES[@]} hub nodes (one swarm per node); $BROADCASTS cues fired on node a"
swarms=()
"$BIN/dropwire-swarm" --server "http://127.0.0.1:${PORT[a]}" --admin-token "$TOKEN" \
  --viewers "$PER_NODE" --drop-id "$ID" --expect-viewers "$TOTAL" --broadcasts "$BROADCASTS" \
  --gap-ms "$GAP_MS" --server-pid "$HUB_PIDS" --timeout-s 900 --report "$WORK/a.json" \
  >"$WORK/a.txt" 2>&1 &
swarms+=($!)
for n in "${NODES[@]:1}"; do
  "$BIN/dropwire-swarm" --server "http://127.0.0.1:${PORT[$n]}" --admin-token "$TOKEN" \
    --viewers "$PER_NODE" --join "$ID" --timeout-s 900 --report "$WORK/$n.json" \
    >"$WORK/$n.txt" 2>&1 &
  swarms+=($!)
done
pids+=("${swarms[@]}")
rc=0
for p in "${swarms[@]}"; do wait "$p" || rc=1; done
REDIS_CPU1=$(redis_cpu)
parts=()
for n in "${NODES[@]}"; do
  if [ -f "$WORK/$n.json" ]; then parts+=("$WORK/$n.json"); else echo "!! node $n: no report: $(tail -n 3 "$WORK/$n.txt")"; rc=1; fi
done
"$BIN/dropwire-swarm" merge --quiet --report "$WORK/all.json" "${parts[@]}" >/dev/null

python3 - "$WORK" "$REDIS_CPU0" "$REDIS_CPU1" "${NODES[@]}" <<'PY' || rc=1
import json, os, sys
work, r0, r1, nodes = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
def pct(xs, p):
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, -(-len(xs) * p // 100) - 1))] if xs else None
for n in nodes:
    try:
        r = json.load(open(os.path.join(work, f"{n}.json")))
    except OSError:
        continue
    c = r["cue_latency_ms"]
    print(f"node {n}: {r['connected']} connected ({r['failed_connects']} failed), {r['dropped']} dropped, "
          f"{r['gaps']} gaps; cue latency p50 {c['p50']} ms, p99 {c['p99']} ms, max {c['max']} ms; "
          f"last viewer median {r['time_to_last_ms']['median']} ms, worst {r['time_to_last_ms']['worst']} ms")
m = json.load(open(os.path.join(work, "all.json")))
lasts = [x["max_ms"] for x in m["per_broadcast"] if x["kind"] == "bench_cue"]
full = [x for x in m["per_broadcast"] if x["kind"] == "bench_cue" and x["received"] == m["connected"]]
c = m["cue_latency_ms"]
print(f"\nall nodes: {m['connected']} of {m['viewers']} viewers connected, {m['dropped']} dropped, {m['gaps']} gaps; "
      f"{len(full)} of {len(lasts)} cues reached every viewer")
print(f"cue latency over every viewer and cue (ms): p50 {c['p50']}, p90 {c['p90']}, p99 {c['p99']}, p99.9 {c['p999']}, max {c['max']}")
if lasts:
    print(f"time to the last viewer of a cue, over all nodes (ms): p50 {pct(lasts, 50):.2f}, p99 {pct(lasts, 99):.2f}, "
          f"worst {max(lasts):.2f} ({len(lasts)} cues)")
print(f"hubs (4, summed): CPU {m.get('server_cpu_broadcast_ms')} ms over the cues for {m['delivered_messages']} delivered "
      f"messages: {m.get('cpu_per_msg_us')} µs per delivered message; RSS per connection {m.get('rss_per_conn_kib')} KiB")
print(f"redis-server: {r1 - r0:.2f} s CPU over the whole run")
ok = m["connected"] == m["viewers"] and m["dropped"] == 0 and m["gaps"] == 0 and len(full) == len(lasts) > 0
print("sound: every viewer connected and got every cue in order" if ok else "NOT sound: see above")
sys.exit(0 if ok else 1)
PY
exit "$rc"

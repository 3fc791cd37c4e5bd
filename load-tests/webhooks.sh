#!/usr/bin/env bash
# What webhooks cost a claim storm: the storm's p99 with three endpoints subscribed to every
# event — one dead (nothing listens), one slow (answers after 2 s), one fast — against none,
# ROUNDS rounds alternating, on the embedded store. Target: p99(hooks) ≤ 1.1 × p99(none),
# judged on the medians.
#
#   bash load-tests/webhooks.sh [VIEWERS] [STOCK] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
VIEWERS="${1:-10000}"
STOCK="${2:-50}"
ROUNDS="${3:-3}"
cargo build --quiet --release --bin dropwire --bin dropwire-swarm
WORK="$(mktemp -d)"
. load-tests/lib.sh
setsid python3 load-tests/receivers.py > "$WORK/port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
RPORT=$(cat "$WORK/port")
DEAD=$(free_port) # nothing listens there
HOOKS="http://127.0.0.1:$DEAD/dead http://127.0.0.1:$RPORT/slow http://127.0.0.1:$RPORT/fast"

echo "| round | webhooks | claim p50 (ms) | p99 (ms) | max (ms) | granted | oversell | deliveries when the storm ended |"
echo "|---:|---|---:|---:|---:|---:|---:|---|"
with=(); without=()
for round in $(seq "$ROUNDS"); do
  order=(hooks none); [ $((round % 2)) -eq 0 ] && order=(none hooks)
  for mode in "${order[@]}"; do
    out=$(if [ "$mode" = hooks ]; then HOOKS="$HOOKS" bash load-tests/storm.sh embedded "$VIEWERS" "$STOCK"; else bash load-tests/storm.sh embedded "$VIEWERS" "$STOCK"; fi 2>&1)
    lat=$(grep '^claim latency after the reveal' <<<"$out")
    p50=$(sed -E 's/.*p50 ([0-9.]+).*/\1/' <<<"$lat"); p99=$(sed -E 's/.*p99 ([0-9.]+).*/\1/' <<<"$lat"); max=$(sed -E 's/.*max ([0-9.]+).*/\1/' <<<"$lat")
    claims=$(grep '^claims:' <<<"$out")
    ok=$(sed -E 's/.* ([0-9]+) ok.*/\1/' <<<"$claims"); over=$(sed -E 's/.*oversell Some\(([0-9]+)\).*/\1/' <<<"$claims")
    hooks=$(grep -E '^webhooks:' <<<"$out" | sed -E 's/webhooks: //' || true)
    echo "| $round | $mode | $p50 | $p99 | $max | $ok | $over | ${hooks:-—} |"
    if [ "$mode" = hooks ]; then with+=("$p99"); else without+=("$p99"); fi
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mw=$(median "${with[@]}"); mn=$(median "${without[@]}")
awk -v w="$mw" -v n="$mn" 'BEGIN {printf "median p99: 3 webhook endpoints %.1f ms, none %.1f ms: %.2f× (target ≤ 1.10×)\n", w, n, w/n}'

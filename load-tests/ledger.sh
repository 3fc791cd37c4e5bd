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
echo "| round | ledger | claim p50 (ms) | p99 (ms) | max (ms) | granted | oversell | facts in the ledger |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|"
on=(); off=()
for round in $(seq "$ROUNDS"); do
  order=(on off); [ $((round % 2)) -eq 0 ] && order=(off on)
  for mode in "${order[@]}"; do
    out=$(if [ "$mode" = off ]; then LEDGER=off bash load-tests/storm.sh embedded "$VIEWERS" "$STOCK"; else bash load-tests/storm.sh embedded "$VIEWERS" "$STOCK"; fi 2>&1)
    lat=$(grep '^claim latency after the reveal' <<<"$out")
    p50=$(sed -E 's/.*p50 ([0-9.]+).*/\1/' <<<"$lat"); p99=$(sed -E 's/.*p99 ([0-9.]+).*/\1/' <<<"$lat"); max=$(sed -E 's/.*max ([0-9.]+).*/\1/' <<<"$lat")
    claims=$(grep '^claims:' <<<"$out")
    ok=$(sed -E 's/.* ([0-9]+) ok.*/\1/' <<<"$claims"); over=$(sed -E 's/.*oversell Some\(([0-9]+)\).*/\1/' <<<"$claims")
    facts=$(grep -E '^ledger facts' <<<"$out" | sed -E 's/ledger facts: //' || true)
    echo "| $round | $mode | $p50 | $p99 | $max | $ok | $over | ${facts:-—} |"
    if [ "$mode" = on ]; then on+=("$p99"); else off+=("$p99"); fi
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mon=$(median "${on[@]}"); moff=$(median "${off[@]}")
awk -v on="$mon" -v off="$moff" 'BEGIN {printf "median p99: ledger on %.1f ms, off %.1f ms: %.2f× (target ≤ 1.10×)\n", on, off, on/off}'

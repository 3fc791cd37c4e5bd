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

compare_storms "$VIEWERS" "$STOCK" "$ROUNDS" "webhooks" "3 webhook endpoints" "HOOKS=$(tr ' ' '|' <<<"$HOOKS")" "no webhooks" ""

# Shared by the load scripts that start their own servers (source it after setting WORK).
# Everything listens on 127.0.0.1 only; what is started is killed on exit.

pids=()
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # Each gets 5 s to exit before its files go: a server still writing on its way out made
  # `rm -rf` fail with "Directory not empty" (and the script with it) after a passing run.
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK" 2>/dev/null || { sleep 1; rm -rf "$WORK"; }; fi
}
trap cleanup EXIT

# start_redis PORT [redis-server flags…]: a redis-server in a session of its own (as a
# Redis service would be: with autogroup scheduling a process in this script's session
# shares one CPU share with the hub and the swarm), its files in $WORK; waits for it.
start_redis() {
  local port=$1; shift
  setsid redis-server --port "$port" --bind 127.0.0.1 --save "" --dir "$WORK" \
    --logfile "$WORK/redis-$port.log" "$@" &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "redis-server on port $port did not start" >&2; exit 1
}

# wait_ready PORT: until the hub on PORT answers /readyz.
wait_ready() {
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.1; done
  echo "no hub ready on port $1" >&2; exit 1
}

# compare_storms VIEWERS STOCK ROUNDS EXTRA NAME_A "ENV_A" NAME_B "ENV_B": runs storm.sh on the
# embedded store ROUNDS times for each of two setups (environment assignments such as
# LEDGER=off; "" for none), alternating which goes first; prints a Markdown row per run
# (claim p50/p99/max, granted, oversell, and the storm's line starting with EXTRA) and
# the ratio of the setups' median p99s (A over B).
compare_storms() {
  local viewers=$1 stock=$2 rounds=$3 extra=$4 name_a=$5 env_a=$6 name_b=$7 env_b=$8
  local p99s_a=() p99s_b=() round mode out lat claims p50 p99 max ok over info
  echo "| round | setup | claim p50 (ms) | p99 (ms) | max (ms) | granted | oversell | $extra |"
  echo "|---:|---|---:|---:|---:|---:|---:|---|"
  for round in $(seq "$rounds"); do
    local order=(a b); [ $((round % 2)) -eq 0 ] && order=(b a)
    for mode in "${order[@]}"; do
      local name=$name_a setup=$env_a
      [ "$mode" = b ] && name=$name_b setup=$env_b
      # shellcheck disable=SC2086 # $setup is a list of VAR=value words
      out=$(env $setup bash load-tests/storm.sh embedded "$viewers" "$stock" 2>&1)
      lat=$(grep '^claim latency after the reveal' <<<"$out")
      p50=$(sed -E 's/.*p50 ([0-9.]+).*/\1/' <<<"$lat"); p99=$(sed -E 's/.*p99 ([0-9.]+).*/\1/' <<<"$lat")
      max=$(sed -E 's/.*max ([0-9.]+).*/\1/' <<<"$lat")
      claims=$(grep '^claims:' <<<"$out")
      ok=$(sed -E 's/.* ([0-9]+) ok.*/\1/' <<<"$claims"); over=$(sed -E 's/.*oversell Some\(([0-9]+)\).*/\1/' <<<"$claims")
      info=$(grep -E "^$extra:" <<<"$out" | sed -E "s/^$extra: //" || true)
      echo "| $round | $name | $p50 | $p99 | $max | $ok | $over | ${info:-—} |"
      if [ "$mode" = a ]; then p99s_a+=("$p99"); else p99s_b+=("$p99"); fi
    done
  done
  median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
  awk -v a="$(median "${p99s_a[@]}")" -v b="$(median "${p99s_b[@]}")" -v na="$name_a" -v nb="$name_b" \
    'BEGIN {printf "median p99: %s %.1f ms, %s %.1f ms: %.2f× (target ≤ 1.10×)\n", na, a, nb, b, a/b}'
}

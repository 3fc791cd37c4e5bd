# Shared by the load scripts that start their own servers (source it after setting WORK).
# Everything listens on 127.0.0.1 only; what is started is killed on exit.

pids=()
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
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

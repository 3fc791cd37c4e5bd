#!/usr/bin/env bash
# What an idle hub costs with many past drops: DROPS drops are created through the HTTP API
# (the admin token, 8 keep-alive connections), each started and closed at once; once the
# closed drops' hubs are let go (--hub-idle-grace-s, 60 s by default: the script waits
# for dropwire_hubs_loaded to reach 0), the hub's CPU is read from /proc/PID/stat
# (utime + stime) over SECONDS seconds of idleness. Once on the embedded store, once on
# Redis (a redis-server started here; its own CPU is printed apart). Release build.
#
#   bash load-tests/idle.sh [DROPS] [SECONDS] [STORES]     # defaults: 10000 60 "embedded redis"
#
# Target: under 1% of one CPU on each store. With ROUNDS=N in the environment, DROPS more
# drops are seeded N times (RSS printed after each round's hubs are let go: what the node
# keeps per past drop), then the CPU is measured. With GRACE=S the hub runs with
# --hub-idle-grace-s S; from 600 on the script does not wait for the hubs to go (GRACE=86400:
# what the same drops cost with their hubs kept loaded, as before hubs were evicted).
set -euo pipefail
cd "$(dirname "$0")/.."
DROPS="${1:-10000}"
SECONDS_IDLE="${2:-60}"
STORES="${3:-embedded redis}"
ADMIN="idle-bench-admin-token-0123456789"
cargo build --quiet --release --bin dropwire
BIN="${CARGO_TARGET_DIR:-target}/release/dropwire"
WORK="$(mktemp -d)"
. load-tests/lib.sh
TICKS=$(getconf CLK_TCK)

# cpu_ticks PID: user + system time of a process so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
metric() { curl -fs "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }

ROUNDS="${ROUNDS:-1}"

# seed PORT ROUND: creates, starts and closes $DROPS drops; prints how long it took.
seed() {
  python3 - "$1" "$DROPS" "$ADMIN" "$2" <<'PY'
import http.client, json, sys, threading, time
port, drops, admin, round_ = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
spec = json.load(open("examples/speckled-mugs.json"))
headers = {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"}
failed = []
def worker(ids):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    def post(path, body):
        for _ in range(5):
            try:
                conn.request("POST", path, json.dumps(body), headers)
                resp = conn.getresponse()
                resp.read()
                return resp.status
            except (http.client.HTTPException, OSError):
                conn.close()
                time.sleep(0.2)
        return 0
    for i in ids:
        drop = f"idle-{round_}-{i}"
        for path, body in ((f"/api/v1/drops", dict(spec, id=drop)),
                           (f"/api/v1/drops/{drop}/start", {}),
                           (f"/api/v1/drops/{drop}/close", {})):
            status = post(path, body)
            if status not in (200, 201):
                failed.append((path, status))
started = time.time()
threads = [threading.Thread(target=worker, args=(range(t, drops, 8),)) for t in range(8)]
for t in threads: t.start()
for t in threads: t.join()
took = time.time() - started
print(f"seeded {drops} drops (create, start, close: {3 * drops} requests) in {took:.0f} s"
      f" ({3 * drops / took:.0f} requests/s), {len(failed)} failed")
if failed:
    print(failed[:5]); sys.exit(1)
PY
}

run() {
  local store=$1 port redis_port args=() pid redis_pid="" t0 t1 r0 r1
  port=$(free_port)
  args=(serve --bind "127.0.0.1:$port" --admin-token "$ADMIN" --data-dir "$WORK/data-$store")
  [ -n "${GRACE:-}" ] && args+=(--hub-idle-grace-s "$GRACE")
  if [ "$store" = redis ]; then
    redis_port=$(free_port)
    start_redis "$redis_port" --appendonly yes --appendfsync everysec
    redis_pid=${pids[-1]}
    args+=(--redis "redis://127.0.0.1:$redis_port/0")
  fi
  DROPWIRE_LOG=warn "$BIN" "${args[@]}" >"$WORK/hub-$store.out" 2>"$WORK/hub-$store.log" &
  pid=$!
  pids+=("$pid")
  wait_ready "$port"
  echo "== $store store: $((DROPS * ROUNDS)) drops"
  local round waited
  for round in $(seq "$ROUNDS"); do
    seed "$port" "$round"
    waited=0
    if [ "${GRACE:-60}" -ge 600 ]; then
      sleep 70
      echo "hubs kept: $(metric "$port" dropwire_hubs_loaded) loaded; RSS $(($(rss_kib "$pid") / 1024)) MiB"
      continue
    fi
    until [ "$(metric "$port" dropwire_hubs_loaded)" = "0" ]; do
      sleep 5; waited=$((waited + 5))
      if [ "$waited" -gt 600 ]; then echo "hubs still loaded after 600 s" >&2; exit 1; fi
    done
    echo "every closed drop's hub let go ${waited} s after seeding; RSS $(($(rss_kib "$pid") / 1024)) MiB"
  done
  sleep 5
  t0=$(cpu_ticks "$pid"); [ -n "$redis_pid" ] && r0=$(cpu_ticks "$redis_pid")
  sleep "$SECONDS_IDLE"
  t1=$(cpu_ticks "$pid"); [ -n "$redis_pid" ] && r1=$(cpu_ticks "$redis_pid")
  awk -v d=$((t1 - t0)) -v hz="$TICKS" -v s="$SECONDS_IDLE" -v st="$store" -v n="$((DROPS * ROUNDS))" -v rss="$(rss_kib "$pid")" \
    'BEGIN {printf "idle hub (%s, %d closed drops): %.2f%% of one CPU over %d s (%.2f s CPU), RSS %.0f MiB\n", st, n, 100 * d / hz / s, s, d / hz, rss / 1024}'
  if [ -n "$redis_pid" ]; then
    awk -v d=$((r1 - r0)) -v hz="$TICKS" -v s="$SECONDS_IDLE" \
      'BEGIN {printf "redis-server meanwhile: %.2f%% of one CPU\n", 100 * d / hz / s}'
  fi
  local op sum count
  for op in list_drops open_drops expire_due; do
    sum=$(metric "$port" "dropwire_store_seconds_sum{op=\"$op\"}")
    count=$(metric "$port" "dropwire_store_seconds_count{op=\"$op\"}")
    awk -v s="${sum:-0}" -v c="${count:-0}" -v op="$op" \
      'BEGIN {if (c > 0) printf "store %s: %d calls so far, %.2f ms each on average\n", op, c, 1000 * s / c}'
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for store in $STORES; do run "$store"; done

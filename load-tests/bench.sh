#!/usr/bin/env bash
# The benchmark: dropwire against the floors (the bare reference broadcasters: the
# multi-threaded tokio-tungstenite one and the single-thread epoll one) on this machine, in
# the same minute, at 1k, 5k and 15k viewers (three rounds, order rotating), plus a
# 10k-viewer claim storm against each; writes load-tests/RESULTS.md. Each server is
# fresh for each run (so memory per connection is measured from its own base). Runs are
# bounded: every swarm has a timeout. About 8 minutes with the defaults. After the
# measurements it measures the embedded store's start-up with a long history
# (journal_bench, about 3 minutes for a million past claims), then fuzzes
# (scripts/fuzz.sh, 10 s per target) and records the executions and crashes; the first
# fuzz build takes long (about 30 minutes here), later ones only rebuild the crates that
# changed.
#
#   bash load-tests/bench.sh
#
# Environment (all optional):
#   BENCH_SIZES="1000 5000 15000"   viewers per fan-out run
#   BENCH_BROADCASTS=20             measured broadcasts per run
#   BENCH_ROUNDS=3                  rounds per size (floor, floor-st, dropwire; order rotates)
#   BENCH_STORM=10000               claim-storm viewers (0 skips it)
#   BENCH_STORM_STOCK=50            units in the storm
#   BENCH_PER_PROCESS=15000         viewers per swarm process (more → several processes)
#   BENCH_TARGETS="floor floor-st dropwire redis"   what to run: floor is the multi-threaded
#                                   floor, floor-st the single-thread one (`floor
#                                   --single-thread`); redis needs redis-server and a
#                                   dropwire built with the Redis backend (else noted)
#   BENCH_OUT=load-tests/RESULTS.md
#   BENCH_QUIET_PCT=10 BENCH_QUIET_WAIT=300   before each run, wait up to 300 s for the
#                                   machine to be at most 10% busy
#   BENCH_DISTURBED_PCT=15 BENCH_RETRIES=3   a round in which other processes used more
#                                   than 15% of the machine is run again, at most 3 times
#                                   (100, i.e. never, when the bench runs at a raised priority)
#   BENCH_NICE=-15                  niceness of the bench's own session group (autogroup) and
#                                   processes; default -15 as root, else 0 (no change)
#   BENCH_HISTORY=1000000           past claims for the start-up benchmark (journal_bench); 0
#                                   skips it
#   BENCH_FUZZ_S=10                 seconds per fuzz target (scripts/fuzz.sh); 0 skips it. A
#                                   crash still writes RESULTS.md, then fails the bench
#   BENCH_KEEP=1                    keep the work dir (reports, server logs)
#   BENCH_COMMIT=abc123             the commit to name (default: git rev-parse HEAD)
# load-tests/analysis.md, when present, is appended to RESULTS.md (the profile notes).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
SIZES="${BENCH_SIZES:-1000 5000 15000}"
BROADCASTS="${BENCH_BROADCASTS:-20}"
STORM="${BENCH_STORM:-10000}"
STORM_STOCK="${BENCH_STORM_STOCK:-50}"
PER_PROCESS="${BENCH_PER_PROCESS:-15000}"
ROUNDS="${BENCH_ROUNDS:-3}"
QUIET_PCT="${BENCH_QUIET_PCT:-10}"
QUIET_WAIT="${BENCH_QUIET_WAIT:-300}"
# Servers and swarms run at a raised priority (as root) so that a build beside the bench
# cannot take half of the two CPUs away from them in the middle of a measurement.
if [ -z "${BENCH_NICE+x}" ]; then
  if [ "$(id -u)" = 0 ]; then BENCH_NICE=-15; else BENCH_NICE=0; fi
fi
prio=()
if [ "$BENCH_NICE" != 0 ] && nice -n "$BENCH_NICE" true 2>/dev/null; then
  prio=(nice -n "$BENCH_NICE")
  # With autogroup scheduling, niceness only counts inside a session's group: run the bench
  # in a session of its own and raise that group's weight against the other sessions.
  if [ -w /proc/self/autogroup ] && [ -z "${BENCH_SESSION:-}" ] && command -v setsid >/dev/null; then
    BENCH_SESSION=1 exec setsid --wait bash "$0" "$@"
  fi
  if [ -n "${BENCH_SESSION:-}" ]; then
    echo "$BENCH_NICE" >/proc/self/autogroup 2>/dev/null || true
  fi
fi
# At a raised priority other processes mostly run in the gaps between broadcasts, so their
# share of the window no longer says a run was disturbed: rerun only without the priority.
if [ -n "${BENCH_SESSION:-}" ]; then
  DISTURBED_PCT="${BENCH_DISTURBED_PCT:-100}"
else
  DISTURBED_PCT="${BENCH_DISTURBED_PCT:-15}"
fi
RETRIES="${BENCH_RETRIES:-3}"
TARGETS="${BENCH_TARGETS:-floor floor-st dropwire redis}"
OUT="${BENCH_OUT:-$here/RESULTS.md}"
FUZZ_S="${BENCH_FUZZ_S:-10}"
HISTORY="${BENCH_HISTORY:-1000000}"

echo "== build (release)"
pkgs=(-p dropwire-swarm)
[[ " $TARGETS " == *" dropwire "* || " $TARGETS " == *" redis "* ]] && pkgs+=(-p dropwire-server)
(cd "$root" && cargo build --release --quiet "${pkgs[@]}")
if [ "$HISTORY" -gt 0 ]; then
  (cd "$root" && cargo build --release --quiet -p dropwire-store --example journal_bench)
fi
dw="$CARGO_TARGET_DIR/release/dropwire"
swarm="$CARGO_TARGET_DIR/release/dropwire-swarm"

# Many sockets: every file descriptor this shell may have, for the servers and swarms.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "== open files per process: $(ulimit -n); local ports: $(cat /proc/sys/net/ipv4/ip_local_port_range | tr '\t' '-'); priority: ${prio[*]:-normal}, $(cat /proc/self/autogroup 2>/dev/null || echo "no autogroup")"

work="$(mktemp -d /tmp/dropwire-bench.XXXXXX)"
token="bench-$(date +%s%N)"
declare -a live=()
cleanup() {
  for p in "${live[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${live[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$work"; else echo "work dir kept: $work"; fi
}
trap cleanup EXIT

# Waits for "listening on http://…" in $1 from process $2; prints the URL.
wait_url() {
  local file=$1 pid=$2 url=""
  for _ in $(seq 1 200); do
    url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$file" | head -n1)
    [ -n "$url" ] && { echo "$url"; return 0; }
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# Starts a server; sets SRV_URL and SRV_PID. $1 = name, then the command.
start() {
  local name=$1
  shift
  mkdir -p "$work/$name"
  "${prio[@]}" "$@" >"$work/$name/stdout" 2>"$work/$name/stderr" &
  SRV_PID=$!
  live+=("$SRV_PID")
  if ! SRV_URL=$(wait_url "$work/$name/stdout" "$SRV_PID"); then
    echo "!! $name did not start:" >&2
    head -n 5 "$work/$name/stderr" >&2
    return 1
  fi
}

stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# run_swarm REPORT URL PID VIEWERS [swarm flags…]: one process, or several on one drop.
run_swarm() {
  local out=$1 url=$2 pid=$3 n=$4
  shift 4
  local procs=$(((n + PER_PROCESS - 1) / PER_PROCESS))
  local common=(--server "$url" --admin-token "$token" --server-pid "$pid" --quiet --timeout-s 300)
  if [ "$procs" -le 1 ]; then
    timeout 400 "${prio[@]}" "$swarm" "${common[@]}" --viewers "$n" --report "$out" "$@" >"$out.txt" 2>&1 || true
  else
    local per=$((n / procs)) id="bench-$(date +%s)-$RANDOM" parts=() i
    timeout 400 "${prio[@]}" "$swarm" "${common[@]}" --viewers $((n - per * (procs - 1))) --drop-id "$id" \
      --expect-viewers "$n" --report "$out.0" "$@" >"$out.0.txt" 2>&1 &
    local waits=($!)
    parts+=("$out.0")
    for i in $(seq 1 $((procs - 1))); do
      timeout 400 "${prio[@]}" "$swarm" "${common[@]}" --viewers "$per" --join "$id" --report "$out.$i" \
        $([[ " $* " == *" --claim "* ]] && echo --claim) >"$out.$i.txt" 2>&1 &
      waits+=($!)
      parts+=("$out.$i")
    done
    for w in "${waits[@]}"; do wait "$w" || true; done
    "$swarm" merge --quiet --report "$out" "${parts[@]}" >/dev/null 2>&1 || true
  fi
  if [ -f "$out" ]; then
    python3 - "$out" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
name = os.path.basename(sys.argv[1]).split("-")[0:-2]
name = "-".join(name).replace("storm-", "") or r["target"]
print(f"   {name:8} {r['viewers']:>6} viewers: {r['connected']} connected, "
      f"last viewer median {r['time_to_last_ms']['median']:.2f} ms, worst {r['time_to_last_ms']['worst']:.2f} ms, "
      f"cpu/msg {r.get('cpu_per_msg_us')} µs, rss/conn {r.get('rss_per_conn_kib')} KiB, gaps {r['gaps']}"
      + (f", claims ok {r['claims_ok']} p99 {r['claim_latency_ms']['p99']} ms" if r['claims_sent'] else ""))
PY
  else
    echo "   !! no report: $(tail -n 3 "$out.txt" 2>/dev/null)"
  fi
}

redis_pid=""
redis_note=""
start_redis_dropwire() { # name → SRV_URL, SRV_PID (dropwire on a fresh redis-server)
  local name=$1 port
  port=$(free_port)
  mkdir -p "$work/$name-redis"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work/$name-redis" >"$work/$name-redis/log" 2>&1 &
  redis_pid=$!
  live+=("$redis_pid")
  for _ in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.05
  done
  start "$name" "$dw" serve --bind 127.0.0.1:0 --data-dir "$work/$name/data" \
    --admin-token "$token" --redis "redis://127.0.0.1:$port"
}

want() { [[ " $TARGETS " == *" $1 "* ]]; }
use_redis=0
if want redis; then
  if ! command -v redis-server >/dev/null; then
    redis_note="Redis: not run (no redis-server on this machine)."
  elif start_redis_dropwire probe; then
    use_redis=1
    stop "$SRV_PID"
    stop "$redis_pid"
  else
    redis_note="Redis: not run — \`dropwire serve --redis\` refused to start: $(grep -m1 . "$work/probe/stderr")"
    stop "$redis_pid"
  fi
fi

# Waits (at most BENCH_QUIET_WAIT s) until the machine is quiet: other processes (a build
# beside the bench) would be measured as noise. Each report also records what else ran.
machine_busy_pct() {
  local a b
  a=$(head -n1 /proc/stat)
  sleep 1
  b=$(head -n1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {
    split(a, x); split(b, y);
    busy = (y[2]+y[3]+y[4]+y[7]+y[8]) - (x[2]+x[3]+x[4]+x[7]+x[8]);
    idle = (y[5]+y[6]) - (x[5]+x[6]);
    printf "%d", (busy + idle > 0) ? 100 * busy / (busy + idle) : 0 }'
}

wait_quiet() {
  local waited=0 busy
  while :; do
    busy=$(machine_busy_pct)
    [ "$busy" -le "$QUIET_PCT" ] && return 0
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
      echo "   (machine still ${busy}% busy after ${waited} s; measuring anyway)"
      return 0
    fi
    [ "$waited" = 0 ] && echo "   (machine ${busy}% busy: waiting for it to go quiet)"
    sleep 4
    waited=$((waited + 5))
  done
}

# True when other processes used more than DISTURBED_PCT of the machine during the run's
# measured window (the swarm records it), or the report is missing.
disturbed() {
  python3 - "$1" "$DISTURBED_PCT" <<'PY'
import json, os, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit(0)
other = r.get("other_cpu_broadcast_ms") if r.get("broadcasts") else r.get("other_cpu_claims_ms")
window = r.get("broadcast_window_s") if r.get("broadcasts") else r.get("claims_window_s")
if other is None or not window:
    sys.exit(1)
pct = 100 * other / (window * 1000 * (os.cpu_count() or 1))
sys.exit(0 if pct > float(sys.argv[2]) else 1)
PY
}

# round PREFIX VIEWERS ROUND [swarm flags…]: the floors and dropwire back to back (the
# order rotating by round), again (up to RETRIES times) when a neighbour disturbed any.
round() {
  local prefix=$1 n=$2 rnd=$3 attempt order=() t bad i
  local all=(floor floor-st dropwire)
  shift 3
  for i in 0 1 2; do order+=("${all[$(((rnd - 1 + i) % 3))]}"); done
  for attempt in $(seq 1 "$RETRIES"); do
    bad=0
    for t in "${order[@]}"; do
      want "$t" || continue
      "run_${t//-/_}" "$work/$prefix$t-$n-r$rnd.json" "$n" "$@"
      if disturbed "$work/$prefix$t-$n-r$rnd.json"; then bad=1; fi
    done
    if [ "$bad" = 0 ]; then return 0; fi
    if [ "$attempt" -lt "$RETRIES" ]; then
      echo "   (other processes disturbed this round: running it again)"
    fi
  done
  return 0
}

run_floor() { # REPORT VIEWERS [swarm flags…]
  local out=$1 n=$2
  wait_quiet
  shift 2
  start "$(basename "$out" .json)" "$swarm" floor --bind 127.0.0.1:0
  run_swarm "$out" "$SRV_URL" "$SRV_PID" "$n" "$@"
  stop "$SRV_PID"
}

run_floor_st() { # REPORT VIEWERS [swarm flags…]: the single-thread floor
  local out=$1 n=$2
  wait_quiet
  shift 2
  start "$(basename "$out" .json)" "$swarm" floor --single-thread --bind 127.0.0.1:0
  run_swarm "$out" "$SRV_URL" "$SRV_PID" "$n" "$@"
  stop "$SRV_PID"
}

run_dropwire() { # REPORT VIEWERS [swarm flags…]
  local out=$1 n=$2 name
  wait_quiet
  shift 2
  name="$(basename "$out" .json)"
  start "$name" "$dw" serve --bind 127.0.0.1:0 --data-dir "$work/$name/data" --admin-token "$token"
  run_swarm "$out" "$SRV_URL" "$SRV_PID" "$n" "$@"
  stop "$SRV_PID"
}

run_redis() { # REPORT VIEWERS [swarm flags…]
  local out=$1 n=$2
  wait_quiet
  shift 2
  start_redis_dropwire "$(basename "$out" .json)"
  run_swarm "$out" "$SRV_URL" "$SRV_PID" "$n" "$@"
  stop "$SRV_PID"
  stop "$redis_pid"
}

for n in $SIZES; do
  for rnd in $(seq 1 "$ROUNDS"); do
    echo "== $n viewers, round $rnd"
    round "" "$n" "$rnd" --broadcasts "$BROADCASTS"
  done
  if [ "$use_redis" = 1 ]; then
    run_redis "$work/redis-$n-r1.json" "$n" --broadcasts "$BROADCASTS"
  fi
done

if [ "$STORM" -gt 0 ]; then
  echo "== claim storm: $STORM viewers, $STORM_STOCK units"
  storm=(--broadcasts 0 --claim --stock "$STORM_STOCK")
  for rnd in $(seq 1 "$ROUNDS"); do
    round "storm-" "$STORM" "$rnd" "${storm[@]}"
  done
  if [ "$use_redis" = 1 ]; then
    run_redis "$work/storm-redis-$STORM-r1.json" "$STORM" "${storm[@]}"
  fi
fi

# The embedded store's start-up with a long history (each phase in a process of its own).
history_section=""
if [ "$HISTORY" -gt 0 ]; then
  echo "== start-up with $HISTORY past claims (journal_bench)"
  wait_quiet
  if "${prio[@]}" "$CARGO_TARGET_DIR/release/examples/journal_bench" --claims "$HISTORY" \
    --dir "$work/history" >"$work/history.md" 2>"$work/history.log"; then
    history_section="## Start-up and memory with a long history

Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench.sh\`: \`cargo run --release -p dropwire-store
--example journal_bench -- --claims $HISTORY\`. Each row is a fresh process opening the data dir.

$(cat "$work/history.md")"
  else
    history_section="## Start-up and memory with a long history

Not measured: journal_bench failed ($(tail -n 1 "$work/history.log"))."
  fi
  rm -rf "$work/history"
fi
# Fuzzing last: it takes both CPUs, and no measurement runs beside it.
fuzz_section=""
fuzz_rc=0
if [ "$FUZZ_S" -gt 0 ]; then
  echo "== fuzzing: $FUZZ_S s per target (scripts/fuzz.sh)"
  bash "$root/scripts/fuzz.sh" "$FUZZ_S" >"$work/fuzz.log" 2>&1 || fuzz_rc=$?
  grep -E '^   [a-z_]+: [0-9]+ executions' "$work/fuzz.log" || tail -n 5 "$work/fuzz.log"
  table=$(grep '^|' "$work/fuzz.log" || true)
  fuzz_section="## Fuzzing

Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench.sh\`: \`bash scripts/fuzz.sh $FUZZ_S\`, each
cargo-fuzz target in \`fuzz/\` (libFuzzer, AddressSanitizer, overflow checks) for $FUZZ_S s."
  if [ -n "$table" ]; then
    fuzz_section+="

$table"
  else
    fuzz_section+=" Not run: \`scripts/fuzz.sh\` exited $fuzz_rc before fuzzing."
  fi
fi

echo "== writing $OUT"
python3 "$here/results.py" --work "$work" --out "$OUT" --sizes "$SIZES" \
  --broadcasts "$BROADCASTS" --rounds "$ROUNDS" --storm "$STORM" --note "$redis_note" \
  --disturbed-pct "$DISTURBED_PCT" \
  --commit "${BENCH_COMMIT:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)}" \
  --notes "$here/analysis.md"
if [ -n "$history_section" ]; then
  printf '\n%s\n' "$history_section" >>"$OUT"
fi
if [ -n "$fuzz_section" ]; then
  printf '\n%s\n' "$fuzz_section" >>"$OUT"
fi
if [ "$fuzz_rc" != 0 ]; then
  echo "!! fuzzing failed (exit $fuzz_rc): see fuzz/artifacts/" >&2
  exit "$fuzz_rc"
fi

#!/usr/bin/env bash
# Side by side: the same fan-out and claim storm against several dropwire builds, in the
# same minutes, with one swarm (this checkout's), to attribute a change in the figures to
# the commits between the builds. Each run starts a fresh server with its own data dir.
#
#   bash load-tests/drift.sh NAME=BINARY [NAME=BINARY …]
#
# e.g. (builds of older commits made in worktrees beside this one):
#   bash load-tests/drift.sh 704df0e=/tmp/b/704/dropwire head=target/release/dropwire \
#     head-noledger=target/release/dropwire@--ledger@off
# A `@` in BINARY separates extra `serve` flags. Prints one line per run and a summary of
# medians per build (fan-out: time to the last viewer, CPU per delivered message, RSS per
# connection; storm: claim p99, server CPU during the claims).
#
# Environment: DRIFT_ROUNDS=3 (order rotates each round), DRIFT_FANOUT=5000 viewers with
# DRIFT_BROADCASTS=20, DRIFT_STORM=10000 viewers (0 skips) with 50 units,
# DRIFT_OUT=/tmp/drift (the swarm's JSON reports).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${DRIFT_ROUNDS:-3}"
FANOUT="${DRIFT_FANOUT:-5000}"
BROADCASTS="${DRIFT_BROADCASTS:-20}"
STORM="${DRIFT_STORM:-10000}"
OUT="${DRIFT_OUT:-/tmp/drift}"
SWARM="${SWARM:-target/release/dropwire-swarm}"
TOKEN="drift-bench-token-0123456789abcdef"
[ $# -ge 1 ] || { sed -n 2,18p "$0"; exit 2; }
[ -x "$SWARM" ] || { echo "drift: $SWARM is missing (cargo build --release --bin dropwire-swarm)" >&2; exit 1; }
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"
prio=()
if [ "$(id -u)" = 0 ]; then
  prio=(nice -n -15)
  if [ -w /proc/self/autogroup ] && [ -z "${DRIFT_SESSION:-}" ]; then
    DRIFT_SESSION=1 exec setsid --wait bash "$0" "$@"
  fi
  echo -15 > /proc/self/autogroup 2>/dev/null || true
fi

builds=("$@")
srv=""
cleanup() { [ -n "$srv" ] && kill "$srv" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

# run NAME SPEC KIND ROUND: one fresh server, one swarm; the report lands in $OUT.
run() {
  local name=$1 spec=$2 kind=$3 round=$4 bin flags work url=""
  IFS=@ read -r -a parts <<< "$spec"
  bin=${parts[0]}
  flags=("${parts[@]:1}")
  work=$(mktemp -d)
  DROPWIRE_LOG=warn "${prio[@]}" "$bin" serve --bind 127.0.0.1:0 --data-dir "$work/data" \
    --admin-token "$TOKEN" "${flags[@]}" > "$work/out" 2>&1 &
  srv=$!
  for _ in $(seq 1 200); do
    url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/out" | head -n1)
    [ -n "$url" ] && break
    sleep 0.05
  done
  [ -n "$url" ] || { echo "!! $name did not start: $(head -n 3 "$work/out")" >&2; exit 1; }
  local report="$OUT/$kind-$name-r$round.json" args
  if [ "$kind" = fanout ]; then
    args=(--viewers "$FANOUT" --broadcasts "$BROADCASTS")
  else
    args=(--viewers "$STORM" --broadcasts 0 --claim --stock 50)
  fi
  timeout 400 "${prio[@]}" "$SWARM" --server "$url" --admin-token "$TOKEN" --server-pid "$srv" \
    --quiet --timeout-s 300 --report "$report" "${args[@]}" > "$report.txt" 2>&1 || true
  kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null || true
  srv=""
  rm -rf "$work"
  python3 - "$report" "$name" "$kind" "$round" <<'PY'
import json, sys
path, name, kind, rnd = sys.argv[1:]
try:
    r = json.load(open(path))
except OSError:
    print(f"{kind:6} r{rnd} {name:16} !! no report"); sys.exit()
if kind == "fanout":
    print(f"{kind:6} r{rnd} {name:16} last viewer median {r['time_to_last_ms']['median']:7.2f} ms  "
          f"cpu/msg {r['cpu_per_msg_us']:6.2f} µs  rss/conn {r['rss_per_conn_kib']:5.2f} KiB  "
          f"gaps {r['gaps']}  other {r['other_cpu_broadcast_ms']:.0f} ms")
else:
    print(f"{kind:6} r{rnd} {name:16} ok {r['claims_ok']} oversell {r['oversell']}  "
          f"p50 {r['claim_latency_ms']['p50']:7.2f}  p99 {r['claim_latency_ms']['p99']:7.2f} ms  "
          f"server cpu {r.get('server_cpu_claims_ms')} ms  other {r.get('other_cpu_claims_ms')} ms")
PY
}

for round in $(seq 1 "$ROUNDS"); do
  n=${#builds[@]}
  for i in $(seq 0 $((n - 1))); do
    b=${builds[$(((i + round - 1) % n))]}
    name=${b%%=*}
    spec=${b#*=}
    [ "$FANOUT" -gt 0 ] && run "$name" "$spec" fanout "$round"
    [ "$STORM" -gt 0 ] && run "$name" "$spec" storm "$round"
  done
done

python3 - "$OUT" "${builds[@]}" <<'PY'
import glob, json, statistics, sys
out, builds = sys.argv[1], [b.split("=", 1)[0] for b in sys.argv[2:]]
def med(xs): return statistics.median(xs) if xs else float("nan")
print("\nmedians over the rounds")
print(f"{'build':16} {'last viewer ms':>15} {'cpu/msg µs':>11} {'rss/conn KiB':>13} {'storm p99 ms':>13} {'storm cpu ms':>13}")
for b in builds:
    f = [json.load(open(p)) for p in glob.glob(f"{out}/fanout-{b}-r*.json")]
    s = [json.load(open(p)) for p in glob.glob(f"{out}/storm-{b}-r*.json")]
    print(f"{b:16} {med([r['time_to_last_ms']['median'] for r in f]):15.2f} "
          f"{med([r['cpu_per_msg_us'] for r in f]):11.2f} {med([r['rss_per_conn_kib'] for r in f]):13.2f} "
          f"{med([r['claim_latency_ms']['p99'] for r in s]):13.2f} "
          f"{med([r['server_cpu_claims_ms'] or 0 for r in s]):13.0f}")
PY

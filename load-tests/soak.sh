#!/usr/bin/env bash
# A soak: one hub on the embedded store under a steady show for MINUTES, watched for growth.
# VIEWERS viewers (one `dropwire-swarm --join` process) watch one drop; this script fires an
# ad-hoc cue every 5 s on a fixed clock (so every 30 s interval holds the same work), and
# every 5 minutes (at 2.5, 7.5 … min) a claim storm: a separate swarm creates a new drop (fresh stock), mints
# STORM_VIEWERS tokens, connects them, reveals, and every storm viewer claims at once, then
# leaves (connection churn on top of the steady viewers). Every 30 s it samples the hub's
# RSS, CPU time, open fds (/proc/PID/fd), threads, and from /metrics its viewer connections
# (`dropwire_connections`) and live tokio tasks (`dropwire_runtime_tasks`), into a CSV.
#
# At the end it prints a summary over the samples after the warm-up (the first 5 minutes;
# a third of the run when it is shorter than 10 minutes): RSS and CPU time per 30 s interval
# (intervals in which a storm ran are shown apart: they hold more work), their largest
# deviation from the mean in %, fds, connections and tasks with the viewers on at the
# warm-up's end vs at the end, and idle before vs after (every viewer gone), and a verdict
# against "flat within 5%, no leaked fds or tasks".
#
#   bash load-tests/soak.sh [MINUTES=30] [VIEWERS=10000]
#
# Environment: SOAK_CUE_S=5 SOAK_SAMPLE_S=30 SOAK_STORM_EVERY_S=300 SOAK_STORM_VIEWERS=1000
# SOAK_STORM_STOCK=50 SOAK_WARMUP_S (default above) SOAK_FLAT_PCT=5 SOAK_CSV (default
# /tmp/dropwire-soak-<time>.csv) KEEP=1 (keep the work dir: hub log, swarm reports).
# Builds the release binaries first (CARGO_TARGET_DIR is honoured).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-30}"
VIEWERS="${2:-10000}"
CUE_S="${SOAK_CUE_S:-5}"
SAMPLE_S="${SOAK_SAMPLE_S:-30}"
STORM_EVERY_S="${SOAK_STORM_EVERY_S:-300}"
STORM_VIEWERS="${SOAK_STORM_VIEWERS:-1000}"
STORM_STOCK="${SOAK_STORM_STOCK:-50}"
RUN_S=$((MINUTES * 60))
if [ "$RUN_S" -ge 600 ]; then WARMUP_DEFAULT=300; else WARMUP_DEFAULT=$((RUN_S / 3)); fi
WARMUP_S="${SOAK_WARMUP_S:-$WARMUP_DEFAULT}"
FLAT_PCT="${SOAK_FLAT_PCT:-5}"
CSV="${SOAK_CSV:-/tmp/dropwire-soak-$(date +%Y%m%d-%H%M%S).csv}"
TOKEN="soak-bench-token-0123456789abcdef"
TICKS_PER_SAMPLE=$((SAMPLE_S / CUE_S))
TICKS_PER_STORM=$((STORM_EVERY_S / CUE_S))
TICKS=$((RUN_S / CUE_S))

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
echo "== build (release)"
cargo build --release --quiet --bin dropwire --bin dropwire-swarm
BIN="$CARGO_TARGET_DIR/release"
WORK="$(mktemp -d /tmp/dropwire-soak.XXXXXX)"
ulimit -n "$(ulimit -Hn)"
. load-tests/lib.sh

PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
DROPWIRE_LOG=warn "$BIN/dropwire" serve --bind "127.0.0.1:$PORT" --data-dir "$WORK/data" \
  --admin-token "$TOKEN" >"$WORK/hub.log" 2>&1 &
HUB=$!
pids+=("$HUB")
wait_ready "$PORT"

api() { # METHOD PATH [JSON]
  curl -fsS -X "$1" "$URL$2" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    ${3:+--data "$3"}
}
now_ms() { date +%s%3N; }
HZ=$(getconf CLK_TCK)
T0=$(now_ms)
echo "t_s,phase,rss_kib,cpu_s,fds,threads,connections,tasks,storms" >"$CSV"
# CPU time of a process (user + system, every thread, live or exited), in seconds: the
# ticks of /proc/PID/stat (10 ms apart, too coarse for 30 s intervals) with the live
# threads' share replaced by their nanoseconds from schedstat, as the swarm reads it.
cpu_s() {
  python3 - "$1" "$HZ" <<'PY'
import os, sys
pid, hz = sys.argv[1], int(sys.argv[2])
def ticks(path):
    f = open(path).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])  # utime, stime
total, live_ticks, live_ns = ticks(f"/proc/{pid}/stat"), 0, 0
for t in os.listdir(f"/proc/{pid}/task"):
    try:
        ns = int(open(f"/proc/{pid}/task/{t}/schedstat").read().split()[0])
        live_ticks, live_ns = live_ticks + ticks(f"/proc/{pid}/task/{t}/stat"), live_ns + ns
    except (OSError, ValueError, IndexError):
        continue  # a thread that just exited
print(f"{max(0, total - live_ticks) / hz + live_ns / 1e9:.4f}")
PY
}
storms_running() { # storm swarms alive now
  local n=0 p
  for p in "${storm_pids[@]}"; do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done
  echo "$n"
}
sample() { # PHASE
  local rss thr cpu fds m conns tasks
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$HUB/status")
  thr=$(awk '/^Threads:/ {print $2}' "/proc/$HUB/status")
  cpu=$(cpu_s "$HUB")
  fds=$(find "/proc/$HUB/fd" -mindepth 1 -maxdepth 1 | wc -l)
  m=$(curl -fs "$URL/metrics" || true)
  conns=$(awk '$1 == "dropwire_connections" {print $2}' <<<"$m")
  tasks=$(awk '$1 == "dropwire_runtime_tasks" {print $2}' <<<"$m")
  echo "$(( ($(now_ms) - T0) / 1000 )),$1,$rss,$cpu,$fds,$thr,${conns:-},${tasks:-},$(storms_running)" >>"$CSV"
}
storm_pids=()
sample idle

# The steady drop: an intro now, its reveal and close well after the run; cues are fired ad hoc.
ID="soak-$(now_ms)"
DUR=$((RUN_S + 3600))
api POST /api/v1/drops "{\"id\":\"$ID\",\"title\":\"soak\",\"kind\":\"demo\",\"currency\":\"EUR\",\"hold_s\":3600,
  \"inventory\":[{\"sku\":\"soak-item\",\"name\":\"Soak item\",\"price_cents\":1000,\"stock\":1}],
  \"script\":{\"duration_s\":$DUR,\"cues\":[{\"at_s\":0,\"type\":\"intro\",\"title\":\"soak\"},{\"at_s\":$((DUR - 10)),\"type\":\"reveal\",\"sku\":\"soak-item\"},{\"at_s\":$DUR,\"type\":\"close\"}]}}" >/dev/null
api POST "/api/v1/drops/$ID/start" >/dev/null
echo "== $VIEWERS viewers join drop $ID"
"$BIN/dropwire-swarm" --server "$URL" --admin-token "$TOKEN" --viewers "$VIEWERS" --join "$ID" \
  --timeout-s $((RUN_S + 1200)) --report "$WORK/viewers.json" >"$WORK/viewers.txt" 2>&1 &
SWARM=$!
pids+=("$SWARM")
for _ in $(seq 600); do
  n=$(api GET "/api/v1/drops/$ID/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["viewers"]["now"])')
  [ "$n" -ge "$VIEWERS" ] && break
  kill -0 "$SWARM" 2>/dev/null || { echo "the viewers' swarm ended early:"; tail -n 5 "$WORK/viewers.txt"; exit 1; }
  sleep 0.5
done
echo "   $n viewers on; soak for $MINUTES min: a cue every $CUE_S s, a claim storm of $STORM_VIEWERS every $STORM_EVERY_S s, samples every $SAMPLE_S s"

# The clock: tick k at START + k × CUE_S. A sample before the tick's cue, so every interval
# between samples holds TICKS_PER_SAMPLE cues. Storms are half a period off the clock's
# start (2.5, 7.5, 12.5 … min): the first one lands in the warm-up, so the memory a burst
# of connections leaves with the allocator is part of the baseline, not of the trend.
START=$(now_ms)
T0=$START
sample run
storm=0
for k in $(seq 1 "$TICKS"); do
  wait_ms=$((START + k * CUE_S * 1000 - $(now_ms)))
  [ "$wait_ms" -gt 0 ] && sleep "$(awk -v m="$wait_ms" 'BEGIN {printf "%.3f", m / 1000}')"
  if [ $((k % TICKS_PER_SAMPLE)) = 0 ]; then sample run; fi
  api POST "/api/v1/drops/$ID/fire" "{\"cue\":{\"type\":\"cta\",\"title\":\"soak cue $k: tap to follow the studio\"}}" >/dev/null ||
    echo "   !! cue $k not fired"
  if [ $(((k + TICKS_PER_STORM / 2) % TICKS_PER_STORM)) = 0 ]; then
    storm=$((storm + 1))
    echo "$storm,$(( ($(now_ms) - T0) / 1000 ))" >>"$WORK/storms.csv"
    "$BIN/dropwire-swarm" --server "$URL" --admin-token "$TOKEN" --viewers "$STORM_VIEWERS" --claim \
      --stock "$STORM_STOCK" --broadcasts 0 --quiet --timeout-s 240 \
      --report "$WORK/storm-$storm.json" >"$WORK/storm-$storm.txt" 2>&1 &
    storm_pids+=($!)
    pids+=($!)
  fi
done
for p in "${storm_pids[@]}"; do wait "$p" || true; done
api POST "/api/v1/drops/$ID/close" >/dev/null
wait "$SWARM" || true
# Let the hub finish with the connections that just closed, then the idle figures again.
sleep 5
sample after
cp "$WORK/viewers.json" "${CSV%.csv}-viewers.json" 2>/dev/null || true

python3 - "$CSV" "$WORK" "$WARMUP_S" "$FLAT_PCT" "$storm" "$VIEWERS" "$MINUTES" "$CUE_S" <<'PY'
import csv, glob, json, os, sys
path, work, warmup, flat, storms, viewers, minutes, cue_s = sys.argv[1:9]
warmup, flat, storms = int(warmup), float(flat), int(storms)
rows = list(csv.DictReader(open(path)))
num = lambda r, k: float(r[k]) if r[k] not in ("", None) else None
idle = [r for r in rows if r["phase"] == "idle"][0]
after = [r for r in rows if r["phase"] == "after"][-1]
run = [r for r in rows if r["phase"] == "run"]
steady = [r for r in run if int(r["t_s"]) >= warmup]
print(f"\n== soak summary: {minutes} min, {viewers} viewers, a cue every {cue_s} s, {storms} claim storms")
print(f"samples: {path} ({len(run)} with the viewers on, {len(steady)} after the {warmup} s warm-up)")

def dev(xs):
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    return m, (100 * max(abs(x - m) for x in xs) / m if m else 0.0)

verdicts = []
rss = [num(r, "rss_kib") / 1024 for r in steady]
m, d = dev(rss)
if m is not None:
    print(f"RSS (MiB) after warm-up: mean {m:.1f}, min {min(rss):.1f}, max {max(rss):.1f}; "
          f"largest deviation {d:.1f}%; first → last {100 * (rss[-1] - rss[0]) / rss[0]:+.1f}%")
    verdicts.append((f"RSS flat within {flat:g}%", d <= flat, f"{d:.1f}%"))
# CPU per interval: consecutive samples after the warm-up; an interval in which a storm
# started (or still ran at either end) holds a storm's work too and is shown apart.
storm_starts = [int(l.split(",")[1]) for l in open(os.path.join(work, "storms.csv"))] if os.path.exists(os.path.join(work, "storms.csv")) else []
quiet, stormy = [], []
for a, b in zip(steady, steady[1:]):
    used = num(b, "cpu_s") - num(a, "cpu_s")
    hit = any(int(a["t_s"]) <= t < int(b["t_s"]) for t in storm_starts) or int(a["storms"]) or int(b["storms"])
    (stormy if hit else quiet).append(used)
m, d = dev(quiet)
if m is not None:
    print(f"CPU per {int(steady[1]['t_s']) - int(steady[0]['t_s'])} s interval after warm-up, no storm: "
          f"mean {m:.2f} s, min {min(quiet):.2f}, max {max(quiet):.2f}; largest deviation {d:.1f}% "
          f"({len(quiet)} intervals)")
    verdicts.append((f"CPU per interval flat within {flat:g}%", d <= flat, f"{d:.1f}%"))
if stormy:
    print(f"  intervals with a claim storm: {len(stormy)}, mean {sum(stormy) / len(stormy):.2f} s, max {max(stormy):.2f} s")
on = [r for r in steady if not int(r["storms"])] or steady
if on:
    s, e = on[0], on[-1]
    for k in ("fds", "connections", "tasks", "threads"):
        print(f"{k:12} idle before {idle[k] or 'n/a':>7}   on, after warm-up {s[k] or 'n/a':>7}   on, at the end {e[k] or 'n/a':>7}   idle after {after[k] or 'n/a':>7}")
    drops_on = sum(1 for t in storm_starts if int(s["t_s"]) <= t < int(e["t_s"]))
    for k in ("fds", "tasks"):
        if s[k] and e[k] and idle[k] and after[k]:
            grew_on = int(float(e[k])) - int(float(s[k]))
            grew_idle = int(float(after[k])) - int(float(idle[k]))
            verdicts.append((f"no leaked {k}: as many with the viewers on at the end as after warm-up, "
                             f"idle after as before", grew_on <= 0 and grew_idle <= 0,
                             f"on {grew_on:+d} (drops created in between: {drops_on}), "
                             f"idle {grew_idle:+d} (drops created: {storms + 1})"))
            if k == "tasks" and 0 < grew_idle <= storms + 1:
                print(f"  tasks +{grew_idle} for {storms + 1} drops created: a drop's hub keeps its task "
                      "after the drop closed (DropHub::run ends at shutdown), not a per-connection leak")
    if after["connections"]:
        verdicts.append(("every connection closed after the viewers left", float(after["connections"]) == 0, after["connections"]))
try:
    v = json.load(open(os.path.join(work, "viewers.json")))
    c = v["cue_latency_ms"]
    print(f"viewers: {v['connected']} connected, {v['dropped']} dropped, {v['gaps']} gaps; cue latency "
          f"p50 {c['p50']} ms, p99 {c['p99']} ms, max {c['max']} ms over {c['count']} deliveries; "
          f"last viewer median {v['time_to_last_ms']['median']} ms, worst {v['time_to_last_ms']['worst']} ms")
    verdicts.append(("no viewer dropped, no gap", v["dropped"] == 0 and v["gaps"] == 0, f"{v['dropped']} dropped, {v['gaps']} gaps"))
except (OSError, ValueError, KeyError) as e:
    print(f"viewers: no report ({e})")
    verdicts.append(("the viewers' report", False, "missing"))
for f in sorted(glob.glob(os.path.join(work, "storm-*.json")), key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0])):
    s = json.load(open(f))
    c = s["claim_latency_ms"]
    ok = s["claims_ok"] == s["stock"] and s["oversell"] == 0 and s["claims_unanswered"] == 0
    print(f"{os.path.basename(f)[:-5]}: {s['connected']} connected, {s['claims_ok']} ok of stock {s['stock']}, "
          f"oversell {s['oversell']}, unanswered {s['claims_unanswered']}; claim p50 {c['p50']} ms, p99 {c['p99']} ms")
    verdicts.append((f"{os.path.basename(f)[:-5]} sold the stock once", ok, f"{s['claims_ok']}/{s['stock']}"))
print("\nverdict:")
for what, ok, fig in verdicts:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}: {fig}")
good = all(ok for _, ok, _ in verdicts)
print(f"  => {'flat within %g%%, no leaked fds or tasks' % flat if good else 'NOT flat / leaking: see above'}")
sys.exit(0 if good else 1)
PY

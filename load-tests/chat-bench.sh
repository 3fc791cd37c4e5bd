#!/usr/bin/env bash
# Chat must not slow the drop (issue 15): VIEWERS viewers on one hub (the embedded store),
# a measured cue every GAP_MS, run twice on a fresh hub each time — without chat, and with
# CHAT_PER_S chat messages a second sent by CHATTERS signed-in viewers while the cues run —
# then the cue's time to its last viewer (p50/p99 over the cues) of both and their ratio.
# The issue's target: with chat within 1.2× of without. ROUNDS > 1 alternates the order
# and compares the medians.
#
#   bash load-tests/chat-bench.sh [VIEWERS] [CHAT_PER_S]
#
# Environment (optional): CUES=12 GAP_MS=5000 CHATTERS=250 ROUNDS=1 KEEP=1 (keep the work
# dir: the swarm's JSON reports and the hubs' logs).
# Needs release builds: cargo build --release --bin dropwire --bin dropwire-swarm (BIN=target/debug
# for a quick check of the script itself).
set -euo pipefail
cd "$(dirname "$0")/.."
VIEWERS="${1:-10000}"
CHAT_PER_S="${2:-50}"
CUES="${CUES:-12}"
GAP_MS="${GAP_MS:-5000}"
CHATTERS="${CHATTERS:-250}"
ROUNDS="${ROUNDS:-1}"
TOKEN="chat-bench-token-0123456789abcdef"
BIN="${BIN:-target/release}"
WORK="$(mktemp -d)"
ulimit -n "$(ulimit -Hn)"

. load-tests/lib.sh

# run NAME [swarm flags…]: a fresh hub, the swarm against it; the report in $WORK/NAME.json.
run() {
  local name=$1 port hub
  shift
  port=$(free_port)
  DROPWIRE_LOG=warn "$BIN/dropwire" serve --bind "127.0.0.1:$port" --admin-token "$TOKEN" \
    --data-dir "$WORK/$name-data" > "$WORK/$name-hub.out" 2>&1 &
  hub=$!
  pids+=("$hub")
  wait_ready "$port"
  timeout 900 "$BIN/dropwire-swarm" --server "http://127.0.0.1:$port" --admin-token "$TOKEN" \
    --server-pid "$hub" --viewers "$VIEWERS" --broadcasts "$CUES" --gap-ms "$GAP_MS" \
    --timeout-s 800 --quiet --report "$WORK/$name.json" "$@" > "$WORK/$name.txt" 2>&1 || true
  kill "$hub" 2>/dev/null || true
  wait "$hub" 2>/dev/null || true
  [ -f "$WORK/$name.json" ] || { echo "!! $name: no report"; tail -n 5 "$WORK/$name.txt"; exit 1; }
}

echo "== $VIEWERS viewers, $CUES cues $GAP_MS ms apart; chat: $CHAT_PER_S messages/s from $CHATTERS viewers"
names=()
for round in $(seq "$ROUNDS"); do
  order=(plain chat); [ $((round % 2)) -eq 0 ] && order=(chat plain)
  for mode in "${order[@]}"; do
    if [ "$mode" = plain ]; then run "plain-$round"; else run "chat-$round" --chat-per-s "$CHAT_PER_S" --chatters "$CHATTERS"; fi
    names+=("$mode-$round")
  done
done

python3 - "$WORK" "$ROUNDS" <<'PY'
import json, math, sys
work, rounds = sys.argv[1], int(sys.argv[2])

def pct(xs, q):
    xs = sorted(xs)
    return xs[max(0, math.ceil(q * len(xs)) - 1)] if xs else float("nan")

def figures(name):
    r = json.load(open(f"{work}/{name}.json"))
    cues = [b for b in r["per_broadcast"] if b["kind"] == "bench_cue"]
    last = [b["max_ms"] for b in cues]
    c = r.get("chat") or {}
    return {
        "p50": pct(last, 0.5), "p99": pct(last, 0.99), "cues": len(cues),
        "all_p99": r["cue_latency_ms"]["p99"], "connected": r["connected"], "viewers": r["viewers"],
        "gaps": r["gaps"], "dropped": r["dropped"], "sent": c.get("sent", 0), "ok": c.get("ok", 0),
        "refused": c.get("refused", {}), "frames": c.get("frames", 0), "messages": c.get("messages", 0),
        "cpu": r.get("server_cpu_broadcast_ms"), "window": r.get("broadcast_window_s"),
        "reached": all(b["received"] >= r["connected"] for b in cues),
    }

print("| run | connected | cues | last viewer p50 (ms) | p99 (ms) | every viewer p99 (ms) | chat sent / ok | chat frames per viewer | hub CPU in the window | gaps | dropped |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
runs = {}
for rnd in range(1, rounds + 1):
    for mode in ("plain", "chat"):
        f = figures(f"{mode}-{rnd}")
        runs.setdefault(mode, []).append(f)
        per = f["frames"] / max(1, f["connected"])
        cpu = f"{100 * f['cpu'] / (f['window'] * 1000):.0f}% of a core" if f["cpu"] and f["window"] else "n/a"
        refused = f" (refused {f['refused']})" if f["refused"] else ""
        print(f"| {'with chat' if mode == 'chat' else 'without chat'} #{rnd} | {f['connected']}/{f['viewers']} | {f['cues']} "
              f"| {f['p50']:.2f} | {f['p99']:.2f} | {f['all_p99']:.2f} | {f['sent']} / {f['ok']}{refused} | {per:.1f} | {cpu} "
              f"| {f['gaps']} | {f['dropped']} |")
med = lambda xs: sorted(xs)[len(xs) // 2] if len(xs) % 2 else sum(sorted(xs)[len(xs) // 2 - 1:len(xs) // 2 + 1]) / 2
p50 = {m: med([f["p50"] for f in fs]) for m, fs in runs.items()}
p99 = {m: med([f["p99"] for f in fs]) for m, fs in runs.items()}
r50, r99 = p50["chat"] / p50["plain"], p99["chat"] / p99["plain"]
print()
print(f"cue to its last viewer, without chat: p50 {p50['plain']:.2f} ms, p99 {p99['plain']:.2f} ms")
print(f"cue to its last viewer, with chat:    p50 {p50['chat']:.2f} ms, p99 {p99['chat']:.2f} ms")
print(f"ratio with/without: p50 {r50:.2f}×, p99 {r99:.2f}× (target ≤ 1.20×): {'met' if max(r50, r99) <= 1.2 else 'NOT met'}")
sound = all(f["connected"] == f["viewers"] and f["gaps"] == 0 and f["dropped"] == 0 and f["reached"] for fs in runs.values() for f in fs)
print("every run sound (all connected, every cue reached everyone, no gaps, none dropped):", "yes" if sound else "NO")
PY

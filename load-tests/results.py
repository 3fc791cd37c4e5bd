#!/usr/bin/env python3
"""Renders the swarm reports of one bench.sh run as load-tests/RESULTS.md."""

import argparse
import datetime
import json
import os
import platform
import subprocess

TARGET_RATIO = 1.15
RSS_TARGET_KIB = 8.0
CLAIM_P99_TARGET_MS = 20.0


def load(work, name):
    path = os.path.join(work, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    nproc = os.cpu_count()
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    k6 = subprocess.run(["sh", "-c", "k6 version 2>/dev/null | head -n1"], capture_output=True, text=True).stdout.strip()
    return (
        f"{nproc} CPUs ({cpu}), {mem_kib / 1048576:.1f} GiB RAM, Linux {platform.release()}, "
        f"{rustc}{', ' + k6 if k6 else ''}; server and load generator on the same machine"
    )


def f(x, digits=2):
    return "n/a" if x is None else f"{x:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


NCPU = os.cpu_count() or 1


def load_pct(r, phase="broadcast"):
    other = r.get(f"other_cpu_{phase}_ms")
    window = r.get(f"{phase}_window_s") if phase == "broadcast" else r.get("claims_window_s")
    if other is None or not window:
        return None
    return 100 * other / (window * 1000 * NCPU)


def other_load(other_ms, window_s):
    """Share of the machine other processes used during the measured window."""
    if other_ms is None or not window_s:
        return "n/a"
    return f"{100 * other_ms / (window_s * 1000 * NCPU):.0f}%"


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def pct(xs, p):
    """Nearest-rank percentile of a list (None when empty)."""
    xs = sorted(xs)
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, -(-len(xs) * p // 100) - 1))
    return xs[int(k)]


def last_viewer_ms(r):
    """Each measured broadcast's time to its last viewer (ms)."""
    return [x["max_ms"] for x in r.get("per_broadcast", []) if x.get("kind") == "bench_cue"]


SYSTEMS = ("floor-st", "floor", "dropwire", "redis")
LABELS = {
    "floor-st": "floor, single thread",
    "floor": "floor, multi-threaded",
    "dropwire": "dropwire (embedded)",
    "redis": "dropwire (Redis)",
}


def side_by_side(a, sizes, w):
    """The systems side by side per size, each figure over the quiet rounds (every round
    when none was quiet), with its ratio to the single-thread floor."""
    w("## Side by side, against the single-thread floor")
    w("")
    w("The single-thread floor (`dropwire-swarm floor --single-thread`: one thread, one epoll loop, "
      "each broadcast framed once and the same buffer written to every socket) is the floor of "
      "\"one write per viewer\" on this machine. Per size and system: the time to the last viewer "
      "over every measured broadcast of the quiet rounds (p50 and p99), and the medians over those "
      "rounds of CPU per delivered message and RSS per connection (RSS delta / viewers); "
      "*×* is the figure over the single-thread floor's.")
    w("")
    present = [s for s in SYSTEMS if any(load(a.work, f"{s}-{n}-r{r}.json")
                                         for n in sizes for r in range(1, a.rounds + 1))]
    head = "| viewers | figure |"
    rule = "|---:|---|"
    for s in present:
        head += f" {LABELS[s]} |" + (" × |" if s != "floor-st" else "")
        rule += "---:|" + ("---:|" if s != "floor-st" else "")
    w(head)
    w(rule)
    for n in sizes:
        figures = {}
        for s in present:
            runs = [r for r in (load(a.work, f"{s}-{n}-r{rnd}.json") for rnd in range(1, a.rounds + 1)) if r]
            quiet = [r for r in runs if (load_pct(r) or 0) <= a.disturbed_pct] or runs
            lasts = [x for r in quiet for x in last_viewer_ms(r)]
            cpu = [r["cpu_per_msg_us"] for r in quiet if r.get("cpu_per_msg_us") is not None]
            rss = [r["rss_per_conn_kib"] for r in quiet if r.get("rss_per_conn_kib") is not None]
            figures[s] = {
                "last viewer p50 (ms)": pct(lasts, 50),
                "last viewer p99 (ms)": pct(lasts, 99),
                "CPU per delivered msg (µs)": median(cpu) if cpu else None,
                "RSS per connection (KiB)": median(rss) if rss else None,
            }
        for fig in ("last viewer p50 (ms)", "last viewer p99 (ms)", "CPU per delivered msg (µs)", "RSS per connection (KiB)"):
            base = figures.get("floor-st", {}).get(fig)
            row = f"| {n:,} | {fig} |"
            for s in present:
                x = figures[s][fig]
                row += f" {f(x)} |"
                if s != "floor-st":
                    rt = ratio(x, base)
                    row += f" {f(rt) + '×' if rt is not None else '—'} |"
            w(row)
    w("")


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sizes", required=True)
    ap.add_argument("--broadcasts", required=True)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--disturbed-pct", type=float, default=15.0)
    ap.add_argument("--storm", required=True)
    ap.add_argument("--note", default="")
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--notes", default="", help="a markdown file appended as it is")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split()]

    lines = []
    w = lines.append
    w("# dropwire benchmark results")
    w("")
    w(f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC at commit `{a.commit}` "
      "with `bash load-tests/bench.sh`.")
    w("")
    w(f"Machine: {machine()}.")
    w("")
    w("Each run starts a fresh server, connects the viewers with `dropwire-swarm` (sockets spread "
      "over 127.0.0.1–64), then fires "
      f"{a.broadcasts} ad-hoc cues one at a time (each waits until every viewer has it). "
      "*Time to the last viewer* of a broadcast is the largest (receive time − the frame's `ts`) over "
      "all viewers; the table gives its median and worst over the broadcasts. *CPU per delivered "
      "message* is the server's CPU time (user + system, from `/proc`) from the first to the last "
      "broadcast divided by the broadcast frames the viewers received in that window. *RSS per "
      "connection* is (server RSS with everyone connected − RSS before the first connection) / "
      "connections. The floor is `dropwire-swarm floor`: a bare tokio-tungstenite server writing "
      "the same pre-serialized bytes to every socket (a task per viewer, on all CPUs), measured by "
      "the same swarm in the same minute; *floor, single thread* is `dropwire-swarm floor "
      "--single-thread`: one thread writing one pre-framed buffer to every socket. "
      "*Other load* is the share of the machine's CPUs that other processes (neither the server nor the "
      "swarm) used during the measured window: bench.sh waits for a quiet machine before each run, and "
      "a round with a high figure was disturbed by a neighbour. As root the bench runs in a session "
      "of its own at a raised priority (autogroup nice −15), so a neighbour mostly gets the gaps "
      "between broadcasts, which is where most of a high *other load* figure then comes from.")
    w("")
    w("## Fan-out")
    w("")
    w(f"Each size runs {a.rounds} round(s) of the two floors and dropwire back to back (the order "
      "rotates); in this table ratios compare each run with the multi-threaded floor's run of the same "
      "round, and a target is judged on the median of the rounds' ratios.")
    w("")
    w("| viewers | round | server | connected | last viewer, median (ms) | worst (ms) | × floor | CPU per msg (µs) | × floor | RSS per conn (KiB) | connect rate (/s) | gaps | dropped | other load |")
    w("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    labels = {"floor": "floor", "floor-st": "floor, single thread", "dropwire": "dropwire (embedded)", "redis": "dropwire (Redis)"}
    checks = []
    latency_rows = []
    for n in sizes:
        ratios = {"dropwire": ([], [], []), "redis": ([], [], [])}
        for rnd in range(1, a.rounds + 1):
            floor = load(a.work, f"floor-{n}-r{rnd}.json")
            for name in ("floor", "floor-st", "dropwire", "redis"):
                r = load(a.work, f"{name}-{n}-r{rnd}.json")
                if r is None:
                    continue
                latency_rows.append((n, rnd, labels[name], r))
                t = r["time_to_last_ms"]
                tr = cr = None
                if floor and name not in ("floor", "floor-st"):
                    tr = ratio(t["median"], floor["time_to_last_ms"]["median"])
                    cr = ratio(r.get("cpu_per_msg_us"), floor.get("cpu_per_msg_us"))
                    quiet = all((load_pct(x) or 0) <= a.disturbed_pct for x in (r, floor))
                    ratios[name][0].append((tr, quiet))
                    ratios[name][1].append((cr, quiet))
                if name not in ("floor", "floor-st"):
                    ratios[name][2].append(r)
                w(f"| {n:,} | {rnd} | {labels[name]} | {r['connected']:,} | {f(t['median'])} | {f(t['worst'])} | "
                  f"{f(tr) + '×' if tr else '—'} | {f(r.get('cpu_per_msg_us'))} | {f(cr) + '×' if cr else '—'} | "
                  f"{f(r.get('rss_per_conn_kib'))} | {r['connect_rate_per_s']:,.0f} | {r['gaps']} | {r['dropped']} | "
                  f"{other_load(r.get('other_cpu_broadcast_ms'), r.get('broadcast_window_s'))} |")
        for name in ("dropwire", "redis"):
            trs, crs, runs = ratios[name]
            label = labels[name]
            for what, rs in ((f"time to the last viewer (median of {a.broadcasts})", trs), ("CPU per delivered message", crs)):
                rs = [(x, q) for x, q in rs if x is not None]
                if not rs:
                    continue
                quiet = [x for x, q in rs if q]
                mid = median(quiet or [x for x, _ in rs])
                each = ", ".join(f"{x:.2f}×" + ("" if q else " (disturbed)") for x, q in rs)
                basis = "median of the quiet rounds" if quiet else "median, every round disturbed"
                checks.append((f"{label}, {n:,} viewers: {what} ≤ {TARGET_RATIO}× floor",
                               f"{mid:.2f}× {basis} (rounds: {each})", verdict(mid <= TARGET_RATIO)))
            if n == max(sizes):
                for r in runs:
                    rss = r.get("rss_per_conn_kib")
                    checks.append((f"{label}, {n:,} viewers: ≤ {RSS_TARGET_KIB:g} KiB RSS per connection",
                                   f"{f(rss)} KiB", verdict(None if rss is None else rss <= RSS_TARGET_KIB)))
            for r in runs:
                if r["gaps"] or r["dropped"] or r["connected"] < r["viewers"]:
                    checks.append((f"{label}, {n:,} viewers: every viewer connected, no gaps, none dropped",
                                   f"{r['connected']}/{r['viewers']}, {r['gaps']} gaps, {r['dropped']} dropped", "**missed**"))
    w("")
    w("Cue latency percentiles over every viewer and broadcast (ms), and from the swarm's fire "
      "request to the last viewer (includes the HTTP control call):")
    w("")
    w("| viewers | round | server | p50 | p90 | p99 | p99.9 | max | fire → last viewer, median |")
    w("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for n, rnd, label, r in latency_rows:
        c = r["cue_latency_ms"]
        fl = sorted(x["fire_to_last_ms"] for x in r["per_broadcast"] if x.get("fire_to_last_ms") is not None)
        med = fl[len(fl) // 2] if fl else None
        w(f"| {n:,} | {rnd} | {label} | {f(c['p50'])} | {f(c['p90'])} | {f(c['p99'])} | {f(c['p999'])} | {f(c['max'])} | {f(med)} |")
    w("")
    side_by_side(a, sizes, w)
    if int(a.storm) > 0:
        w("## Claim storm")
        w("")
        w(f"{int(a.storm):,} viewers with tokens; the reveal is fired once all are connected and every viewer "
          "claims the moment it arrives. Claim latency runs from the reveal reaching the viewer to the "
          "claim's answer reaching it. The floor answers each claim from one atomic counter (no store, "
          "no journal): the round trip's floor on this machine.")
        w("")
        w("| server | round | connected | stock | ok | sold out | other | unanswered | oversell | p50 (ms) | p90 | p99 | p99.9 | max | reveal to last viewer (ms) | server CPU (ms) | other load |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        p99s = {}
        storm_runs = {}
        for name, label in (("floor", "floor"), ("floor-st", "floor, single thread"), ("dropwire", "dropwire (embedded)"), ("redis", "dropwire (Redis)")):
            for rnd in range(1, a.rounds + 1):
                r = load(a.work, f"storm-{name}-{a.storm}-r{rnd}.json")
                if r is None:
                    continue
                c = r["claim_latency_ms"]
                other = sum(r["claims_other"].values())
                p99s.setdefault(name, []).append((c["p99"], (load_pct(r, "claims") or 0) <= a.disturbed_pct))
                storm_runs.setdefault(name, []).append(r)
                w(f"| {label} | {rnd} | {r['connected']:,} | {r['stock']} | {r['claims_ok']} | {r['claims_sold_out']:,} | {other} | "
                  f"{r['claims_unanswered']} | {r['oversell']} | {f(c['p50'])} | {f(c['p90'])} | {f(c['p99'])} | "
                  f"{f(c['p999'])} | {f(c['max'])} | {f(r['cue_latency_ms']['max'])} | {f(r.get('server_cpu_claims_ms'), 0)} | "
                  f"{other_load(r.get('other_cpu_claims_ms'), r.get('claims_window_s'))} |")
        for name, label in (("dropwire", "dropwire (embedded)"), ("redis", "dropwire (Redis)")):
            if name not in p99s:
                continue
            def mid_of(runs):
                quiet = [x for x, q in runs if q]
                return median(quiet or [x for x, _ in runs])
            mid = mid_of(p99s[name])
            vs = ""
            if "floor" in p99s:
                fmid = mid_of(p99s["floor"])
                vs = f"; floor {fmid:.2f} ms, {mid / fmid:.2f}× floor" if fmid else ""
            each = ", ".join(f"{x:.1f}" + ("" if q else " (disturbed)") for x, q in p99s[name])
            checks.append((f"claim storm ({label}): claim p99 ≤ {CLAIM_P99_TARGET_MS:g} ms",
                           f"{mid:.2f} ms median of the quiet rounds (rounds: {each}{vs})", verdict(mid <= CLAIM_P99_TARGET_MS)))
            runs = storm_runs[name]
            sound = all(r["oversell"] == 0 and r["claims_ok"] == r["stock"] for r in runs)
            checks.append((f"claim storm ({label}): zero oversell, ok claims = stock, every round",
                           ", ".join(f"{r['claims_ok']} ok of {r['stock']}, oversell {r['oversell']}" for r in runs),
                           verdict(sound)))
        w("")
    w("## Targets")
    w("")
    w("| target | measured | |")
    w("|---|---:|---|")
    for what, measured, ok in checks:
        w(f"| {what} | {measured} | {ok} |")
    w("")
    if a.note:
        w(a.note)
        w("")
    if a.notes and os.path.exists(a.notes):
        with open(a.notes) as notes:
            w(notes.read().rstrip("\n"))
        w("")
    with open(a.out, "w") as out:
        out.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

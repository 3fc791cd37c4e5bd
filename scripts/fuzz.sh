#!/usr/bin/env bash
# Fuzzing: builds the cargo-fuzz targets in fuzz/ and runs each for SECONDS (default 60),
# one after the other; prints per target the executions and the crashes, then a markdown
# table of them (for load-tests/RESULTS.md). Exits non-zero when any target crashed (a
# panic, a failed assertion, a timeout of 10 s on one input, or running out of memory).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET=60]
#
# Environment (all optional):
#   FUZZ_TARGETS="client_frame drop_spec journal_replay viewer_token"
#   FUZZ_JOBS=1                   libFuzzer workers per target (each a process)
#
# The seeds in fuzz/corpus/<target>/ are read, never written: what a run finds goes to a
# scratch dir. A crashing input is kept in fuzz/artifacts/<target>/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/crash-…
# cargo-fuzz passes nightly flags (-Zsanitizer=address); on a stable toolchain this script
# sets RUSTC_BOOTSTRAP=1 so that rustc accepts them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
secs="${1:-60}"
targets="${FUZZ_TARGETS:-client_frame drop_spec journal_replay viewer_token}"
jobs="${FUZZ_JOBS:-1}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The sanitizer build lives in fuzz/target, apart from the workspace's (bench.sh exports
# CARGO_TARGET_DIR for its own build).
unset CARGO_TARGET_DIR

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
if ! rustc --version | grep -q nightly; then
  export RUSTC_BOOTSTRAP=1
fi

echo "== build ($(cargo fuzz --version), $(rustc --version))"
start=$(date +%s)
(cd fuzz && cargo fuzz build)
echo "   built in $(($(date +%s) - start)) s"

work="$(mktemp -d /tmp/dropwire-fuzz.XXXXXX)"
trap 'rm -rf "$work"' EXIT
failed=0
rows=()
parallel=()
if [ "$jobs" -gt 1 ]; then parallel=(-jobs="$jobs" -workers="$jobs"); fi
for t in $targets; do
  mkdir -p "$work/$t/corpus" "$work/$t/tmp" "fuzz/artifacts/$t"
  before=$(find "fuzz/artifacts/$t" -type f | wc -l)
  echo "== $t: $secs s"
  set +e
  # TMPDIR: journal_replay's scratch journal lives there, and goes with the work dir.
  (cd fuzz && TMPDIR="$work/$t/tmp" cargo fuzz run "$t" "$work/$t/corpus" "corpus/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 -timeout=10 "${parallel[@]}" \
    >"$work/$t/log" 2>&1)
  rc=$?
  set -e
  if [ "$jobs" -gt 1 ]; then cat fuzz/fuzz-*.log >>"$work/$t/log" 2>/dev/null && rm -f fuzz/fuzz-*.log; fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log" | awk '{n += $1} END {print n + 0}')
  crashes=$(($(find "fuzz/artifacts/$t" -type f | wc -l) - before))
  if [ "$rc" != 0 ] && [ "$crashes" = 0 ]; then crashes=1; fi
  corpus=$(find "$work/$t/corpus" -type f | wc -l)
  echo "   $t: $execs executions, $crashes crashes, $corpus new corpus entries (exit $rc)"
  if [ "$crashes" != 0 ]; then
    failed=1
    grep -E -m 20 "panicked|ERROR: libFuzzer|SUMMARY|Test unit written" "$work/$t/log" | sed 's/^/   /' || true
    cp "$work/$t/log" "fuzz/artifacts/$t/last-run.log"
    echo "   the whole log: fuzz/artifacts/$t/last-run.log"
  fi
  rows+=("| \`$t\` | $secs | $execs | $crashes |")
done

echo
echo "| target | seconds | executions | crashes |"
echo "|---|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
if [ "$failed" != 0 ]; then
  echo "fuzz: a target crashed" >&2
  exit 1
fi

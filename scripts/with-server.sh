#!/usr/bin/env bash
# Runs a command against a fresh dropwire (debug build) on a free port with a throwaway
# data dir; the command gets DW_URL and DW_ADMIN_TOKEN. The server stops afterwards.
# DW_SERVE_ARGS adds flags to `dropwire serve` (split on spaces).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${DROPWIRE_BIN:-$PWD/target/debug/dropwire}"
data=$(mktemp -d)
out="$data/stdout"
token="smoke-admin-token-$(date +%s%N)"
# Made before the server starts: the wait below reads it at once.
: >"$out"
# shellcheck disable=SC2086 # DW_SERVE_ARGS is a list of flags
env -u DROPWIRE_BIN "$bin" serve --bind 127.0.0.1:0 --data-dir "$data" --admin-token "$token" ${DW_SERVE_ARGS:-} >"$out" 2>"$data/stderr" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 600); do
  url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$out" | head -n1)
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -z "${url:-}" ]; then
  echo "with-server: dropwire did not start" >&2
  cat "$data/stderr" >&2
  exit 1
fi
DW_URL="$url" DW_ADMIN_TOKEN="$token" "$@"

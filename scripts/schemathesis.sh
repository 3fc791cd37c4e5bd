#!/usr/bin/env bash
# Schemathesis (PyPI, in the repository's .venv: scripts/setup.sh) against a fresh hub: every
# operation of its OpenAPI document (GET /api/v1/openapi.json), every check (`--checks all`),
# with the admin token for the admin routes and a freshly minted viewer token for the viewer
# routes, on a drop made first. Settings, and why each exception to a check is there, are in
# scripts/schemathesis.toml.
#
# With DW_URL and DW_ADMIN_TOKEN set, it tests that hub instead of starting one.
# DW_SCHEMATHESIS_EXAMPLES: test cases per operation and phase (default 50: about a minute on
# two cores). DW_SCHEMATHESIS_ARGS: more flags for `schemathesis run` (split on spaces),
# e.g. `--include-path /api/v1/drops` to try one route. DW_SCHEMATHESIS_SEED (default 1):
# the run is the same every time; another seed tries other cases. One worker: with several,
# Hypothesis parses lambdas' source in threads at once, which CPython 3.11's `ast` does not
# survive ("AST constructor recursion depth mismatch", a Runtime Error in the report).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DW_URL:-}" ]; then
  # Not yet inside a server: build the hub and start one, then come back here.
  [ -x .venv/bin/schemathesis ] || { echo "schemathesis: run scripts/setup.sh first (.venv/bin/schemathesis)" >&2; exit 1; }
  [ -n "${DROPWIRE_BIN:-}" ] || cargo build --quiet --bin dropwire
  exec bash scripts/with-server.sh bash "$0"
fi

# A viewer token for the viewer routes (minted with the admin token: no rate limit).
DW_VIEWER_TOKEN=$(curl -fsS -X POST "$DW_URL/api/v1/viewers" \
  -H "Authorization: Bearer $DW_ADMIN_TOKEN" -H 'content-type: application/json' \
  -d '{"handle": "schemathesis"}' | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["token"])')
# A real drop (the example one), whose id the operations on a drop use (schemathesis.toml),
# so they reach past the 404 of an unknown drop.
DW_DROP_ID=schemathesis
created=$(.venv/bin/python -c 'import json, sys; d = json.load(open("examples/speckled-mugs.json")); d["id"] = sys.argv[1]; print(json.dumps(d))' "$DW_DROP_ID" |
  curl -sS -o /dev/null -w '%{http_code}' -X POST "$DW_URL/api/v1/drops" \
    -H "Authorization: Bearer $DW_ADMIN_TOKEN" -H 'content-type: application/json' --data-binary @-)
case "$created" in
  201 | 409) ;; # made now, or by an earlier run against the same hub
  *) echo "schemathesis: creating the drop $DW_DROP_ID answered $created" >&2; exit 1 ;;
esac
export DW_ADMIN_TOKEN DW_VIEWER_TOKEN DW_DROP_ID

report=$(mktemp -d)
trap 'rm -rf "$report"' EXIT
# shellcheck disable=SC2086 # DW_SCHEMATHESIS_ARGS is a list of flags
.venv/bin/schemathesis --config-file scripts/schemathesis.toml run "$DW_URL/api/v1/openapi.json" \
  --checks all \
  --max-examples "${DW_SCHEMATHESIS_EXAMPLES:-50}" \
  --workers 1 \
  --seed "${DW_SCHEMATHESIS_SEED:-1}" \
  --no-color \
  --report junit --report-dir "$report" \
  ${DW_SCHEMATHESIS_ARGS:-}

#!/usr/bin/env bash
# Runs the example receivers (receiver.py, receiver.mjs) against a live hub: each gets an
# endpoint, a waitlist join happens, and each must print the verified `waitlist.joined`.
# Run through scripts/with-server.sh with DW_SERVE_ARGS="--webhook-allow-private true
# --webhook-retry-schedule 0,1,1,1,1,1,1,1" (scripts/test.sh does).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DW_URL:?run me through scripts/with-server.sh}"
API="$DW_URL/api/v1"
WORK=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
admin=(-H "Authorization: Bearer $DW_ADMIN_TOKEN" -H 'content-type: application/json')

# A drop whose waitlist the receivers hear about.
curl -fsS -X POST "$API/drops" "${admin[@]}" -d '{"id": "receivers", "title": "Receivers", "inventory": [{"sku": "mug", "name": "Mug", "price_cents": 3400, "stock": 5}], "script": {"duration_s": 600, "cues": [{"at_s": 600, "type": "close"}]}}' > /dev/null

# Copies of the JavaScript receiver sit beside the browser tests' node_modules.
mkdir -p "$WORK/js" && cp docs/examples/receiver.mjs "$WORK/js/" && ln -s "$PWD/overlay-web/tests/node_modules" "$WORK/js/node_modules"
for lang in py js; do
  port=$(free_port)
  created=$(curl -fsS -X POST "$API/webhooks" "${admin[@]}" -d "{\"url\": \"http://127.0.0.1:$port/hooks\", \"events\": [\"waitlist.joined\"]}")
  secret=$(json '["secret"]' <<<"$created")
  case $lang in
    py) WEBHOOK_SECRET=$secret .venv/bin/python docs/examples/receiver.py "$port" > "$WORK/$lang.out" 2>&1 & ;;
    js) WEBHOOK_SECRET=$secret node "$WORK/js/receiver.mjs" "$port" > "$WORK/$lang.out" 2>&1 & ;;
  esac
  pids+=($!)
done
token=$(curl -fsS -X POST "$API/viewers" "${admin[@]}" -d '{"handle": "ana"}' | json '["token"]')
curl -fsS -X POST "$API/drops/receivers/waitlist" -H "Authorization: Bearer $token" -H 'content-type: application/json' -d '{}' > /dev/null
for lang in py js; do
  for _ in $(seq 300); do grep -q '"waitlist.joined"' "$WORK/$lang.out" && break; sleep 0.1; done
  if ! grep -q '"waitlist.joined"' "$WORK/$lang.out"; then
    echo "examples: the $lang receiver did not verify a delivery:" >&2; cat "$WORK/$lang.out" >&2; exit 1
  fi
  echo "examples: receiver.$lang verified $(grep -c '"waitlist.joined"' "$WORK/$lang.out") waitlist.joined delivery with the standardwebhooks library"
done

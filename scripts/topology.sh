#!/usr/bin/env bash
# The production topology as real processes, with the files deploy/ ships: Debian's nginx
# (deploy/nginx/) in front of two dropwire hubs (deploy/hub.env) on one redis-server and one
# PostgreSQL ledger, and Debian's Prometheus (deploy/prometheus/) scraping both hubs. Only
# addresses, ports and paths are rewritten (compose's host names become 127.0.0.1 ports).
#
# Then, through nginx: VIEWERS viewers (dropwire-swarm --resume) follow a drop and storm a
# claim for STOCK units; hub A is killed (SIGKILL) right after the reveal, while the claims
# are in flight; its viewers resume on hub B with `since` and ask again with the same rid.
# Checked: no viewer lost or skipped a broadcast, every claim was answered, exactly STOCK
# granted (the API's claim list: unique codes, one per viewer), the answers the viewers got
# match it. Through nginx, 1,000 viewers mint tokens as 40 clients, each under its own limit
# (the hubs trust the proxy's X-Forwarded-For). Hub A comes back (as an orchestrator would restart it), a drop stays live, and
# every Grafana panel's query must return data from the live Prometheus and name only
# metrics the hubs export; the alert rules pass `promtool check rules` and `test rules`.
#
#   bash scripts/topology.sh [VIEWERS] [STOCK]     (KEEP=1 keeps the work dir and logs)
#
# Needs: cargo build --bin dropwire --bin dropwire-swarm (BIN=target/release for release
# builds), and nginx, prometheus, promtool, redis-server, PostgreSQL (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
VIEWERS="${1:-1000}"
STOCK="${2:-50}"
BIN="${BIN:-target/debug}"
TOKEN="topology-admin-token-0123456789abcdef"
JWT="topology-jwt-secret-0123456789abcdef"
WORK="$(mktemp -d)"
chmod 755 "$WORK" # PostgreSQL runs as its own user and must reach its data dir
ulimit -n "$(ulimit -Hn)"
. load-tests/lib.sh

for tool in nginx prometheus promtool redis-server; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
    echo "topology: $tool is missing (bash scripts/setup.sh installs it)" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for b in dropwire dropwire-swarm; do
  [ -x "$BIN/$b" ] || { echo "topology: $BIN/$b is missing (cargo build --bin $b)" >&2; exit 1; }
done

REDIS_PORT=$(free_port); PG_PORT=$(free_port); A_PORT=$(free_port); B_PORT=$(free_port)
LB_PORT=$(free_port); PROM_PORT=$(free_port)
say() { echo "[topology] $*"; }

# --- Redis and PostgreSQL ---------------------------------------------------------------
start_redis "$REDIS_PORT" --appendonly yes --appendfsync everysec
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
AS_PG=()
if [ "$(id -u)" = 0 ]; then AS_PG=(runuser -u postgres --); fi
mkdir -p "$WORK/pg" && [ ${#AS_PG[@]} -eq 0 ] || chown postgres "$WORK/pg"
"${AS_PG[@]}" "$PGBIN/initdb" -D "$WORK/pg/data" -U dropwire --auth=trust -E UTF8 >/dev/null
"${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w \
  -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
stop_pg() { "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m immediate stop >/dev/null 2>&1 || true; }
"${AS_PG[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U dropwire dropwire

# --- the hubs: deploy/hub.env, with compose's host names pointed at our servers ---------
hub_env() { # NAME PORT: the environment of one hub
  sed -e '/^#/d' -e '/^$/d' \
    -e "s|^DROPWIRE_BIND=.*|DROPWIRE_BIND=127.0.0.1:$2|" \
    -e "s|^DROPWIRE_DATA_DIR=.*|DROPWIRE_DATA_DIR=$WORK/$1|" \
    -e "s|redis:6379|127.0.0.1:$REDIS_PORT|" deploy/hub.env
  # What compose sets beside hub.env (its `environment:`), with our secrets and ledger.
  echo "DROPWIRE_ADMIN_TOKEN=$TOKEN"
  echo "DROPWIRE_JWT_SECRET=$JWT"
  echo "DROPWIRE_LEDGER_URL=postgres://dropwire@127.0.0.1:$PG_PORT/dropwire"
  echo "DROPWIRE_PUBLIC_URL=http://127.0.0.1:$LB_PORT"
}
start_hub() { # NAME PORT: starts it, sets HUB_PID
  hub_env "$1" "$2" > "$WORK/$1.env"
  # Only the hub's own variables: the unknown-variable check must see exactly hub.env's.
  env -i PATH="$PATH" HOME="$HOME" $(cat "$WORK/$1.env") "$BIN/dropwire" serve \
    >> "$WORK/$1.out" 2>> "$WORK/$1.log" &
  HUB_PID=$!
  pids+=("$HUB_PID")
}
start_hub hub-a "$A_PORT"; A_PID=$HUB_PID
start_hub hub-b "$B_PORT"; B_PID=$HUB_PID
wait_ready "$A_PORT"; wait_ready "$B_PORT"

# --- nginx: deploy/nginx/nginx.conf and dropwire.conf ------------------------------------
mkdir -p "$WORK/nginx/conf.d" "$WORK/nginx/temp"
chmod 777 "$WORK/nginx/temp" # workers run as nobody when we are root
sed -e "s|/var/log/nginx/error.log|$WORK/nginx/error.log|" \
    -e "s|/var/run/nginx.pid|$WORK/nginx/nginx.pid|" \
    -e "s|/etc/nginx/conf.d/|$WORK/nginx/conf.d/|" \
    -e "s|^\(\s*\)access_log off;|&\n\1client_body_temp_path $WORK/nginx/temp/body;\n\1proxy_temp_path $WORK/nginx/temp/proxy;\n\1fastcgi_temp_path $WORK/nginx/temp/fastcgi;\n\1uwsgi_temp_path $WORK/nginx/temp/uwsgi;\n\1scgi_temp_path $WORK/nginx/temp/scgi;|" \
    deploy/nginx/nginx.conf > "$WORK/nginx/nginx.conf"
sed -e "s|server hub-a:8080|server 127.0.0.1:$A_PORT|" \
    -e "s|server hub-b:8080|server 127.0.0.1:$B_PORT|" \
    -e "s|listen 8080;|listen 127.0.0.1:$LB_PORT;|" \
    deploy/nginx/dropwire.conf > "$WORK/nginx/conf.d/dropwire.conf"
"$NGINX" -t -q -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx/" -e "$WORK/nginx/error.log"
"$NGINX" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx/" -e "$WORK/nginx/error.log" -g 'daemon off;' &
pids+=($!)
wait_ready "$LB_PORT"

# --- Prometheus: deploy/prometheus/ --------------------------------------------------------
mkdir -p "$WORK/prom"
cp deploy/prometheus/alerts.yml "$WORK/prom/"
sed -e "s|\"hub-a:8080\"|\"127.0.0.1:$A_PORT\"|" -e "s|\"hub-b:8080\"|\"127.0.0.1:$B_PORT\"|" \
  deploy/prometheus/prometheus.yml > "$WORK/prom/prometheus.yml"
promtool check config "$WORK/prom/prometheus.yml" >/dev/null
prometheus --config.file="$WORK/prom/prometheus.yml" --storage.tsdb.path="$WORK/prom/data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" > "$WORK/prom/log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null && break; sleep 0.1; done
cleanup_all() { stop_pg; cleanup; }
trap cleanup_all EXIT
say "redis :$REDIS_PORT  postgres :$PG_PORT  hub-a :$A_PORT (pid $A_PID)  hub-b :$B_PORT  nginx :$LB_PORT  prometheus :$PROM_PORT"

# --- 1,000 viewers through nginx; hub A dies at the reveal ------------------------------
ID="topology-$(date +%s%3N)"
say "$VIEWERS viewers through nginx, stock $STOCK; hub A is killed right after the reveal"
set +e
"$BIN/dropwire-swarm" --server "http://127.0.0.1:$LB_PORT" --admin-token "$TOKEN" \
  --viewers "$VIEWERS" --claim --stock "$STOCK" --broadcasts 10 --gap-ms 50 --drop-id "$ID" \
  --resume --kill-pid "$A_PID" --kill-at reveal --report "$WORK/swarm.json" --strict \
  > "$WORK/swarm.txt" 2> "$WORK/swarm.err"
swarm_rc=$?
set -e
cat "$WORK/swarm.txt"
grep -E 'killed|problem' "$WORK/swarm.err" || true
fail() { echo "topology: FAILED: $*" >&2; tail -n 20 "$WORK"/hub-*.log >&2; KEEP=1; exit 1; }
[ "$swarm_rc" = 0 ] || fail "the swarm's run was not sound (exit $swarm_rc)"

# The claims as the API has them, against what the viewers were told.
curl -fs -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$LB_PORT/api/v1/drops/$ID/claims" \
  > "$WORK/claims.json" || fail "cannot list the claims"
python3 - "$WORK/claims.json" "$WORK/swarm.json" "$STOCK" "$VIEWERS" <<'PY' || fail "claims"
import json, sys
claims = json.load(open(sys.argv[1]))
claims = claims.get("claims", claims) if isinstance(claims, dict) else claims
report = json.load(open(sys.argv[2]))
stock, viewers = int(sys.argv[3]), int(sys.argv[4])
codes = [c["code"] for c in claims]
owners = [c["viewer"] for c in claims]
problems = []
if len(claims) != stock:
    problems.append(f"{len(claims)} claims granted for a stock of {stock}")
if len(set(codes)) != len(codes):
    problems.append("a claim code was handed out twice")
if len(set(owners)) != len(owners):
    problems.append("a viewer holds two claims")
if report["claims_ok"] != len(claims):
    problems.append(f"viewers were told {report['claims_ok']} grants, the store has {len(claims)}: a claim was lost")
if report["claims_sent"] != viewers or report["claims_unanswered"]:
    problems.append(f"{report['claims_sent']} claims sent, {report['claims_unanswered']} unanswered")
if report["resumed"] == 0:
    problems.append("no viewer resumed: hub A had none, the kill proved nothing")
print(f"claims: {len(claims)} granted of {stock}, unique codes, one per viewer; "
      f"{report['claims_ok']} granted answers reached viewers; {report['resumed']} viewers "
      f"resumed on hub B with since, {report['gaps']} gaps, {report['snapshot_gaps']} broadcasts skipped")
for p in problems:
    print("problem:", p)
sys.exit(1 if problems else 0)
PY

# --- behind the proxy, each viewer is its own client (--trusted-proxies in hub.env) ----
# 1,000 tokens minted without the admin token through nginx, from 40 client addresses
# (25 each, under the 30 a minute per client); then a 31st from one client is refused.
python3 - "$LB_PORT" <<'PY' || fail "minting through the proxy"
import http.client, json, sys
port = int(sys.argv[1])
def mint(source, i):
    c = http.client.HTTPConnection("127.0.0.1", port, source_address=(source, 0), timeout=10)
    c.request("POST", "/api/v1/viewers", body=json.dumps({"handle": f"n{i}"}),
              headers={"content-type": "application/json"})
    status = c.getresponse().status
    c.close()
    return status
granted = sum(mint(f"127.0.0.{100 + i % 40}", i) == 200 for i in range(1000))
one = [mint("127.0.0.200", i) for i in range(31)]
print(f"minted through nginx without the admin token: {granted} of 1000 from 40 clients; "
      f"one client: {one.count(200)} granted, then {one[-1]}")
sys.exit(0 if granted == 1000 and one.count(200) == 30 and one[-1] == 429 else 1)
PY

# --- hub A back, a live drop, and every dashboard query against the real Prometheus ------
start_hub hub-a "$A_PORT"; A_PID=$HUB_PID
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$A_PORT/readyz" >/dev/null && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$A_PORT/readyz" >/dev/null || fail "hub A did not come back"
LIVE="topology-live-$(date +%s%3N)"
python3 -c "import json,sys; d=json.load(open('examples/speckled-mugs.json')); d['id']=sys.argv[1]; print(json.dumps(d))" "$LIVE" \
  | curl -fs -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' --data-binary @- \
    "http://127.0.0.1:$LB_PORT/api/v1/drops" >/dev/null || fail "cannot create the live drop"
curl -fs -X POST -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$LB_PORT/api/v1/drops/$LIVE/start" \
  >/dev/null || fail "cannot start the live drop"
for port in "$A_PORT" "$B_PORT"; do # each node loads it, so each reports its gauges
  curl -fs -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$port/api/v1/drops/$LIVE" >/dev/null
done
say "checking every dashboard panel's query and the alert rules against Prometheus"
python3 scripts/check-dashboards.py --prometheus "http://127.0.0.1:$PROM_PORT" \
  --metrics "http://127.0.0.1:$A_PORT/metrics" --metrics "http://127.0.0.1:$B_PORT/metrics" \
  --dashboard deploy/grafana/dashboards/dropwire.json --rules deploy/prometheus/alerts.yml \
  --wait-s 90 > "$WORK/dashboards.txt" || { cat "$WORK/dashboards.txt"; fail "a dashboard query"; }
tail -n 1 "$WORK/dashboards.txt"
promtool check rules deploy/prometheus/alerts.yml >/dev/null || fail "promtool check rules"
promtool test rules deploy/prometheus/alerts.test.yml >/dev/null || fail "promtool test rules"
say "alert rules: promtool check rules and test rules passed"
say "passed"

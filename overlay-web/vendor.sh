#!/bin/sh
# Copies the npm release of uPlot (the panel's chart library) into assets/vendor/uplot/,
# where the binary embeds it. The version is the one pinned in tests/package.json and
# tests/package-lock.json; to move to another release:
#
#   npm --prefix overlay-web/tests install --save-dev --save-exact uplot@X.Y.Z
#   overlay-web/vendor.sh
#
# tests/vendor.test.mjs checks that the vendored files are byte-identical to the package's.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
pkg="$here/tests/node_modules/uplot"
out="$here/assets/vendor/uplot"
if [ ! -f "$pkg/package.json" ]; then
  echo "no $pkg: run 'npm --prefix overlay-web/tests ci' first" >&2
  exit 1
fi
mkdir -p "$out"
cp "$pkg/dist/uPlot.iife.min.js" "$pkg/dist/uPlot.min.css" "$pkg/LICENSE" "$out/"
version=$(node -p "require('$pkg/package.json').version")
echo "vendored uPlot $version into $out"

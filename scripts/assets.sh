#!/usr/bin/env bash
# Refreshes the dashboard's vendored front-end files from the npm packages
# pinned in dashboard/assets/package-lock.json (npm ci checks each tarball's
# integrity), and records their SHA-256 in dashboard/static/vendor/SHA256SUMS,
# which a unit test holds the embedded files to. Users never run this: the
# files it writes are committed. make assets runs it.
set -euo pipefail
cd "$(dirname "$0")/../dashboard/assets"
npm ci --no-audit --no-fund --ignore-scripts
vendor=../static/vendor
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css "$vendor/"
cp node_modules/uplot/LICENSE "$vendor/uPlot.LICENSE"
(cd "$vendor" && sha256sum uPlot.iife.min.js uPlot.min.css uPlot.LICENSE > SHA256SUMS)
rm -rf node_modules
echo "assets: vendored uplot $(node -p 'require("./package-lock.json").packages["node_modules/uplot"].version')"

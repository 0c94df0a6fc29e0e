#!/usr/bin/env bash
# Builds the web page (web/) into a complete static site: the page's files plus the browser
# package (pkg/: its JavaScript, the WebAssembly modules, the demo weights) under m3dfel/.
# Serve the folder with any static server that answers HTTP Range requests and sends the
# COOP and COEP headers (the CPU backend's threads need them), e.g.
#   node scripts/serve.mjs web/dist
# Usage: bash scripts/build-web.sh     (the last line printed is the site's folder)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-wasm.sh >&2

site="$PWD/web/dist"
rm -rf "$site"
mkdir -p "$site/m3dfel"
cp web/*.html web/*.css web/*.js "$site/"
cp -r pkg/m3dfel.js pkg/m3dfel.d.ts pkg/LICENSE pkg/wasm pkg/wasm-threads pkg/weights "$site/m3dfel/"
rm -f "$site"/m3dfel/wasm*/.source-sha256
echo "== web page: $(du -sh "$site" | cut -f1) in $(find "$site" -type f | wc -l) files" >&2
echo "$site"

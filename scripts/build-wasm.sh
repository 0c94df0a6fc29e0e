#!/usr/bin/env bash
# Builds the browser package in pkg/: the m3dfel-wasm crate compiled to wasm32, bound to
# JavaScript by wasm-bindgen (pkg/wasm/), optimised by wasm-opt (npm's binaryen).
# Usage: bash scripts/build-wasm.sh        (prints the .wasm size raw and gzipped)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ensure_wasm_tools
ensure_wasm_opt

echo "== cargo build (wasm32) -p m3dfel-wasm"
cargo build --release --target wasm32-unknown-unknown -p m3dfel-wasm
out=pkg/wasm
built="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/m3dfel_wasm.wasm"
# wasm-bindgen and wasm-opt take minutes: skip them when cargo's output is the one already bound.
source_sum=$(sha256sum "$built" | cut -d' ' -f1)
if [[ -f "$out/m3dfel_wasm_bg.wasm" && "$(cat "$out/.source-sha256" 2>/dev/null)" == "$source_sum" ]]; then
    echo "== $out is up to date with cargo's output"
    exit 0
fi
rm -rf "$out"
wasm-bindgen --target web --out-dir "$out" --out-name m3dfel_wasm \
    "$built"
wasm="$out/m3dfel_wasm_bg.wasm"
raw=$(stat -c %s "$wasm")
echo "== $(wasm-opt --version) -O2"
wasm-opt -O2 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue "$wasm" -o "$wasm.opt"
mv "$wasm.opt" "$wasm"
echo "$source_sum" > "$out/.source-sha256"
size=$(stat -c %s "$wasm")
gzipped=$(gzip -9 -c "$wasm" | wc -c)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "== $wasm: $(mib "$size") ($(mib "$gzipped") gzipped; $(mib "$raw") before wasm-opt)"

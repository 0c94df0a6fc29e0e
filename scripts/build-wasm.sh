#!/usr/bin/env bash
# Builds the browser package in pkg/: the m3dfel-wasm crate compiled to wasm32, bound to
# JavaScript by wasm-bindgen, optimised by wasm-opt (npm's binaryen). Two modules:
#   pkg/wasm/          WebGPU, and the CPU on one thread;
#   pkg/wasm-threads/  the CPU on a pool of Web Workers (shared memory, atomics), used by
#                      pkg/m3dfel.js where the page is cross-origin isolated.
# Usage: bash scripts/build-wasm.sh        (prints each .wasm's size raw and gzipped)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ensure_wasm_tools
ensure_wasm_opt

# bind BUILT OUT [wasm-opt flags]: wasm-bindgen and wasm-opt, which take minutes, skipped
# when cargo's output is the one already bound in OUT.
bind() {
    local built=$1 out=$2
    shift 2
    local source_sum
    source_sum=$(sha256sum "$built" | cut -d' ' -f1)
    if [[ -f "$out/m3dfel_wasm_bg.wasm" && "$(cat "$out/.source-sha256" 2>/dev/null)" == "$source_sum" ]]; then
        echo "== $out is up to date with cargo's output"
        return
    fi
    rm -rf "$out"
    wasm-bindgen --target web --out-dir "$out" --out-name m3dfel_wasm "$built"
    local wasm="$out/m3dfel_wasm_bg.wasm" raw size gzipped
    raw=$(stat -c %s "$wasm")
    echo "== $(wasm-opt --version) -O2 ($out)"
    wasm-opt -O2 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
        --enable-mutable-globals --enable-reference-types --enable-multivalue "$@" "$wasm" -o "$wasm.opt"
    mv "$wasm.opt" "$wasm"
    echo "$source_sum" > "$out/.source-sha256"
    size=$(stat -c %s "$wasm")
    gzipped=$(gzip -9 -c "$wasm" | wc -c)
    mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
    echo "== $wasm: $(mib "$size") ($(mib "$gzipped") gzipped; $(mib "$raw") before wasm-opt)"
}

echo "== cargo build (wasm32) -p m3dfel-wasm"
cargo build --release --target wasm32-unknown-unknown -p m3dfel-wasm
bind "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/m3dfel_wasm.wasm" pkg/wasm

# Threads need std rebuilt with atomics: `-Z build-std`, allowed on stable Rust by
# RUSTC_BOOTSTRAP=1 (the rust-src component holds std's sources). Stable rustc does not pass
# the linker the flags of a threaded module by itself: memory shared and imported (so that
# every worker's instance uses it), up to 4 GiB (as much as wasm32 addresses; a shared
# memory's limit is fixed when it is made), and the thread-local storage symbols
# wasm-bindgen initialises per thread.
threads_link="--shared-memory --import-memory --max-memory=4294967296"
threads_link+=" --export=__wasm_init_tls --export=__tls_size --export=__tls_align --export=__tls_base"
echo "== cargo build (wasm32, threads) -p m3dfel-wasm"
RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$WASM_THREADS_TARGET_DIR" \
RUSTFLAGS="-C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals $(printf -- ' -C link-arg=%s' $threads_link)" \
    cargo build --release --target wasm32-unknown-unknown -p m3dfel-wasm --no-default-features --features threads \
    -Z build-std=panic_abort,std
bind "$WASM_THREADS_TARGET_DIR/wasm32-unknown-unknown/release/m3dfel_wasm.wasm" pkg/wasm-threads --enable-threads

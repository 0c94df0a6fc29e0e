#!/usr/bin/env bash
# Runs every test of the project. Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

ensure_python_env
# Mesa's CPU Vulkan driver (llvmpipe) runs the wgpu backend and its WGSL kernels without a GPU.
ensure_apt mesa-vulkan-drivers
# FFmpeg decodes videos for `m3dfel predict --video` (and encodes the tests' videos).
ensure_apt ffmpeg

# Parity fixtures: checkpoints in the authors' three PyTorch layouts plus reference outputs,
# made by an independent PyTorch implementation (torchvision r3d_18 + the spec's DLIAM).
export M3DFEL_PARITY_DIR="$CARGO_TARGET_DIR/parity"
stamp="$M3DFEL_PARITY_DIR/.made-by"
recipe=$(cat tests/parity/*.py tests/parity/*.jpg | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$recipe" ]; then
    echo "== writing parity fixtures to $M3DFEL_PARITY_DIR"
    "$M3DFEL_VENV/bin/python" tests/parity/make_fixtures.py "$M3DFEL_PARITY_DIR"
    echo "$recipe" > "$stamp"
fi

echo "== cargo test (native)"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
# The trainer with its wgpu device, so that its GPU paths (a batch the GPU cannot hold) are
# tested on lavapipe too; m3dfel with CUDA for the check of what CUDA needs from a machine
# (tests/cuda_check.rs: no GPU needed, the driver and NVRTC are stand-ins built with cc).
features=trainer/wgpu,m3dfel/cuda
cargo test --release --workspace --features "$features"
# The benchmarks are compiled (not run: CI never times anything), so that they cannot rot.
cargo bench --workspace --features "$features" --no-run

# Every reader of files users are given, under libFuzzer: the inputs that once crashed a
# reader (fuzz/regressions/), the seeds, then 10 s of fuzzing per target.
echo "== fuzzing (10 s a target; bash scripts/fuzz.sh SECONDS for longer)"
bash scripts/fuzz.sh 10

# The WGSL kernel and R3D-18 on the browser's own WebGPU (headless Chromium, SwiftShader):
# the same test file compiled to wasm32, run by wasm-bindgen-test-runner through chromedriver
# (crates/m3dfel/webdriver.json enables WebGPU).
ensure_wasm_tools
ensure_browser
echo "== cargo test (wasm32, in headless Chromium)"
(
    cd crates/m3dfel
    WASM_BINDGEN_TEST_TIMEOUT=400 CHROMEDRIVER=/usr/bin/chromedriver \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
        cargo test --release --target wasm32-unknown-unknown --test wgpu
)

# The browser package (pkg/) as users get it: packed, installed into a scratch project and
# used from a page (WebGPU and CPU), a Web Worker and Node, compared with `m3dfel predict`.
# The web page (web/, built into a static site with the package): a fake webcam, uploads,
# broken files, WebGPU on and off, a phone-sized screen; screenshots in tests/browser/artifacts/.
echo "== browser package and web page"
site=$(bash scripts/build-web.sh | tail -n 1)
(
    cd tests/browser
    npm ci --no-audit --no-fund --silent
    M3DFEL_SITE="$site" npm test
)

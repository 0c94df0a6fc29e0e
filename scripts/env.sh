# Shared settings for the project's scripts (sourced, not run).
# Installed tools and build outputs live outside the clone so that repeated runs
# (and CI on the same machine) reuse them; a new machine installs them once.
M3DFEL_CACHE="${M3DFEL_CACHE:-$HOME/.cache/m3dfel}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$M3DFEL_CACHE/target}"
M3DFEL_VENV="$M3DFEL_CACHE/venv"
M3DFEL_TOOLS="$M3DFEL_CACHE/tools"
export PATH="$M3DFEL_TOOLS/bin:$PATH"
mkdir -p "$M3DFEL_CACHE" "$CARGO_TARGET_DIR"

# Cargo's freshness checks follow absolute source paths, so the project's own crates built
# from another checkout (an earlier CI clone) could be taken as up to date. When the target
# folder last served another checkout, drop the project's crates; registry crates stay.
workspace_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The browser package's threaded module is built with another std (scripts/build-wasm.sh),
# so it has a target folder of its own.
WASM_THREADS_TARGET_DIR="$CARGO_TARGET_DIR/wasm-threads"
if [ "$(cat "$CARGO_TARGET_DIR/.workspace-root" 2>/dev/null)" != "$workspace_root" ]; then
    for target in "" "--target wasm32-unknown-unknown"; do
        # shellcheck disable=SC2086
        cargo clean --quiet --release $target -p m3dfel -p m3dfel-cli -p m3dfel-wasm -p trainer 2>/dev/null || true
    done
    CARGO_TARGET_DIR="$WASM_THREADS_TARGET_DIR" \
        cargo clean --quiet --release --target wasm32-unknown-unknown -p m3dfel -p m3dfel-wasm 2>/dev/null || true
    echo "$workspace_root" > "$CARGO_TARGET_DIR/.workspace-root"
fi

# The PyTorch reference (torch + torchvision from PyPI) for the parity tests.
ensure_python_env() {
    if ! "$M3DFEL_VENV/bin/python" -c "import torch, torchvision, numpy" 2>/dev/null; then
        echo "== installing the PyTorch reference environment in $M3DFEL_VENV (a few minutes, once)"
        python3 -m venv "$M3DFEL_VENV"
        "$M3DFEL_VENV/bin/pip" install --quiet --disable-pip-version-check torch torchvision numpy
    fi
}

# Debian packages, installed only when missing (CI runs as root on a fresh machine).
ensure_apt() {
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== apt-get install ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Rust → wasm32 and the wasm-bindgen tools, at the wasm-bindgen version in Cargo.lock.
ensure_wasm_tools() {
    rustup target list --installed | grep -q '^wasm32-unknown-unknown$' \
        || rustup target add wasm32-unknown-unknown
    # Rust's library sources: the threaded module rebuilds std with atomics.
    rustup component list --installed | grep -q '^rust-src$' || rustup component add rust-src
    local version
    version=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
    if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $version" ]; then
        echo "== cargo install wasm-bindgen-cli $version (a few minutes, once)"
        # Not --locked: its lockfile pins a crate version the registry no longer serves.
        cargo install --quiet wasm-bindgen-cli --version "$version" --root "$M3DFEL_TOOLS"
    fi
}

# wasm-opt from npm's binaryen (Debian's binaryen 108 breaks wasm-bindgen's externref table).
ensure_wasm_opt() {
    local version=132.0.0 dir="$M3DFEL_TOOLS/binaryen"
    if [ "$("$dir/node_modules/.bin/wasm-opt" --version 2>/dev/null | awk '{print $3}')" != "${version%%.*}" ]; then
        echo "== npm install binaryen@$version (wasm-opt)"
        mkdir -p "$dir"
        npm install --prefix "$dir" --no-audit --no-fund --silent "binaryen@$version"
    fi
    export PATH="$dir/node_modules/.bin:$PATH"
}

# Headless Chromium (WebGPU through SwiftShader with --enable-unsafe-webgpu) and its driver.
ensure_browser() {
    ensure_apt chromium chromium-driver
}

# Shared settings for the project's scripts (sourced, not run).
# Installed tools and build outputs live outside the clone so that repeated runs
# (and CI on the same machine) reuse them; a new machine installs them once.
M3DFEL_CACHE="${M3DFEL_CACHE:-$HOME/.cache/m3dfel}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$M3DFEL_CACHE/target}"
M3DFEL_VENV="$M3DFEL_CACHE/venv"
mkdir -p "$M3DFEL_CACHE"

# The PyTorch reference (torch + torchvision from PyPI) for the parity tests.
ensure_python_env() {
    if ! "$M3DFEL_VENV/bin/python" -c "import torch, torchvision, numpy" 2>/dev/null; then
        echo "== installing the PyTorch reference environment in $M3DFEL_VENV (a few minutes, once)"
        python3 -m venv "$M3DFEL_VENV"
        "$M3DFEL_VENV/bin/pip" install --quiet --disable-pip-version-check torch torchvision numpy
    fi
}

#!/usr/bin/env bash
# Every CUDA kernel of a training step, compiled and assembled without a GPU: the trainer (built
# with --features cuda) runs `trainer bench --device cuda` on a null CUDA driver
# (scripts/null-cuda/libcuda.c: memory in host memory, kernels that do nothing), so Burn's CUDA
# runtime compiles each kernel of the step with the real NVRTC, as on a GPU; then NVIDIA's PTX
# assembler (ptxas) assembles each module for the GPU's architecture, as the driver does when it
# loads one. Prints kernels compiled and seconds for the first step (f32 with an empty kernel
# cache, f32 again with the cache it left, bf16), and the PTX modules assembled, failed and the
# seconds that took. A kernel that NVRTC or ptxas rejects fails the script, with its error.
# Figures are CPU time on this machine: they say what a GPU's first step spends compiling.
#
# NVRTC, the headers and ptxas come from PyPI: the PyTorch venv's CUDA 13 wheels (scripts/env.sh)
# plus nvidia-cuda-crt (the crt/ headers mma.h includes) and nvidia-cuda-nvcc (ptxas) of the
# same version as its nvidia-cuda-nvrtc, installed into that venv.
#   cargo build --release -p trainer --features cuda && bash scripts/cuda-kernels.sh
# TRAINER (default: the release build), PRESET (paper), BATCH (32), CAPABILITY (the GPU's compute
# capability, 9.0: H100/H200, kernels for sm_90a), OUT_DIR (runs/cuda-kernels), CC (C compiler).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
trainer=${TRAINER:-$CARGO_TARGET_DIR/release/trainer}
preset=${PRESET:-paper}
batch=${BATCH:-32}
capability=${CAPABILITY:-9.0}
out=$(mkdir -p "${OUT_DIR:-runs/cuda-kernels}" && cd "${OUT_DIR:-runs/cuda-kernels}" && pwd)
[[ -x "$trainer" ]] || { echo "no trainer at $trainer: cargo build --release -p trainer --features cuda" >&2; exit 2; }

ensure_python_env
version=$("$M3DFEL_VENV/bin/pip" show nvidia-cuda-nvrtc 2> /dev/null | sed -n 's/^Version: //p')
[[ -n "$version" ]] || { echo "the PyTorch venv ($M3DFEL_VENV) has no nvidia-cuda-nvrtc (a CPU-only torch?)" >&2; exit 2; }
"$M3DFEL_VENV/bin/pip" install --quiet --disable-pip-version-check "nvidia-cuda-crt==$version" "nvidia-cuda-nvcc==$version" || exit 2
toolkit=$("$M3DFEL_VENV/bin/python" -c 'import nvidia, os; print(next(os.path.join(p, "cu13") for p in nvidia.__path__ if os.path.isdir(os.path.join(p, "cu13"))))') || exit 2
ptxas=$toolkit/bin/ptxas
arch=sm_${capability/./}$( ((${capability%%.*} >= 9)) && echo a) # CubeCL: sm_90a from Hopper on

null=$out/null-driver
mkdir -p "$null"
"${CC:-cc}" -shared -fPIC -O1 -o "$null/libcuda.so" scripts/null-cuda/libcuda.c || exit 2
echo "NVRTC $version and headers from $toolkit; kernels for compute capability $capability ($arch); $preset preset, batch $batch"

# name, extra trainer arguments…: one first step in a process of its own; its PTX in $out/name/.
step() {
    local name=$1; shift
    mkdir -p "$out/$name" && rm -f "$out/$name"/*.ptx
    LD_LIBRARY_PATH=$null:$toolkit/lib CUDA_PATH=$toolkit NULLCUDA_CC=$capability NULLCUDA_PTX_DIR=$out/$name \
        "$trainer" bench --device cuda --train-preset "$preset" --train-batches "$batch" --runs 1 --warmup 1 \
        --inference-batches --json "$out/$name.json" "$@" > "$out/$name.log" 2>&1
    local status=$?
    tr '\r' '\n' < "$out/$name.log" | grep -o -e '^CUDA: .*' -e 'first run took.*' -e 'error: .*' | sed "s/^/  $name: /"
    (( status == 0 )) || { echo "  $name: the step failed (exit $status): $out/$name.log"; failed=1; }
}
failed=0
rm -rf "$out/cache" "$out/cache-bf16"
M3DFEL_KERNEL_CACHE=$out/cache step f32
M3DFEL_KERNEL_CACHE=$out/cache step f32-cached
M3DFEL_KERNEL_CACHE=$out/cache-bf16 step bf16 --precision bf16

# The driver's part of loading a module: PTX → machine code, here by ptxas, one module at a time.
for name in f32 bf16; do
    modules=0 rejected=0 started=$(date +%s.%N)
    for ptx in "$out/$name"/*.ptx; do
        [[ -e "$ptx" ]] || continue
        modules=$((modules + 1))
        if ! "$ptxas" -arch="$arch" -O3 "$ptx" -o /dev/null 2> "$out/ptxas.err"; then
            rejected=$((rejected + 1)) failed=1
            echo "  ptxas rejected $ptx:"; head -n 5 "$out/ptxas.err"
        fi
    done
    printf '  %s: ptxas assembled %d PTX modules for %s, %d rejected, in %.1f s\n' \
        "$name" "$((modules - rejected))" "$arch" "$rejected" "$(echo "$(date +%s.%N) - $started" | bc)"
done
exit $failed

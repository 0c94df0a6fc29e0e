#!/usr/bin/env bash
# Training speed on an NVIDIA GPU: m3dfel (Burn, CUDA) against the PyTorch reference on the
# same GPU, paper preset, 16×112×112 clips, batch 32 and 64 (forward + backward + AdamW),
# in f32 and in bf16 (m3dfel: `--precision bf16`, everything in bf16; PyTorch: autocast);
# for m3dfel also the first step's seconds and the kernels it compiled, with the project's
# fixed kernels (default), again with the kernel cache the first run left (a second process),
# and, given a build with Burn's autotuner, with `--gpu-kernels autotune`.
# Prints clips/s for each and the ratios; writes $OUT_DIR/*.json and *.log.
#
# For a machine with a GPU, its driver and PyTorch, and neither Rust nor network: build the
# trainer on any machine (it loads libcuda at run time, no CUDA toolkit needed to build),
#   cargo build --release -p trainer --features cuda             (then `strip` it, gzip it)
#   cargo build --release -p trainer --features cuda,autotune    (optional: the comparison;
#                                                                 another CARGO_TARGET_DIR)
# copy them over with this repository (gzip'd is fine: TRAINER=trainer.gz), then
#   TRAINER=path/to/trainer [TRAINER_AUTOTUNE=path/to/trainer-autotune] bash scripts/gpu-bench.sh
# scripts/gpu-carry.sh builds the trainer and the GPU checks and packs both in runs/gpu-carry/;
# CHECKS=runs/gpu-carry/conv3d_gpu.gz runs those checks first (the project's convolution kernels
# on tensor cores in f32 and bf16 and one training step, each against the CPU; CHECKS_LIMIT,
# default 120 s), their verdict in gpu.txt: fast figures of wrong kernels are worth nothing.
# DEVICE (cuda), PRESET (paper), BATCHES (32,64), STEPS (default 5) timed steps after WARMUP
# (default 1: the first step compiles the kernels). BUDGET (default 560) seconds for the whole
# script: each measurement gets what is left (at most LIMIT, default 300), so one stall does
# not cost the others; m3dfel f32 with fixed kernels runs first.
# Tried without a GPU on scripts/cuda-kernels.sh's null driver (every step runs; the checks
# fail and PyTorch finds no GPU, as they must where kernels compute nothing):
#   LD_LIBRARY_PATH=runs/cuda-kernels/null-driver:$NVIDIA/lib CUDA_PATH=$NVIDIA NULLCUDA_CC=9.0 \
#   PYTHON=~/.cache/m3dfel/venv/bin/python TRAINER=… CHECKS=… BATCHES=32 bash scripts/gpu-bench.sh
# with NVIDIA the venv's site-packages/nvidia/cu13 (after scripts/cuda-kernels.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
trainer=${TRAINER:-${CARGO_TARGET_DIR:-$HOME/.cache/m3dfel/target}/release/trainer}
python=${PYTHON:-python3}
device=${DEVICE:-cuda}
preset=${PRESET:-paper}
batches=${BATCHES:-32,64}
steps=${STEPS:-5}
warmup=${WARMUP:-1}
limit=${LIMIT:-300}
budget=${BUDGET:-560}
out=$(mkdir -p "${OUT_DIR:-runs/gpu-bench}" && cd "${OUT_DIR:-runs/gpu-bench}" && pwd)
# unpack VARIABLE PATH NAME: PATH itself, or PATH.gz unpacked to NAME; prints the executable's
# full path, or says which variable names no executable.
unpack() {
    local variable=$1 path=$2 name=$3
    if [[ "$path" == *.gz ]]; then
        gunzip -c "$path" > "${TMPDIR:-/tmp}/$name" && chmod +x "${TMPDIR:-/tmp}/$name" && path=${TMPDIR:-/tmp}/$name
    fi
    [[ -x "$path" ]] || { echo "$variable: no executable at $path (the header of scripts/gpu-bench.sh says how to build it)" >&2; exit 2; }
    realpath "$path"
}
trainer=$(unpack TRAINER "$trainer" m3dfel-trainer) || exit 2
autotuned='' checks=''
if [[ -n "${TRAINER_AUTOTUNE:-}" ]]; then autotuned=$(unpack TRAINER_AUTOTUNE "$TRAINER_AUTOTUNE" m3dfel-trainer-autotune) || exit 2; fi
if [[ -n "${CHECKS:-}" ]]; then checks=$(unpack CHECKS "$CHECKS" m3dfel-gpu-checks) || exit 2; fi

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || echo "nvidia-smi failed"; } 2>&1 | tee "$out/gpu.txt"
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' | tee -a "$out/gpu.txt"

# Burn compiles every CUDA kernel when first used, with NVRTC (libnvrtc, found on the library
# path) and the toolkit's headers (include/cuda_runtime.h and crt/mma.h under CUDA_PATH, else
# /usr/local/cuda; scripts/cuda-kernels.sh compiles them all without a GPU beforehand);
# the trainer checks both before it starts and prints "CUDA: <GPU>; driver …, NVRTC …" or one
# line saying what is missing. Where the defaults lack them, take them from the toolkit that
# nvcc belongs to, or from PyTorch's CUDA wheels (site-packages/nvidia/cu13, or nvidia/cuda_runtime
# and nvidia/cuda_nvrtc for CUDA 12).
if [[ "$device" == cuda ]]; then
    roots=("${CUDA_PATH:-/usr/local/cuda}")
    command -v nvcc > /dev/null && roots+=("$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")")
    mapfile -t -O "${#roots[@]}" roots < <("$python" -c 'import nvidia, os
for p in nvidia.__path__:
    for d in sorted(os.listdir(p)): print(os.path.join(p, d))' 2> /dev/null)
    has_headers() { [[ -f "$1/include/cuda_runtime.h" && -f "$1/include/crt/mma.h" ]]; }
    if ! has_headers "${roots[0]}"; then
        for root in "${roots[@]}"; do
            has_headers "$root" && { export CUDA_PATH=$root; break; }
        done
    fi
    if ! ldconfig -p 2> /dev/null | grep -q 'libnvrtc\.so'; then
        for root in "${roots[@]}"; do
            for lib in "$root/lib64" "$root/lib"; do
                if compgen -G "$lib/libnvrtc.so*" > /dev/null; then
                    export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
                    break 2
                fi
            done
        done
    fi
    echo "CUDA_PATH=${CUDA_PATH:-(unset)} LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-(unset)}" | tee -a "$out/gpu.txt"
fi

# The kernels' results against the CPU, before any timing (the test binary's CUDA tests).
if [[ -n "$checks" ]]; then
    echo "== GPU checks (limit ${CHECKS_LIMIT:-120} s)"
    (cd "$out" && timeout "${CHECKS_LIMIT:-120}" "$checks" --ignored --test-threads 1 --nocapture cuda > "$out/checks.log" 2>&1)
    status=$?
    grep -e 'relative errors' -e 'fell back' -e '^test ' -e 'panicked' -e '^test result' "$out/checks.log" | cut -c1-400
    verdict=$( ((status == 0)) && echo passed || echo "FAILED (exit $status; $out/checks.log)")
    echo "GPU checks: $verdict" | tee -a "$out/gpu.txt"
fi

# Burn compiles its CUDA kernels at run time (NVRTC). The trainer keeps the compiled kernels
# (PTX) and any autotune results in its kernel cache (M3DFEL_KERNEL_CACHE, here in the output
# folder, fresh: the first measurement is a cold start) and counts its compilations. With
# Burn's autotuner every convolution shape is tuned on first use (up to 8 candidates each),
# which took minutes with the GPU idle on an H200 (2026-11-28): the autotune run gets a cache
# of its own, and CubeCL's autotune log (cubecl.toml in the working folder) says what it tuned.
cache=$out/kernel-cache
rm -rf "$cache" "$out/kernel-cache-autotune"
mkdir -p "$cache"
cat > "$out/cubecl.toml" <<TOML
[autotune.logger]
level = "full"
file = "$out/autotune.log"
TOML

# Every 10 s: seconds since start, kernel cache size (KiB), GPU utilisation and memory.
( while sleep 10; do
    echo "$SECONDS s  cache $(du -sk "$cache" | cut -f1) KiB  gpu $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null)"
  done > "$out/samples.txt" ) &
sampler=$!
trap 'kill $sampler 2>/dev/null' EXIT

# name, command…: one measurement in $out (where cubecl.toml is; WORKDIR for another folder),
# its output in $out/name.log, stopped after LIMIT seconds or when the budget runs out.
measure() {
    local name=$1; shift
    local left=$((budget - SECONDS))
    (( left < limit )) && local run_limit=$left || local run_limit=$limit
    if (( run_limit < 20 )); then echo "== $name: skipped, the ${budget} s budget is spent"; return; fi
    echo "== $name (limit $run_limit s)"
    local started=$SECONDS
    (cd "${WORKDIR:-$out}" && M3DFEL_KERNEL_CACHE=${KERNEL_CACHE:-$cache} timeout "$run_limit" "$@" --json "$out/$name.json" > "$out/$name.log" 2>&1)
    local status=$?
    tr '\r' '\n' < "$out/$name.log" | grep -v '^$' | tail -n 4
    echo "   ($name: exit $status after $((SECONDS - started)) s)"
}
torch=("$python" "$PWD/scripts/bench_torch.py" --device "$device" --train-preset "$preset" --runs "$steps" --warmup "$warmup" --inference-batches "")
m3dfel=("$trainer" bench --device "$device" --train-preset "$preset" --runs "$steps" --warmup "$warmup" --inference-batches)
IFS=, read -ra batch_list <<< "$batches"
for batch in "${batch_list[@]}"; do measure "m3dfel-f32-b$batch" "${m3dfel[@]}" --train-batches "$batch"; done
# The same first batch again in a new process: the kernels come from the cache.
measure "m3dfel-f32-cached-b${batch_list[0]}" "${m3dfel[@]}" --train-batches "${batch_list[0]}"
measure torch-f32 "${torch[@]}" --train-batches "$batches"
measure torch-bf16 "${torch[@]}" --train-batches "$batches" --amp bf16
for batch in "${batch_list[@]}"; do measure "m3dfel-bf16-b$batch" "${m3dfel[@]}" --train-batches "$batch" --precision bf16; done
# Where a step's time goes: one f32 step more (after its warm-up, kernels from the cache) with
# CubeCL's profiling logger timing every kernel; scripts/kernel_profile.py sums them by kernel.
mkdir -p "$out/profile"
printf '[profiling.logger]\nlevel = "basic"\nfile = "%s"\n' "$out/profile.log" > "$out/profile/cubecl.toml"
rm -f "$out/profile.log"
WORKDIR=$out/profile measure "m3dfel-f32-profile-b${batch_list[0]}" "$trainer" bench --device "$device" \
    --train-preset "$preset" --runs 1 --warmup 1 --inference-batches --train-batches "${batch_list[0]}"
if [[ -n "$autotuned" ]]; then
    KERNEL_CACHE=$out/kernel-cache-autotune measure "m3dfel-autotune-f32-b${batch_list[0]}" \
        "$autotuned" bench --device "$device" --train-preset "$preset" --runs "$steps" --warmup "$warmup" \
        --inference-batches --gpu-kernels autotune --train-batches "${batch_list[0]}"
fi

[[ -f "$out/profile.log" ]] && "$python" scripts/kernel_profile.py "$out/profile.log" --steps 2 --top 15 | tee "$out/profile.txt"

# What the trainer found (its first line on CUDA), or why it could not start.
grep -h -m1 -e '^CUDA: ' -e '^error: ' "$out"/m3dfel-*.log 2> /dev/null | sort -u | tee -a "$out/gpu.txt"
"$python" - "$out" "$preset" "$batches" <<'PY'
import glob, json, os, sys
out, preset, batches = sys.argv[1], sys.argv[2], [int(b) for b in sys.argv[3].split(",")]
print("first training step (m3dfel): seconds, kernels compiled")
for path in sorted(glob.glob(os.path.join(out, "m3dfel-*.json"))):
    try:
        for m in json.load(open(path))["measurements"]:
            print(f"  {os.path.basename(path)[:-5]:<28} first step {m['first_step_seconds']:7.1f} s  "
                  f"kernels {m['kernels_compiled']}  then {m['median_seconds']:.3f} s a step")
    except (OSError, ValueError, KeyError):
        pass
def load(name):
    figures = {}
    for path in [os.path.join(out, name + ".json")] + glob.glob(os.path.join(out, name + "-b*.json")):
        try:
            figures.update({m["batch"]: m["clips_per_second"] for m in json.load(open(path))["measurements"]})
        except (OSError, ValueError, KeyError):
            pass
    return figures
runs = {name: load(name) for name in ["m3dfel-f32", "torch-f32", "m3dfel-bf16", "torch-bf16"]}
print(f"clips/s ({preset} preset, training step)")
print("batch " + "".join(f"{name:>12}" for name in runs) + "  m3dfel/torch f32  m3dfel/torch bf16")
for batch in batches:
    cell = lambda name: f"{runs[name][batch]:12.1f}" if batch in runs[name] else f"{'-':>12}"
    ratio = lambda a, b: f"{runs[a][batch] / runs[b][batch]:.2f}" if batch in runs[a] and batch in runs[b] else "-"
    print(f"{batch:>5} " + "".join(cell(name) for name in runs) + f"  {ratio('m3dfel-f32', 'torch-f32'):>16}  {ratio('m3dfel-bf16', 'torch-bf16'):>17}")
PY

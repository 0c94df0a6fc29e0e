#!/usr/bin/env bash
# Training speed on an NVIDIA GPU: m3dfel (Burn, CUDA) against the PyTorch reference on the
# same GPU, paper preset, 16×112×112 clips, batch 32 and 64 (forward + backward + AdamW),
# in f32 and in bf16 (m3dfel: `--precision bf16`, everything in bf16; PyTorch: autocast).
# Prints clips/s for each and the ratios; writes $OUT_DIR/*.json and *.log.
#
# For a machine with a GPU, its driver and PyTorch, and neither Rust nor network: build the
# trainer on any machine (it loads libcuda at run time, no CUDA toolkit needed to build),
#   cargo build --release -p trainer --features cuda   (then `strip` it: 78 MB → 61 MB)
# copy it over with this repository (gzip'd is fine: TRAINER=trainer.gz), then
#   TRAINER=path/to/trainer bash scripts/gpu-bench.sh
# DEVICE (cuda), PRESET (paper), BATCHES (32,64), STEPS (default 5) timed steps after WARMUP (default 2; Burn autotunes its kernels then);
# each measurement stops after LIMIT seconds (default 240) and the others still run.
set -uo pipefail
cd "$(dirname "$0")/.."
trainer=${TRAINER:-${CARGO_TARGET_DIR:-$HOME/.cache/m3dfel/target}/release/trainer}
python=${PYTHON:-python3}
device=${DEVICE:-cuda}
preset=${PRESET:-paper}
batches=${BATCHES:-32,64}
steps=${STEPS:-5}
warmup=${WARMUP:-2}
limit=${LIMIT:-240}
out=${OUT_DIR:-runs/gpu-bench}
mkdir -p "$out"
if [[ "$trainer" == *.gz ]]; then
    gunzip -c "$trainer" > "$out/trainer" && chmod +x "$out/trainer" && trainer=$out/trainer
fi
[[ -x "$trainer" ]] || { echo "no trainer at $trainer: build it with --features cuda and set TRAINER" >&2; exit 2; }

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || echo "nvidia-smi failed"; } 2>&1 | tee "$out/gpu.txt"
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' | tee -a "$out/gpu.txt"
# Burn compiles its CUDA kernels at run time (NVRTC) and autotunes the convolutions on first
# use: on an H200 (2026-11-28) the first paper-preset step at batch 32 had not finished after
# 370 s with the GPU idle. A lower autotune level tries fewer kernels; CUBECL_DEBUG_LOG=file
# logs every compilation and tuning result (and kernel profiling: do not time with it).
export CUBECL_AUTOTUNE_LEVEL=${CUBECL_AUTOTUNE_LEVEL:-minimal}
common=(--device "$device" --train-preset "$preset" --train-batches "$batches" --runs "$steps" --warmup "$warmup")

# name, command…: runs one measurement with a time limit, its output in $out/name.log.
measure() {
    local name=$1; shift
    echo "== $name"
    local started=$SECONDS
    timeout "$limit" "$@" --json "$out/$name.json" > "$out/$name.log" 2>&1
    local status=$?
    tail -n 4 "$out/$name.log"
    echo "   ($name: exit $status after $((SECONDS - started)) s)"
}
measure torch-f32 "$python" scripts/bench_torch.py "${common[@]}" --inference-batches ""
measure m3dfel-f32 "$trainer" bench "${common[@]}" --inference-batches
measure torch-bf16 "$python" scripts/bench_torch.py "${common[@]}" --inference-batches "" --amp bf16
measure m3dfel-bf16 "$trainer" bench "${common[@]}" --inference-batches --precision bf16

"$python" - "$out" "$preset" "$batches" <<'PY'
import json, os, sys
out, preset, batches = sys.argv[1], sys.argv[2], [int(b) for b in sys.argv[3].split(",")]
def load(name):
    try:
        return {m["batch"]: m["clips_per_second"] for m in json.load(open(os.path.join(out, name + ".json")))["measurements"]}
    except (OSError, ValueError, KeyError):
        return {}
runs = {name: load(name) for name in ["m3dfel-f32", "torch-f32", "m3dfel-bf16", "torch-bf16"]}
print(f"clips/s ({preset} preset, training step)")
print("batch " + "".join(f"{name:>12}" for name in runs) + "  m3dfel/torch f32  m3dfel/torch bf16")
for batch in batches:
    cell = lambda name: f"{runs[name][batch]:12.1f}" if batch in runs[name] else f"{'-':>12}"
    ratio = lambda a, b: f"{runs[a][batch] / runs[b][batch]:.2f}" if batch in runs[a] and batch in runs[b] else "-"
    print(f"{batch:>5} " + "".join(cell(name) for name in runs) + f"  {ratio('m3dfel-f32', 'torch-f32'):>16}  {ratio('m3dfel-bf16', 'torch-bf16'):>17}")
PY

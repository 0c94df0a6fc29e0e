#!/usr/bin/env bash
# Training speed on an NVIDIA GPU: m3dfel (Burn, CUDA) against the PyTorch reference on the
# same GPU, paper preset, 16×112×112 clips, batch 32 and 64 (forward + backward + AdamW).
# Prints clips/s for both and the ratio; writes runs/gpu-bench/*.json.
#
# For a machine with a GPU, its driver and PyTorch, and neither Rust nor network: build the
# trainer on any machine (it loads libcuda at run time, no CUDA toolkit needed to build),
#   cargo build --release -p trainer --features cuda   (then `strip` it: 78 MB → 61 MB)
# copy it over with this repository, then
#   TRAINER=path/to/trainer bash scripts/gpu-bench.sh          (STEPS=10 timed steps each)
set -euo pipefail
cd "$(dirname "$0")/.."
trainer=${TRAINER:-${CARGO_TARGET_DIR:-$HOME/.cache/m3dfel/target}/release/trainer}
python=${PYTHON:-python3}
steps=${STEPS:-10}
out=runs/gpu-bench
mkdir -p "$out"
[[ -x "$trainer" ]] || { echo "no trainer at $trainer: build it with --features cuda and set TRAINER" >&2; exit 2; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
common=(--train-preset paper --train-batches 32,64 --runs "$steps" --warmup 2)
"$trainer" bench --device cuda --inference-batches "${common[@]}" --json "$out/m3dfel-cuda.json"
"$python" scripts/bench_torch.py --device cuda --inference-batches "" "${common[@]}" --json "$out/torch-cuda.json"
"$python" scripts/bench_torch.py --device cuda --inference-batches "" "${common[@]}" --amp bf16 --json "$out/torch-cuda-bf16.json"

"$python" - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
load = lambda name: json.load(open(os.path.join(out, name)))
ours, torch32, torch16 = load("m3dfel-cuda.json"), load("torch-cuda.json"), load("torch-cuda-bf16.json")
print(f"GPU: {torch32['device']}")
for m in ours["measurements"]:
    t = next(x for x in torch32["measurements"] if x["batch"] == m["batch"])
    h = next(x for x in torch16["measurements"] if x["batch"] == m["batch"])
    print(f"batch {m['batch']:>3}: m3dfel {m['clips_per_second']:7.1f} clips/s   PyTorch fp32 {t['clips_per_second']:7.1f}"
          f"   PyTorch bf16 {h['clips_per_second']:7.1f}   m3dfel / PyTorch fp32 = {m['clips_per_second'] / t['clips_per_second']:.2f}")
PY

#!/usr/bin/env bash
# Builds what scripts/gpu-bench.sh runs on a machine with an NVIDIA GPU and no Rust: the trainer
# with CUDA, and the GPU correctness checks (crates/m3dfel/tests/conv3d_gpu.rs: the project's
# convolution kernels on tensor cores in f32 and bf16 and one training step, each against the
# CPU), stripped and gzipped into runs/gpu-carry/ (~25 MB, under the device tool's 64 MiB).
# Then, on the GPU machine, from a copy of this repository with runs/gpu-carry/ in it:
#   TRAINER=runs/gpu-carry/trainer.gz CHECKS=runs/gpu-carry/conv3d_gpu.gz bash scripts/gpu-bench.sh
# Both load libcuda and NVRTC at run time: building needs no CUDA toolkit. ~10 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
out=runs/gpu-carry
mkdir -p "$out"

echo "== the trainer (release, --features cuda)"
cargo build --release -p trainer --features cuda
trainer=$CARGO_TARGET_DIR/release/trainer

echo "== the GPU checks (tests/conv3d_gpu.rs, --features cuda)"
checks=$(cargo test --release -p m3dfel --features cuda --test conv3d_gpu --no-run --message-format json-render-diagnostics \
    | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "conv3d_gpu" and m.get("executable"):
        print(m["executable"])')
[[ -x "$checks" ]] || { echo "the checks' test binary was not found" >&2; exit 1; }
# The checks must hold the CUDA tests (a build without them would pass the GPU run by running nothing).
"$checks" --list --ignored | grep -q '^cuda::' || { echo "$checks has no CUDA checks" >&2; exit 1; }

for pair in "trainer:$trainer" "conv3d_gpu:$checks"; do
    name=${pair%%:*}
    strip -o "$out/$name" "${pair#*:}"
    gzip -9 -f "$out/$name"
    echo "$out/$name.gz: $(du -h "$out/$name.gz" | cut -f1)"
done
echo "carry runs/gpu-carry; on the GPU machine: TRAINER=$out/trainer.gz CHECKS=$out/conv3d_gpu.gz bash scripts/gpu-bench.sh"

#!/usr/bin/env bash
# Speed of m3dfel against the PyTorch reference on this machine, in one run, with the same
# number of threads. Not a test: it reports, it never fails on slow figures.
#   1. CPU inference, paper preset, 16×112×112 clips, batch 1 and 8
#   2. CPU training step (forward + backward + AdamW), small preset, batch 8
#      1 and 2 run in rounds, m3dfel and PyTorch alternating (which goes first alternates
#      too), each side a warm-up and the median of 3 timed runs per round: a shared or
#      throttled machine drifts by ±20 % over minutes, and a ratio taken within a round
#      cancels that drift (one run per round, as before 2026-12-02, let a single slow run
#      of 0.2 s decide a round). Reported: the median of the per-round ratios and each
#      side's median time.
#   3. the browser package's CPU backend vs native, small preset, one clip: WebAssembly in
#      Node (one thread) and in headless Chromium (a Web Worker of a cross-origin isolated
#      page: one thread, and the threaded module's pool of one thread per processor);
#      native with all threads and with one
#   4. startup: process start to the first result (CLI and Node, demo weights, one clip)
#   5. the face detector (what `predict --video` and the page's face crop run on every
#      frame): one 640×480 frame on one thread, WebAssembly (Node, measured in 3) vs native;
#      and natively a window of 16 frames on all threads
#   6. data loading for training: clips prepared from a DFEW-layout folder of 224×224 JPEG
#      frames (written by `trainer synth`): decoding, the spec's augmentation, 16×112×112
#      clips, batches of 8, one worker per processor: the trainer's loader vs a PyTorch
#      DataLoader (PIL + torchvision's transforms), in rounds like 1 and 2
# Results: runs/bench/results.json (machine-readable) and a table on stdout.
# Usage: bash scripts/bench.sh [--runs N]      (N rounds, default 5; about 25 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ensure_python_env
ensure_browser
(cd tests/browser && npm ci --no-audit --no-fund --silent)  # playwright-core drives Chromium
runs=5
if [[ "${1:-}" == --runs ]]; then runs=$2; fi
out=runs/bench
mkdir -p "$out"
threads=$(nproc)
python="$M3DFEL_VENV/bin/python"

echo "== building (release)" >&2
# The same build as the tests' (a narrower `cargo build -p` unifies other Burn features and
# would compile Burn a second time).
cargo test --release --workspace --no-run >&2
cargo bench --workspace --bench face_detector --no-run >&2
bin="$CARGO_TARGET_DIR/release"
# Always: a package older than the sources would be measured otherwise (it returns at once
# when cargo's output is unchanged).
bash scripts/build-wasm.sh >&2

echo "== 1, 2: CPU inference and training step ($threads threads), $runs rounds" >&2
rm -f "$out"/m3dfel-cpu-*.json "$out"/torch-cpu-*.json
for round in $(seq "$runs"); do
    ours=("$bin/trainer" bench --runs 3 --json "$out/m3dfel-cpu-$round.json")
    theirs=("$python" scripts/bench_torch.py --threads "$threads" --runs 3 --json "$out/torch-cpu-$round.json")
    echo "-- round $round/$runs" >&2
    if (( round % 2 )); then "${ours[@]}"; "${theirs[@]}"; else "${theirs[@]}"; "${ours[@]}"; fi
done

echo "== 3: WebAssembly (Node, Chromium) vs native, small preset, one clip" >&2
small=(--inference-preset small --inference-batches 1 --train-batches --runs "$runs")
"$bin/trainer" bench "${small[@]}" --save-weights "$out/small.safetensors" --json "$out/m3dfel-small.json"
RAYON_NUM_THREADS=1 "$bin/trainer" bench "${small[@]}" --json "$out/m3dfel-small-1-thread.json"
node scripts/bench-wasm.mjs --weights "$out/small.safetensors" --runs "$runs" --json "$out/wasm-small.json"
node scripts/bench-wasm-browser.mjs --weights "$out/small.safetensors" --runs "$runs" --json "$out/wasm-chromium-small.json"

echo "== 4: startup (demo weights, one clip)" >&2
"$python" -c "import numpy as np; np.save('$out/clip.npy', np.random.default_rng(0).random((16, 3, 32, 32), dtype=np.float32))"
node scripts/bench-wasm.mjs --weights pkg/weights/m3dfel-tiny-synthetic.safetensors --runs 1 --json "$out/wasm-tiny.json"
startup=()
for _ in $(seq "$runs"); do
    start=$(date +%s%N)
    "$bin/m3dfel" predict --weights pkg/weights/m3dfel-tiny-synthetic.safetensors --tensor "$out/clip.npy" > /dev/null
    startup+=($(( ($(date +%s%N) - start) / 1000 )))
done
echo "{\"cli_startup_microseconds\": [$(IFS=,; echo "${startup[*]}")]}" > "$out/cli-startup.json"

echo "== 5: face detection (native; WebAssembly was timed in 3)" >&2
# (cargo runs benchmarks in their package's folder: an absolute path)
cargo bench --workspace --bench face_detector -- --json "$PWD/$out/faces-native.json" >&2

echo "== 6: data loading (DFEW-layout JPEG frames), $runs rounds" >&2
data="$out/dfew-synthetic"
[[ -d "$data/Clip" ]] || "$bin/trainer" synth --out "$data" --clips 40 --frame-size 224 >&2
rm -f "$out"/m3dfel-data-*.json "$out"/torch-data-*.json
for round in $(seq "$runs"); do
    ours=("$bin/trainer" bench --inference-batches --train-batches --data "$data" --runs 3 --json "$out/m3dfel-data-$round.json")
    theirs=("$python" scripts/bench_torch.py --threads "$threads" --inference-batches "" --train-batches "" --data "$data" --runs 3 --json "$out/torch-data-$round.json")
    echo "-- round $round/$runs" >&2
    if (( round % 2 )); then "${ours[@]}"; "${theirs[@]}"; else "${theirs[@]}"; "${ours[@]}"; fi
done

"$python" scripts/bench_report.py "$out"

#!/usr/bin/env bash
# The paper's Table 3 question on the synthetic dataset: test WAR/UAR for bag sizes 1, 2, 4, 8
# and 16, each measured by the trainer itself. Extra arguments go to every run
# (e.g. `--epochs 7 --train-clips 700`). Prints a Markdown table; runs go to runs/bag-sizes/.
# BAGS="2 4" limits the runs; the table covers every finished run in runs/bag-sizes/.
# Usage: bash scripts/bag-sizes.sh [trainer flags…]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release -p trainer
for bag in ${BAGS:-1 2 4 8 16}; do
    out="runs/bag-sizes/bag-$bag"
    rm -rf "$out"
    echo "== bag size $bag" >&2
    "$CARGO_TARGET_DIR/release/trainer" --bag-size "$bag" --quiet --out "$out" "$@" >&2
done
python3 - <<'PY'
import json, pathlib
print("| bag size | frames per instance | test WAR | test UAR | best test WAR (epoch) | training time |")
print("|---|---|---|---|---|---|")
for bag in (1, 2, 4, 8, 16):
    path = pathlib.Path(f"runs/bag-sizes/bag-{bag}/summary.json")
    if path.exists():
        s = json.loads(path.read_text())
        print(f"| {bag} | {16 // bag} | {s['war']:.3f} | {s['uar']:.3f} | {s['best_war']:.3f} ({s['best_epoch']}) | {s['training_seconds']:.0f} s |")
PY

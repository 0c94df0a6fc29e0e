#!/usr/bin/env bash
# The paper's Table 3 question on the synthetic dataset: test WAR/UAR for bag sizes 1, 2, 4, 8
# and 16, each measured by the trainer itself. Extra arguments go to every run
# (e.g. `--epochs 4 --train-clips 700`). Prints a Markdown table; runs go to runs/bag-sizes/.
# Usage: bash scripts/bag-sizes.sh [trainer flags…]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release -p trainer
rows=""
for bag in 1 2 4 8 16; do
    out="runs/bag-sizes/bag-$bag"
    rm -rf "$out"
    echo "== bag size $bag" >&2
    "$CARGO_TARGET_DIR/release/trainer" --bag-size "$bag" --quiet --out "$out" "$@" >&2
    rows+=$(python3 -c '
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
print(f"| {sys.argv[2]} | {16 // int(sys.argv[2])} | {s[\"war\"]:.3f} | {s[\"uar\"]:.3f} | {s[\"best_war\"]:.3f} (epoch {s[\"best_epoch\"]}) | {s[\"training_seconds\"]:.0f} s |")
' "$out" "$bag")$'\n'
done
echo "| bag size | frames per instance | test WAR | test UAR | best test WAR | time |"
echo "|---|---|---|---|---|---|"
printf "%s" "$rows"

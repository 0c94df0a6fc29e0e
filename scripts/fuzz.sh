#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer) of every reader that takes bytes from a file a user
# was given (fuzz/fuzz_targets/: weights, npy, frame_image, split_csv, ffprobe, checkpoint,
# run_state). Each target first runs its regressions (fuzz/regressions/, inputs that once
# crashed) and seeds (fuzz/seeds/), then fuzzes for SECONDS (default 60), growing a corpus
# in ~/.cache/m3dfel/fuzz/corpus/. A crash stops the script with the input's path and the
# command that replays it; fix the reader, then commit the input under fuzz/regressions/.
#
# Usage: bash scripts/fuzz.sh [SECONDS] [TARGET ...]
#        bash scripts/fuzz.sh replay TARGET FILE   (runs one input, with the reader's message)
# Needs no nightly toolchain: the coverage instrumentation is stable rustc's sancov pass.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

targets_all=(weights npy frame_image split_csv ffprobe checkpoint run_state)
fuzz_dir="$M3DFEL_CACHE/fuzz"
host=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/fuzz"
bin_dir="$CARGO_TARGET_DIR/$host/release"

build() {
    echo "== building the fuzz targets with coverage instrumentation (first time: several minutes)"
    RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing" \
        cargo build --quiet --release --locked --manifest-path fuzz/Cargo.toml --target "$host" --bins
}

if [ "${1:-}" = replay ]; then
    build
    "$bin_dir/$2" "$3"
    exit
fi

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${targets_all[@]}")
build

# The checkpoint target writes its seeds (an intact model and optimizer record) itself.
if [ ! -d fuzz/seeds/checkpoint ]; then
    M3DFEL_FUZZ_SEEDS=fuzz/seeds/checkpoint "$bin_dir/checkpoint" -runs=0 >/dev/null 2>&1
fi

summary=()
for target in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$target"
    artifacts="$fuzz_dir/artifacts/$target"
    mkdir -p "$corpus" "$artifacts" "fuzz/regressions/$target"
    log="$fuzz_dir/$target.log"
    echo "== $target: regressions and seeds, then $seconds s of fuzzing (log: $log)"
    # -rss_limit_mb: no input may make the process hold more than 2 GiB (the targets' own
    # budgets are tighter: see fuzz/src/lib.rs). -timeout: no input may take 20 s.
    # -close_fd_mask=2: readers' warnings are not printed (libFuzzer's own report still is).
    status=0
    "$bin_dir/$target" "$corpus" "fuzz/seeds/$target" "fuzz/regressions/$target" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
        -close_fd_mask=2 -artifact_prefix="$artifacts/" > "$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    if [ "$status" -ne 0 ]; then
        grep -E "^==[0-9]+== ERROR|deadly signal|panicked|memory allocation|Test unit written|timeout" "$log" | head -n 8 >&2 || true
        crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        echo "error: fuzz target $target crashed (exit $status) after ${runs:-?} runs; input: ${crash:-see $log}" >&2
        echo "replay it with: bash scripts/fuzz.sh replay $target ${crash:-FILE}" >&2
        exit 1
    fi
    summary+=("$(printf '%-12s %10s runs  %7s runs/s  corpus %5s inputs' "$target" "${runs:-0}" "${rate:-0}" "$(ls "$corpus" | wc -l)")")
done
echo "== fuzzing: no crash"
printf '%s\n' "${summary[@]}"

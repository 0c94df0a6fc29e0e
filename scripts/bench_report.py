"""Combines the files scripts/bench.sh wrote into runs/bench/results.json and prints the
ratios (project / PyTorch, WASM / native: below 1 is faster). The CPU comparisons with
PyTorch (model and data loading) ran in rounds (the median of 3 timed runs of each side per round):
their ratios are the medians of the per-round ratios."""
import glob
import json
import os
import platform
import statistics
import subprocess
import sys


def load(out, name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)


def find(report, name, batch=None):
    """The measurement called `name` (of this batch size, for those that have one)."""
    return next(m for m in report["measurements"] if m["name"] == name and (batch is None or m["batch"] == batch))


def plural(threads):
    return f"{threads} thread{'s' if threads > 1 else ''}"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def rounds(out, prefix):
    """The per-round reports of one side, in round order."""
    paths = glob.glob(os.path.join(out, f"{prefix}-*.json"))
    return [load(out, os.path.basename(p)) for p in sorted(paths, key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0]))]


def main(out):
    ours_rounds, torch_rounds = rounds(out, "m3dfel-cpu"), rounds(out, "torch-cpu")
    if not ours_rounds or len(ours_rounds) != len(torch_rounds):
        sys.exit(f"{out}: expected as many m3dfel-cpu-N.json as torch-cpu-N.json files (got {len(ours_rounds)} and {len(torch_rounds)})")
    ours, torch = ours_rounds[0], torch_rounds[0]
    small, small1, wasm = load(out, "m3dfel-small.json"), load(out, "m3dfel-small-1-thread.json"), load(out, "wasm-small.json")
    chromium = load(out, "wasm-chromium-small.json")
    tiny_wasm, cli = load(out, "wasm-tiny.json"), load(out, "cli-startup.json")
    faces = load(out, "faces-native.json")
    data_ours, data_torch = rounds(out, "m3dfel-data"), rounds(out, "torch-data")
    if not data_ours or len(data_ours) != len(data_torch):
        sys.exit(f"{out}: expected as many m3dfel-data-N.json as torch-data-N.json files (got {len(data_ours)} and {len(data_torch)})")
    rows = []

    def by_rounds(ours_side, torch_side, name, batch, what):
        """A row whose ratio is the median of the per-round ratios."""
        a = [find(r, name, batch)["median_seconds"] for r in ours_side]
        b = [find(r, name, batch)["median_seconds"] for r in torch_side]
        rows.append({"what": what, "m3dfel_s": statistics.median(a), "reference": "PyTorch", "reference_s": statistics.median(b),
                     "ratio": statistics.median(x / y for x, y in zip(a, b)), "rounds": {"m3dfel_s": a, "reference_s": b}})

    for name, batch in [("inference", 1), ("inference", 8), ("train step", 8)]:
        by_rounds(ours_rounds, torch_rounds, name, batch, f"CPU {name}, {find(ours, name, batch)['preset']} preset, batch {batch}")
    loading = find(data_ours[0], "data loading")
    by_rounds(data_ours, data_torch, "data loading", loading["batch"],
              f"Data loading, {loading['batch']} clips of 16×{loading['frame_size']}² from 224² JPEGs, augmented ({plural(ours['threads'])})")
    wasm_runs = [("Node", 1, find(wasm, "inference", 1)["median_seconds"])]
    wasm_runs += [("Chromium", m["threads"], m["median_seconds"]) for m in chromium["measurements"]]
    for where, wasm_threads, w in wasm_runs:
        for native, threads in [(small, ours["threads"]), (small1, 1)]:
            n = find(native, "inference", 1)["median_seconds"]
            rows.append({"what": f"WASM ({where}, {plural(wasm_threads)}) vs native ({plural(threads)}), small preset, 1 clip",
                         "m3dfel_s": w, "reference": "native", "reference_s": n, "ratio": w / n})
    detection = {"native": find(faces, "face detection")["median_seconds"],
                 "wasm": find(wasm, "face detection")["median_seconds"]}
    rows.append({"what": "Face detection, one 640×480 frame: WASM (Node, 1 thread) vs native (1 thread)",
                 "m3dfel_s": detection["wasm"], "reference": "native", "reference_s": detection["native"],
                 "ratio": detection["wasm"] / detection["native"]})
    window, camera = find(faces, "face crop window"), find(faces, "face crop camera window")
    cli_s = statistics.median(cli["cli_startup_microseconds"]) / 1e6
    results = {
        "machine": {"cpu": cpu_model(), "threads": ours["threads"], "system": platform.platform()},
        "versions": {"m3dfel": ours["implementation"], "pytorch": torch["implementation"], "wasm": wasm["implementation"],
                     "wasm_chromium": chromium["implementation"],
                     "rustc": subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()},
        "ratios": rows,
        "face_crop_window_seconds": {"native": window["median_seconds"], "native_camera": camera["median_seconds"],
                                     "frames": window["frames"], "threads": window["threads"]},
        "startup_seconds": {"cli_predict_tiny": cli_s, "node_package_tiny": tiny_wasm["startup_seconds"]},
        "raw": {"m3dfel": ours_rounds, "pytorch": torch_rounds, "m3dfel_data": data_ours, "pytorch_data": data_torch, "native_small": small, "native_small_1_thread": small1, "wasm_small": wasm,
                "wasm_chromium_small": chromium, "faces_native": faces},
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"{'measurement':<78} {'m3dfel':>9} {'reference':>18} {'ratio':>6}")
    for r in rows:
        print(f"{r['what']:<78} {r['m3dfel_s']:>8.3f}s {r['reference']:>8} {r['reference_s']:>8.3f}s {r['ratio']:>6.2f}")
    print(f"face crop of a {window['frames']}-frame window (640×480), native, {plural(window['threads'])}: {window['median_seconds']:.3f} s; "
          f"a camera's window (15 of its frames remembered from the last): {camera['median_seconds']:.3f} s")
    print(f"startup to first result: CLI {cli_s:.2f} s, Node package {tiny_wasm['startup_seconds']:.2f} s (tiny demo weights)")
    print(f"written: {os.path.join(out, 'results.json')}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/bench")

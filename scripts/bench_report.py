"""Combines the files scripts/bench.sh wrote into runs/bench/results.json and prints the
ratios (project / PyTorch, WASM / native: below 1 is faster)."""
import json
import os
import platform
import statistics
import subprocess
import sys


def load(out, name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)


def find(report, name, batch):
    return next(m for m in report["measurements"] if m["name"] == name and m["batch"] == batch)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def main(out):
    ours, torch = load(out, "m3dfel-cpu.json"), load(out, "torch-cpu.json")
    small, small1, wasm = load(out, "m3dfel-small.json"), load(out, "m3dfel-small-1-thread.json"), load(out, "wasm-small.json")
    tiny_wasm, cli = load(out, "wasm-tiny.json"), load(out, "cli-startup.json")
    rows = []
    for name, batch in [("inference", 1), ("inference", 8), ("train step", 8)]:
        a, b = find(ours, name, batch), find(torch, name, batch)
        rows.append({"what": f"CPU {name}, {a['preset']} preset, batch {batch}", "m3dfel_s": a["median_seconds"],
                     "reference": "PyTorch", "reference_s": b["median_seconds"], "ratio": a["median_seconds"] / b["median_seconds"]})
    w = find(wasm, "inference", 1)["median_seconds"]
    for native, threads in [(small, ours["threads"]), (small1, 1)]:
        n = find(native, "inference", 1)["median_seconds"]
        rows.append({"what": f"WASM (Node, 1 thread) vs native ({threads} thread{'s' if threads > 1 else ''}), small preset, 1 clip",
                     "m3dfel_s": w, "reference": "native", "reference_s": n, "ratio": w / n})
    cli_s = statistics.median(cli["cli_startup_microseconds"]) / 1e6
    results = {
        "machine": {"cpu": cpu_model(), "threads": ours["threads"], "system": platform.platform()},
        "versions": {"m3dfel": ours["implementation"], "pytorch": torch["implementation"], "wasm": wasm["implementation"],
                     "rustc": subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()},
        "ratios": rows,
        "startup_seconds": {"cli_predict_tiny": cli_s, "node_package_tiny": tiny_wasm["startup_seconds"]},
        "raw": {"m3dfel": ours, "pytorch": torch, "native_small": small, "native_small_1_thread": small1, "wasm_small": wasm},
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"{'measurement':<78} {'m3dfel':>9} {'reference':>18} {'ratio':>6}")
    for r in rows:
        print(f"{r['what']:<78} {r['m3dfel_s']:>8.3f}s {r['reference']:>8} {r['reference_s']:>8.3f}s {r['ratio']:>6.2f}")
    print(f"startup to first result: CLI {cli_s:.2f} s, Node package {tiny_wasm['startup_seconds']:.2f} s (tiny demo weights)")
    print(f"written: {os.path.join(out, 'results.json')}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/bench")

"""Where a GPU's time goes: sums the kernel timings of CubeCL's profiling log by kernel.

CubeCL (Burn's GPU runtime, CUDA and wgpu alike) times every kernel it launches when a
`cubecl.toml` in the working folder asks for it:

    [profiling.logger]
    level = "basic"
    file = "profile.log"

and writes one line per kernel, `| 1.357721ms | KernelName | …generics… | CudaRuntime`.
Usage: python3 scripts/kernel_profile.py profile.log [--top N] [--steps S]
prints the kernels by total time, with their share and count (per step when S is given).
"""

import argparse
import collections
import re
import sys

UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
LINE = re.compile(r"^\|\s*([\d.]+)(ns|µs|us|ms|s)\s*\|\s*(.*?)\s*\|?\s*$")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", help="the profiling log CubeCL wrote")
    parser.add_argument("--top", type=int, default=12, help="kernels to list (default 12)")
    parser.add_argument("--steps", type=int, default=0, help="steps the log covers: times per step")
    args = parser.parse_args()
    seconds, launches = collections.Counter(), collections.Counter()
    try:
        with open(args.log, encoding="utf-8", errors="replace") as log:
            for line in log:
                match = LINE.match(line)
                if match:
                    # The kernel's name and its generic arguments; the runtime's name is last.
                    name = " | ".join(part.strip() for part in match.group(3).split("|")[:-1]) or match.group(3)
                    seconds[name] += float(match.group(1)) * UNITS[match.group(2)]
                    launches[name] += 1
    except OSError as error:
        sys.exit(f"{args.log}: {error.strerror}")
    if not seconds:
        sys.exit(f"{args.log}: no kernel timings (is [profiling.logger] level \"basic\" in cubecl.toml?)")
    total = sum(seconds.values())
    per = max(args.steps, 1)
    unit = "s a step" if args.steps else "s"
    print(f"GPU kernel time: {total / per:.3f} {unit} in {sum(launches.values()) // per} launches")
    for name, time in seconds.most_common(args.top):
        print(f"  {time / per:8.4f} {unit}  {100 * time / total:5.1f} %  {launches[name] // per:6d} ×  {name[:110]}")


if __name__ == "__main__":
    main()

"""The PyTorch side of the benchmarks: the same measurements as `trainer bench`, on the
independent reference model of tests/parity/reference.py (torchvision's r3d_18 + the spec's
DLIAM; the same blocks at the project's smaller widths). Random weights, random clips. With
--data, also how fast a DataLoader prepares training clips from a DFEW-layout folder (PIL,
torchvision's random-resized crop, flip and colour jitter: the spec's augmentation).

    python scripts/bench_torch.py --threads 2 --json torch.json          # CPU
    python scripts/bench_torch.py --device cuda --train-batches 32,64     # a GPU
    python scripts/bench_torch.py --inference-batches "" --train-batches "" --data DIR   # data only
"""
import argparse
import csv
import json
import os
import random
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "parity"))
from reference import M3DFEL  # noqa: E402

# preset: (backbone widths, BiLSTM hidden, frame size), as crates/m3dfel/src/config.rs
PRESETS = {
    "paper": ((64, 128, 256, 512), 512, 112),
    "small": ((32, 64, 128, 256), 256, 112),
    "tiny": ((8, 16, 32, 64), 64, 64),
}


def batches(text):
    return [int(b) for b in text.split(",") if b]


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads (torch.set_num_threads)")
    p.add_argument("--inference-preset", default="paper")
    p.add_argument("--inference-batches", type=batches, default=[1, 8], help="comma-separated; empty: none")
    p.add_argument("--train-preset", default="small")
    p.add_argument("--train-batches", type=batches, default=[8], help="comma-separated; empty: none")
    p.add_argument("--frame-size", type=int, help="default: the preset's")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--amp", choices=["bf16", "f16"], help="mixed precision training (autocast) on CUDA")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--data", help="a DFEW-layout folder (trainer synth --frame-size 224): time preparing its fold-1 training clips")
    p.add_argument("--data-batch", type=int, default=8, help="clips per batch of the data measurement (a run is 4 batches)")
    return p.parse_args()


# Batches per timed run of the data measurement, as crates/trainer/src/bench.rs.
DATA_BATCHES_PER_RUN = 4


class DfewClips:
    """Fold-1 training clips of a DFEW-layout folder, prepared as the spec's training does: 16
    frames at ⌊n·i/16⌋ plus a random 0..15 offset, one random-resized crop (area 8–100 %,
    aspect 3/4–4/3), flip and colour jitter 0.4 drawn per clip and applied to every frame."""

    def __init__(self, root, size):
        with open(os.path.join(root, "EmoLabel_DataSplit", "train(single-labeled)", "set_1.csv")) as f:
            rows = list(csv.reader(f))[1:]
        self.dirs = [os.path.join(root, "Clip", "clip_224x224", f"{int(row[0]):05d}") for row in rows]
        self.size = size

    def __len__(self):
        return len(self.dirs)

    def __getitem__(self, index):
        from PIL import Image
        from torchvision import transforms
        from torchvision.transforms import functional as tf
        folder = self.dirs[index % len(self.dirs)]
        files = sorted(os.listdir(folder))
        n = len(files)
        frames = [Image.open(os.path.join(folder, files[min(n * i // 16 + random.randint(0, 15), n - 1)])).convert("RGB")
                  for i in range(16)]
        top, left, height, width = transforms.RandomResizedCrop.get_params(frames[0], (0.08, 1.0), (3 / 4, 4 / 3))
        flip = random.random() < 0.5
        order, brightness, contrast, saturation, hue = transforms.ColorJitter.get_params(
            (0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.4, 0.4))
        colours = {0: (tf.adjust_brightness, brightness), 1: (tf.adjust_contrast, contrast),
                   2: (tf.adjust_saturation, saturation), 3: (tf.adjust_hue, hue)}
        out = []
        for frame in frames:
            frame = tf.resized_crop(frame, top, left, height, width, [self.size, self.size])
            if flip:
                frame = tf.hflip(frame)
            for op in order.tolist():
                adjust, factor = colours[op]
                frame = adjust(frame, factor)
            out.append(tf.to_tensor(frame))
        return torch.stack(out), 0  # [16, 3, size, size]


def measure_data(args, measure):
    """Seconds per run of DATA_BATCHES_PER_RUN batches from a DataLoader with one worker process
    per thread (each makes whole batches), after its workers have started."""
    _, _, size = PRESETS[args.train_preset]
    size = args.frame_size or size
    clips = DfewClips(args.data, size)
    total = (args.warmup + args.runs) * DATA_BATCHES_PER_RUN * args.data_batch
    sampler = range(total)  # the clips in order, round and round the split (as ours)
    loader = torch.utils.data.DataLoader(clips, batch_size=args.data_batch, sampler=sampler, num_workers=args.threads)
    batches = iter(loader)

    def run():
        for _ in range(DATA_BATCHES_PER_RUN):
            next(batches)

    return measure("data loading", args.train_preset, size, DATA_BATCHES_PER_RUN * args.data_batch, run)


def model_for(preset, frame_size, device):
    widths, hidden, size = PRESETS[preset]
    return M3DFEL(widths=widths, hidden=hidden).to(device), frame_size or size


def timer(args, device):
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def measure(name, preset, size, batch, work):
        label = f"{name}: {preset} preset, {size}×{size} frames, batch {batch}"
        print(f"{label}: warming up…", end="", file=sys.stderr, flush=True)
        for _ in range(args.warmup):
            work()
        sync()
        seconds = []
        for run in range(args.runs):
            print(f"\r{label}: run {run + 1}/{args.runs}…   ", end="", file=sys.stderr, flush=True)
            start = time.perf_counter()
            work()
            sync()
            seconds.append(time.perf_counter() - start)
        median = statistics.median(seconds)
        print(f"\r{label}: median {median:.3f} s ({batch / median:.2f} clips/s) of {args.runs} runs", file=sys.stderr)
        return {"name": name, "preset": preset, "frame_size": size, "batch": batch, "seconds": seconds,
                "median_seconds": median, "clips_per_second": batch / median}

    return measure


def main():
    args = parse()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    measure = timer(args, device)
    results = []
    if args.inference_batches:
        model, size = model_for(args.inference_preset, args.frame_size, device)
        model.eval()
        for batch in args.inference_batches:
            clips = torch.rand(batch, 16, 3, size, size, device=device)
            with torch.inference_mode():
                results.append(measure("inference", args.inference_preset, size, batch, lambda: model(clips)))
    if args.train_batches:
        model, size = model_for(args.train_preset, args.frame_size, device)
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
        dtype = {"bf16": torch.bfloat16, "f16": torch.float16}.get(args.amp)
        scaler = torch.amp.GradScaler(enabled=args.amp == "f16")
        for batch in args.train_batches:
            clips = torch.rand(batch, 16, 3, size, size, device=device)
            labels = torch.randint(0, 7, (batch,), device=device)

            def step():
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    loss = loss_fn(model(clips), labels)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()

            name = "train step" + (f" ({args.amp})" if args.amp else "")
            results.append(measure(name, args.train_preset, size, batch, step))
    if args.data:
        results.append(measure_data(args, measure))
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    report = {"implementation": f"PyTorch {torch.__version__}", "device": device_name,
              "threads": args.threads, "measurements": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()

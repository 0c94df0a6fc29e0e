"""Writes the fuzz targets' seed corpora (fuzz/seeds/<target>/): small, real files of every
format each reader takes, so that fuzzing starts from inputs that reach deep into the reader.

Usage: python fuzz/make_seeds.py M3DFEL_BINARY
(run with the parity environment's Python, which has torch, torchvision and PIL; the
m3dfel binary converts the PyTorch seed to .safetensors and .bpk; ffprobe describes real
videos). The checkpoint target's seeds come from the target itself (scripts/fuzz.sh --seeds).
Everything is seeded: the same files on every run.
"""
import argparse
import io
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "parity"))
from reference import M3DFEL  # noqa: E402

SEEDS = os.path.join(HERE, "seeds")


def target(name):
    path = os.path.join(SEEDS, name)
    os.makedirs(path, exist_ok=True)
    for old in os.listdir(path):
        os.remove(os.path.join(path, old))
    return path


def weights(m3dfel):
    out = target("weights")
    torch.manual_seed(0)
    # Two of every width and a 4-unit BiLSTM (8 wide: the paper's 8 heads, which PyTorch
    # files do not record, divide it): every layer the real model has, in a few KB.
    model = M3DFEL(widths=(2, 2, 2, 2), hidden=4).eval()
    state = model.state_dict()
    torch.save(state, os.path.join(out, "state_dict.pth"))
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.rand(1, 16, 3, 16, 16)).sum().backward()
    optimizer.step()
    torch.save({"epoch": 1, "state_dict": {"module." + k: v for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(), "best_wa": 1.0, "best_ua": 1.0},
               os.path.join(out, "checkpoint.pth"))
    torchvision_names = {}
    for key, value in state.items():
        if key.startswith("features."):
            stage, rest = key.split(".", 2)[1], key.split(".", 2)[2]
            torchvision_names[("stem." if stage == "0" else f"layer{stage}.") + rest] = value
    torch.save(torchvision_names, os.path.join(out, "r3d_18.pth"))
    # PyTorch's legacy (non-zip) serialization, which starts with the pickle opcode 0x80.
    torch.save(state, os.path.join(out, "legacy.pth"), _use_new_zipfile_serialization=False)
    for name in ["weights.safetensors", "weights-f16.safetensors", "weights.bpk"]:
        extra = ["--f16"] if "f16" in name else []
        subprocess.run([m3dfel, "import", os.path.join(out, "state_dict.pth"), "-o", os.path.join(out, name), *extra],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def npy():
    out = target("npy")
    rng = np.random.default_rng(0)
    np.save(os.path.join(out, "clip-f4.npy"), rng.random((16, 3, 4, 4), dtype=np.float32))
    np.save(os.path.join(out, "batch-f8.npy"), rng.random((1, 16, 3, 2, 2)))
    np.save(os.path.join(out, "scalar.npy"), np.float32(0.5))
    with open(os.path.join(out, "version2.npy"), "wb") as f:
        np.lib.format.write_array(f, rng.random((2, 3), dtype=np.float32), version=(2, 0))


def frame_image():
    out = target("frame_image")
    rng = np.random.default_rng(0)
    picture = Image.fromarray((rng.random((12, 16, 3)) * 255).astype(np.uint8))
    # The first byte picks the extension: 0 → .jpg, 1 → .png, 2 → .bmp.
    for pick, (name, image, options) in enumerate([
        ("frame.jpg", picture, {"format": "JPEG", "quality": 90}),
        ("frame.png", picture, {"format": "PNG"}),
        ("frame.bmp", picture, {"format": "BMP"}),
    ]):
        data = io.BytesIO()
        image.save(data, **options)
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([pick]) + data.getvalue())
    for name, image, pick, options in [
        ("grey.png", picture.convert("L"), 1, {"format": "PNG"}),
        ("palette.png", picture.convert("P"), 1, {"format": "PNG"}),
        ("progressive.jpg", picture, 0, {"format": "JPEG", "progressive": True}),
        ("palette.bmp", picture.convert("P"), 2, {"format": "BMP"}),
    ]:
        data = io.BytesIO()
        image.save(data, **options)
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([pick]) + data.getvalue())


def split_csv():
    out = target("split_csv")
    files = {
        "dfew.csv": "video_name,label\n1,1\n2,7\n00001,3\n",
        "ferv39k.csv": "Happy/0001 Happy\nHappy/0002 Sad\n",
        "csv.csv": "clips/a,0\nclips/a,happy\nclips/b,6\n",
    }
    for name, text in files.items():
        with open(os.path.join(out, name), "w") as f:
            f.write(text)


def ffprobe():
    out = target("ffprobe")
    with tempfile.TemporaryDirectory() as scratch:
        for name, args in [
            ("h264.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
            ("vp9.webm", ["-c:v", "libvpx-vp9"]),
            ("mjpeg.avi", ["-c:v", "mjpeg"]),
        ]:
            video = os.path.join(scratch, name)
            subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=2",
                            *args, video], check=True)
            answer = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                                     "stream=width,height,avg_frame_rate,r_frame_rate,codec_name,duration:format=duration",
                                     "-of", "json", video], check=True, capture_output=True).stdout
            with open(os.path.join(out, name + ".json"), "wb") as f:
                f.write(answer)


def run_state(trainer):
    out = target("run_state")
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([trainer, "--out", scratch, "--epochs", "2", "--preset", "tiny", "--frame-size", "16",
                        "--train-clips", "8", "--test-clips", "4", "--batch-size", "4", "--quiet"],
                       check=True, stdout=subprocess.DEVNULL)
        checkpoints = os.path.join(scratch, "checkpoints")
        latest = open(os.path.join(checkpoints, "latest")).read().strip()
        state = json.load(open(os.path.join(checkpoints, latest, "state.json")))
        with open(os.path.join(out, "state.json"), "w") as f:
            json.dump(state, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("m3dfel", help="the m3dfel binary (converts the weight seeds)")
    parser.add_argument("trainer", help="the trainer binary (writes a run's state.json)")
    args = parser.parse_args()
    weights(args.m3dfel)
    npy()
    frame_image()
    split_csv()
    ffprobe()
    run_state(args.trainer)


if __name__ == "__main__":
    main()

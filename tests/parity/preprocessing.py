"""Reference for turning a folder of frame images into a clip (crates/m3dfel/src/frames.rs),
the way the authors' evaluation does it, with PIL and torchvision rather than the Rust code:
frame i of 16 is file ⌊n·i/16⌋ of the sorted folder, opened by PIL, converted to RGB,
`torchvision.transforms.Resize((112, 112))` (PIL's bilinear filter, which widens with the
scale when shrinking) and `ToTensor()` (RGB planes, values / 255).

write_fixtures(out) writes out/preprocessing/<case>/ (the JPEG or PNG frames) and
out/preprocessing/<case>.npy ([16, 3, 112, 112] float32) for:
- jpeg-wide: 23 JPEG frames of 171×128, a photograph moving and brightening frame by frame
  (so that a wrong frame index shows), with colour (so that swapped planes show);
- png-tall: 9 PNG frames of 90×140 (fewer than 16: frames repeat; growing one axis).
"""
import os
import shutil

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

PHOTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "astronaut-face.jpg")
FRAMES, SIZE = 16, 112


def frames(count, width, height):
    """`count` pictures: the photograph, shifted and brightened a little more in each."""
    photo = Image.open(PHOTO).convert("RGB")
    out = []
    for i in range(count):
        crop = photo.crop((3 * i, 2 * i, 3 * i + 200, 2 * i + 200)).resize((width, height), Image.BICUBIC)
        pixels = np.asarray(crop).astype(np.float32) * (0.7 + 0.02 * i) + 4 * i
        out.append(Image.fromarray(pixels.clip(0, 255).astype(np.uint8)))
    return out


def reference_clip(folder):
    names = sorted(os.listdir(folder))
    n = len(names)
    transform = transforms.Compose([transforms.Resize((SIZE, SIZE)), transforms.ToTensor()])
    clip = [transform(Image.open(os.path.join(folder, names[n * i // FRAMES])).convert("RGB")) for i in range(FRAMES)]
    return torch.stack(clip).numpy().astype(np.float32)  # [16, 3, 112, 112]


def write_fixtures(out):
    out = os.path.join(out, "preprocessing")
    shutil.rmtree(out, ignore_errors=True)  # no case left over from an earlier recipe
    for case, count, (width, height), extension in (("jpeg-wide", 23, (171, 128), "jpg"), ("png-tall", 9, (90, 140), "png")):
        folder = os.path.join(out, case)
        os.makedirs(folder, exist_ok=True)
        for i, picture in enumerate(frames(count, width, height)):
            picture.save(os.path.join(folder, f"frame_{i:03d}.{extension}"), quality=90)
        np.save(os.path.join(out, f"{case}.npy"), reference_clip(folder))

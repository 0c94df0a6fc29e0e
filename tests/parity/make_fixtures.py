"""Writes parity fixtures: checkpoints in the three PyTorch layouts, inputs and outputs.

Usage: python tests/parity/make_fixtures.py OUT_DIR

Everything is seeded, so the files are the same on every run.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import face_detector  # noqa: E402
import preprocessing  # noqa: E402
from reference import M3DFEL  # noqa: E402


def randomize(model, generator):
    """Non-trivial BN statistics, affine terms and DMIN mixing weights."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                c = module.num_features
                module.running_mean.copy_(torch.randn(c, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(c, generator=generator) * 0.5 + 0.75)
                module.weight.copy_(torch.rand(c, generator=generator) * 0.5 + 0.75)
                module.bias.copy_(torch.randn(c, generator=generator) * 0.1)
                module.num_batches_tracked.fill_(1234)
        model.fc.weight.mul_(20.0)  # spread the logits so differences show
        # With PyTorch's default initialisation the LSTM output is small and the attention
        # scores are about 0.01: every query would get mean(v), and the attention's scale,
        # softmax axis and q/k order (and the instances' order after it) would go untested.
        # Larger weights make the attention far from uniform (its largest weight is 0.83 on
        # average with 4 instances) and the gates differ between instances.
        for weight in model.lstm.parameters():
            weight.mul_(8.0)
        model.to_qkv.weight.mul_(15.0)
        norm = model.norm
        norm.weight.copy_(torch.rand(norm.weight.shape, generator=generator) + 0.5)
        norm.bias.copy_(torch.randn(norm.bias.shape, generator=generator) * 0.2)
        norm.mean_weight.copy_(torch.tensor([0.3, -0.8]))
        norm.var_weight.copy_(torch.tensor([-0.4, 1.1]))


def structured_clips(generator):
    """Two clips that differ in content and move over time, and whose 3D instances differ
    clearly: every group of 4 frames has its own brightness, contrast and stripe frequency
    (clip 0) or blob size and colour (clip 1). Plain noise, or one pattern drifting slowly,
    looks alike in every instance to a random network."""
    t = torch.arange(16).view(16, 1, 1, 1).float()
    group = torch.div(t, 4, rounding_mode="floor")  # 0, 0, 0, 0, 1, ... 3: the frame's group of 4
    c = torch.arange(3).view(1, 3, 1, 1).float()
    y = torch.linspace(0, 1, 112).view(1, 1, 112, 1)
    x = torch.linspace(0, 1, 112).view(1, 1, 1, 112)
    frequency = 3 + 5 * group
    stripes = torch.sin(frequency * x + 0.4 * t + c) * torch.cos((7 - frequency) * y - 0.3 * t)
    level = torch.tensor([0.5, 0.2, 0.8, 0.4])[group.long()]
    contrast = torch.tensor([0.5, 0.15, 0.35, 0.05])[group.long()]
    clip0 = level + contrast * stripes + 0.1 * torch.rand(16, 3, 112, 112, generator=generator)
    blob = torch.exp(-((x - 0.2 - 0.04 * t) ** 2 + (y - 0.6) ** 2) / (0.005 + 0.02 * group)) * (c == group % 3)
    clip1 = 0.1 + 0.07 * group + 0.9 * blob + 0.05 * torch.rand(16, 3, 112, 112, generator=generator)
    return torch.stack([clip0, clip1]).clamp(0, 1)


def save_npy(out, name, tensor):
    np.save(os.path.join(out, name + ".npy"), tensor.detach().numpy().astype(np.float32))


def write_case(out, name, instance_length, seed):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = M3DFEL(instance_length=instance_length).eval()
    randomize(model, generator)
    clips = structured_clips(generator)
    with torch.no_grad():
        stages = model.stages(clips)
    prefix = os.path.join(out, name)
    os.makedirs(prefix, exist_ok=True)
    save_npy(prefix, "clips", clips)
    for key, value in stages.items():
        save_npy(prefix, key, value)

    # Layout 1: the plain state_dict.
    torch.save(model.state_dict(), os.path.join(prefix, "state_dict.pth"))
    # Layout 2: the authors' training checkpoint, saved from a DataParallel model.
    # (A real optimizer step fills `optimizer` with state; the weights and BN statistics
    # the outputs were computed with are restored afterwards.)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.05)
    model.train()
    loss = model(clips[:1]).sum()
    loss.backward()
    optimizer.step()
    model.load_state_dict(before)  # keep the weights the outputs were computed with
    model.eval()
    checkpoint = {
        "epoch": 42,
        "state_dict": {"module." + k: v for k, v in model.state_dict().items()},
        "best_wa": 69.25,
        "best_ua": 56.10,
        "optimizer": optimizer.state_dict(),
        "args": argparse.Namespace(lr=5e-4, batch_size=256, epochs=300, fold=1,
                                   dataset="DFEW", instance_length=instance_length),
    }
    torch.save(checkpoint, os.path.join(prefix, "checkpoint.pth"))
    # Layout 3: torchvision's r3d_18 state_dict with the same backbone weights.
    import torchvision
    r3d = torchvision.models.video.r3d_18(weights=None)
    backbone = {k: v for k, v in model.state_dict().items() if k.startswith("features.")}
    renamed = {}
    for key, value in backbone.items():
        stage, rest = key.split(".", 2)[1], key.split(".", 2)[2]
        renamed[("stem." if stage == "0" else f"layer{stage}.") + rest] = value
    missing, unexpected = r3d.load_state_dict(renamed, strict=False)
    assert not unexpected and all(k.startswith("fc.") for k in missing), (missing, unexpected)
    torch.save(r3d.state_dict(), os.path.join(prefix, "r3d_18.pth"))
    print(f"{prefix}: logits {stages['logits'].numpy().round(4).tolist()}")


def write_bad_files(out):
    """Checkpoints that must be refused: a foreign model and a wrong shape."""
    bad = os.path.join(out, "bad")
    os.makedirs(bad, exist_ok=True)
    foreign = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Linear(8, 2))
    torch.save(foreign.state_dict(), os.path.join(bad, "not_m3dfel.pth"))
    state = torch.load(os.path.join(out, "paper", "state_dict.pth"))
    state["to_qkv.weight"] = torch.zeros(3072, 1000)
    torch.save(state, os.path.join(bad, "wrong_shape.pth"))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    write_case(args.out, "paper", instance_length=4, seed=1)
    write_case(args.out, "bag2", instance_length=8, seed=2)
    face_detector.write_fixtures(args.out)
    preprocessing.write_fixtures(args.out)
    write_bad_files(args.out)


if __name__ == "__main__":
    main()

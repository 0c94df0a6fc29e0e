"""An independent PyTorch reference of M3DFEL, written from docs/M3DFEL-SPEC.md.

The backbone is torchvision's own ``r3d_18`` (so its weights and code are not ours);
DLIAM follows the spec: 2-layer BiLSTM, bias-free qkv multi-head self-attention without
output projection, DMIN, sigmoid gate, Conv1d over instances, Linear classifier.
Parameter names equal the authors' released checkpoints.
"""
import torch
import torch.nn as nn
import torchvision
from torchvision.models.video.resnet import BasicBlock, Conv3DSimple

PAPER_WIDTHS = (64, 128, 256, 512)


def r3d_18_features(widths):
    """R3D-18 without pooling and classifier: torchvision's own for the paper's widths, the
    same blocks at other widths (the project's `small` and `tiny` presets, for benchmarks)."""
    if tuple(widths) == PAPER_WIDTHS:
        return nn.Sequential(*list(torchvision.models.video.r3d_18(weights=None).children())[:-2])
    stem = nn.Sequential(
        nn.Conv3d(3, widths[0], (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
        nn.BatchNorm3d(widths[0]),
        nn.ReLU(inplace=True),
    )
    layers, inplanes = [], widths[0]
    for i, planes in enumerate(widths):
        stride = 1 if i == 0 else 2
        downsample = None
        if stride != 1 or inplanes != planes:
            downsample = nn.Sequential(nn.Conv3d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm3d(planes))
        layers.append(nn.Sequential(
            BasicBlock(inplanes, planes, Conv3DSimple, stride, downsample),
            BasicBlock(planes, planes, Conv3DSimple),
        ))
        inplanes = planes
    return nn.Sequential(stem, *layers)


class DMIN(nn.Module):
    """Dynamic Multi-Instance Normalization on x: [B, C, N] (statistics over N)."""

    def __init__(self, channels, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))
        self.mean_weight = nn.Parameter(torch.ones(2))
        self.var_weight = nn.Parameter(torch.ones(2))

    def forward(self, x):
        mean_in = x.mean(-1, keepdim=True)                 # [B, C, 1]
        var_in = x.var(-1, keepdim=True, unbiased=True)    # [B, C, 1]
        mean_bag = mean_in.mean(1, keepdim=True)           # [B, 1, 1]
        var_bag = (var_in + mean_in ** 2).mean(1, keepdim=True) - mean_bag ** 2
        wm = torch.softmax(self.mean_weight, 0)
        wv = torch.softmax(self.var_weight, 0)
        mean = wm[0] * mean_in + wm[1] * mean_bag
        var = wv[0] * var_in + wv[1] * var_bag
        x = (x - mean) / (var + self.eps).sqrt()
        return x * self.weight + self.bias


class M3DFEL(nn.Module):
    def __init__(self, instance_length=4, num_frames=16, heads=8, num_classes=7, widths=PAPER_WIDTHS, hidden=512):
        super().__init__()
        self.instance_length = instance_length
        self.bag_size = num_frames // instance_length
        self.heads = heads
        # stem, layer1..layer4 (torchvision's r3d_18 without avgpool and the Kinetics fc)
        self.features = r3d_18_features(widths)
        self.lstm = nn.LSTM(widths[-1], hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.to_qkv = nn.Linear(2 * hidden, 6 * hidden, bias=False)
        self.norm = DMIN(2 * hidden)
        self.pwconv = nn.Conv1d(self.bag_size, 1, 3, 1, 1)
        self.fc = nn.Linear(2 * hidden, num_classes)

    def stages(self, clips):
        """clips [B, 16, 3, H, W] -> dict of every intermediate tensor."""
        b, f, c, h, w = clips.shape
        n, l = self.bag_size, self.instance_length
        x = clips.reshape(b * n, l, c, h, w).permute(0, 2, 1, 3, 4)  # [B*N, 3, L, H, W]
        x = self.features(x)
        features = x.mean(dim=(2, 3, 4)).reshape(b, n, -1)           # [B, N, 512]
        ori, _ = self.lstm(features)                                   # [B, N, 1024]
        q, k, v = self.to_qkv(ori).chunk(3, dim=-1)
        split = lambda t: t.reshape(b, n, self.heads, -1).transpose(1, 2)  # [B, h, N, d]
        q, k, v = split(q), split(k), split(v)
        attn = torch.softmax(q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5), dim=-1)
        attended = (attn @ v).transpose(1, 2).reshape(b, n, -1)       # [B, N, 1024]
        normed = self.norm(attended.transpose(1, 2)).transpose(1, 2)  # [B, N, 1024]
        gate = torch.sigmoid(normed)
        gated = ori * gate
        bag = self.pwconv(gated).squeeze(1)                            # [B, 1024]
        return {
            "features": features,
            "ori": ori,
            "attended": attended,
            "dmin": normed,
            "gated": gated,
            "logits": self.fc(bag),
            "instance_logits": self.fc(gated),
            "gate_mean": gate.mean(-1),
        }

    def forward(self, clips):
        return self.stages(clips)["logits"]

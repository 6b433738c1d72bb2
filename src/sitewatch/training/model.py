"""A small CenterNet-style vehicle detector in plain torch.

Why this shape: vehicles in 0.3 m imagery are 6-50 pixels long, so a heatmap of object
centres at stride 4 (1.2 m cells) with a regressed box size is enough, and needs no
anchors or non-maximum suppression beyond a 3x3 peak test. A few strided blocks keep it
at a few hundred thousand parameters so that it trains on two CPU cores and runs fast
through onnxruntime.
"""

from __future__ import annotations

import torch
from torch import nn

STRIDE = 4
"""Output cell size in model pixels."""

_MEAN = (0.45, 0.45, 0.45)
_STD = (0.22, 0.22, 0.22)


def _conv(in_channels: int, out_channels: int, *, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class _Separable(nn.Module):
    """Depthwise 3x3 + pointwise 1x1 with a residual: wide context for little compute."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation,
                                   groups=channels, bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.norm = nn.BatchNorm2d(channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.norm(self.pointwise(self.depthwise(x))))


class CenterNetLite(nn.Module):
    """Heatmap of object centres per class, box size and sub-cell offset, all at stride 4.

    Input: float RGB in 0..1, shape (N, 3, H, W), H and W multiples of 16.
    Outputs (all at H/4 x W/4):
    ``peaks`` (N, C, h, w): class score where it is a local 3x3 maximum, else 0;
    ``size`` (N, 2, h, w): log of box width and height in model pixels;
    ``offset`` (N, 2, h, w): centre offset within the cell, in cells (x, y).
    """

    def __init__(self, num_classes: int, width: int = 32, *, light: bool = False) -> None:
        """``light``: the stride-4 stage and merge depthwise-separable and one 3x3 convolution shared by
        both heads, about half the multiply-adds (the full 3x3 convolutions at stride 4 are 70 % of
        them); an experiment (``configs/experiments/detector-light.yaml``)."""
        super().__init__()
        self.num_classes = num_classes
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))
        w = width
        self.stem = nn.Sequential(_conv(3, 16, stride=2), _conv(16, w, stride=2))  # stride 4
        self.stage4 = nn.Sequential(_Separable(w) if light else _conv(w, w))
        self.down8 = _conv(w, 2 * w, stride=2)
        self.stage8 = nn.Sequential(_Separable(2 * w), _Separable(2 * w, dilation=2))
        self.down16 = _conv(2 * w, 2 * w, stride=2)
        self.stage16 = nn.Sequential(_Separable(2 * w), _Separable(2 * w, dilation=2), _Separable(2 * w))
        self.lateral8 = nn.Conv2d(2 * w, 2 * w, 1)
        self.reduce8 = _conv(2 * w, w, kernel=1)
        self.fuse4: nn.Module = _Separable(w) if light else _conv(w, w)
        self.shared: nn.Module = _conv(w, w) if light else nn.Identity()
        self.heat = nn.Sequential(nn.Identity() if light else _conv(w, w), nn.Conv2d(w, num_classes, 1))
        self.box = nn.Sequential(nn.Identity() if light else _conv(w, w), nn.Conv2d(w, 4, 1))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        # Focal-loss prior: start with a low object probability everywhere.
        last = self.heat[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.constant_(last.bias, -4.0)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        x = (image - self.get_buffer("mean")) / self.get_buffer("std")
        f4 = self.stage4(self.stem(x))
        f8 = self.stage8(self.down8(f4))
        f16 = self.stage16(self.down16(f8))
        f8 = self.reduce8(self.lateral8(f8) + self.up(f16))
        return self.shared(self.fuse4(f4 + self.up(f8)))

    def raw(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmap logits (N, C, h, w) and box regression (N, 4, h, w) for training."""
        f = self.features(image)
        return self.heat(f), self.box(f)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, box = self.raw(image)
        scores = torch.sigmoid(logits)
        peaks = scores * (scores == nn.functional.max_pool2d(scores, 3, stride=1, padding=1)).float()
        return peaks, box[:, :2], torch.sigmoid(box[:, 2:])


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

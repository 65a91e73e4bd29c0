"""Multi-scale patch discriminators D_S and D_B."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import conv_block


class PatchDiscriminator(nn.Module):
    """Stride-2 4x4 convs (reflection pad, LeakyReLU, no norm) doubling the width, then a 1x1 conv to logits."""

    def __init__(self, channels: int = 3, width: int = 64, layers: int = 4):
        super().__init__()
        mods: list[nn.Module] = [conv_block(channels, width, 4, 2, 1, act=nn.LeakyReLU())]
        ch = width
        for _ in range(1, layers):
            mods.append(conv_block(ch, ch * 2, 4, 2, 1, act=nn.LeakyReLU()))
            ch *= 2
        mods.append(nn.Conv2d(ch, 1, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MultiScaleDiscriminator(nn.Module):
    """One PatchDiscriminator per scale; the input is average-pooled (3x3, stride 2) between scales."""

    def __init__(self, channels: int = 3, width: int = 64, layers: int = 4, scales: int = 3):
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(channels, width, layers) for _ in range(scales))
        self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, d in enumerate(self.scales):
            if i:
                x = self.down(x)
            outs.append(d(x))
        return outs

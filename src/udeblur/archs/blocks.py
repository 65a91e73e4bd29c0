"""Building blocks shared by the encoders, generators and discriminators (DRIT-style)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_block(
    in_ch: int,
    out_ch: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    norm: str | None = None,
    act: nn.Module | None = None,
) -> nn.Sequential:
    """Reflection pad -> conv -> optional InstanceNorm -> optional activation."""
    layers: list[nn.Module] = []
    if padding:
        layers.append(nn.ReflectionPad2d(padding))
    layers.append(nn.Conv2d(in_ch, out_ch, kernel, stride, 0, bias=True))
    if norm == "instance":
        layers.append(nn.InstanceNorm2d(out_ch, affine=False))
    elif norm is not None:
        raise ValueError(f"unknown norm {norm!r}")
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """Two 3x3 convs with InstanceNorm and an identity shortcut (DRIT's INSResBlock)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_block(channels, channels, 3, 1, 1, norm="instance", act=nn.ReLU()),
            conv_block(channels, channels, 3, 1, 1, norm="instance"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class LayerNorm2d(nn.Module):
    """Normalise over (C, H, W) per sample with a per-channel affine (DRIT's LayerNorm)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape[1:]
        return F.layer_norm(x, shape, self.weight.expand(shape), self.bias.expand(shape), self.eps)


class DownResBlock(nn.Module):
    """Pre-activation residual block that halves the resolution (the blur encoder's BasicBlock)."""

    def __init__(self, in_ch: int, out_ch: int, slope: float = 0.2):
        super().__init__()
        self.body = nn.Sequential(
            nn.LeakyReLU(slope),
            conv_block(in_ch, in_ch, 3, 1, 1),
            nn.LeakyReLU(slope),
            conv_block(in_ch, out_ch, 3, 1, 1),
            nn.AvgPool2d(2, 2),
        )
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(in_ch, out_ch, 1, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


def output_image(out: torch.Tensor, src: torch.Tensor | None, global_skip: bool) -> torch.Tensor:
    """A generator's last step: ``tanh(out)``, or with ``global_skip`` ``out`` as a correction to ``src`` in tanh's
    pre-activation space (``src`` itself when ``out`` is 0; the result stays in (-1, 1))."""
    if not global_skip:
        return torch.tanh(out)
    if src is None:
        raise ValueError("a generator with global_skip needs the source image (src)")
    return torch.tanh(torch.atanh(src.clamp(-0.995, 0.995)) + out)


def tile_code(z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a code N x Z to N x Z x H x W matching ``like``'s spatial size."""
    return z[:, :, None, None].expand(z.shape[0], z.shape[1], like.shape[2], like.shape[3])


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """N(0, std) for (transposed) convolutions, zero bias — the authors' initialisation."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

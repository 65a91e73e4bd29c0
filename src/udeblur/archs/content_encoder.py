"""Content encoders E_S^c and E_B^c with their ONE shared last residual block."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ResBlock, conv_block
from .noise import noise_like


class DomainContentEncoder(nn.Module):
    """The private part of one domain's content encoder: 7x7 conv, two stride-2 convs, residual blocks."""

    def __init__(self, channels: int = 3, width: int = 64, res_blocks: int = 3):
        super().__init__()
        layers: list[nn.Module] = [conv_block(channels, width, 7, 1, 3, act=nn.LeakyReLU())]
        ch = width
        for _ in range(2):
            layers.append(conv_block(ch, ch * 2, 3, 2, 1, norm="instance", act=nn.ReLU()))
            ch *= 2
        layers += [ResBlock(ch) for _ in range(res_blocks)]
        self.net = nn.Sequential(*layers)
        self.out_channels = ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ContentEncoders(nn.Module):
    """E_S^c and E_B^c. Their last residual block is one module, so both use the same Parameters.

    Sharing that layer ties the two content spaces together, which is what lets the blurred-domain
    encoder learn to extract *content* (method.md). During training N(0, noise_std^2) noise is added to
    the content code (DRIT's GaussianNoiseLayer); at test time the code is deterministic.
    """

    def __init__(
        self, channels: int = 3, width: int = 64, res_blocks: int = 3, noise_std: float = 1.0, share: bool = True
    ):
        super().__init__()
        self.sharp = DomainContentEncoder(channels, width, res_blocks)
        self.blurred = DomainContentEncoder(channels, width, res_blocks)
        self.shared = ResBlock(self.sharp.out_channels)
        # ablation "no shared content layer": the blurred encoder gets its own last block
        self.blurred_last = self.shared if share else ResBlock(self.sharp.out_channels)
        self.noise_std = noise_std
        self.out_channels = self.sharp.out_channels

    def _finish(self, h: torch.Tensor, last: nn.Module) -> torch.Tensor:
        h = last(h)
        if self.training and self.noise_std > 0:
            h = h + self.noise_std * noise_like(h)
        return h

    def encode_sharp(self, s: torch.Tensor) -> torch.Tensor:
        return self._finish(self.sharp(s), self.shared)

    def encode_blurred(self, b: torch.Tensor) -> torch.Tensor:
        return self._finish(self.blurred(b), self.blurred_last)

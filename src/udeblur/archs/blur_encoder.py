"""Blur encoder E^b: a small VAE-style encoder of the blur (mu, logvar)."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import DownResBlock
from .noise import noise_like


class BlurEncoder(nn.Module):
    """4x4 stride-2 conv, residual down-blocks (64->128->192->256 at width 64), global pool, mu/logvar heads.

    Global pooling makes the code independent of image size: one blur code per image.
    """

    def __init__(self, channels: int = 3, width: int = 64, latent: int = 8, blocks: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(channels, width, 4, 2, 0)]
        ch = width
        for n in range(1, blocks + 1):
            out = width * min(4, n + 1)
            layers.append(DownResBlock(ch, out))
            ch = out
        layers += [nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.fc_mu = nn.Linear(ch, latent)
        self.fc_logvar = nn.Linear(ch, latent)
        self.latent = latent
        self.blocks = blocks

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.fc_mu(h), self.fc_logvar(h)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I)."""
    return mu + torch.exp(0.5 * logvar) * noise_like(mu)

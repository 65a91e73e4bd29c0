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

    def __init__(self, channels: int = 3, width: int = 64, latent: int = 8, blocks: int = 3, kernel_size: int = 0):
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
        # optional explicit blur kernel (non-negative, sums to 1), for the re-blur consistency loss
        self.kernel_size = kernel_size
        self.fc_kernel = nn.Linear(ch, kernel_size * kernel_size) if kernel_size else None
        self.reset_kernel_head()

    def reset_kernel_head(self) -> None:
        """Start the kernel head at (nearly) a delta: with a global-skip generator, k * s_b = b holds at step 0."""
        if self.fc_kernel is None:
            return
        nn.init.zeros_(self.fc_kernel.weight)
        bias = torch.zeros(self.kernel_size, self.kernel_size)
        bias[self.kernel_size // 2, self.kernel_size // 2] = 8.0
        with torch.no_grad():
            self.fc_kernel.bias.copy_(bias.flatten())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def forward_with_kernel(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mu, logvar, kernel N x K x K) — needs ``kernel_size > 0``."""
        if self.fc_kernel is None:
            raise ValueError("this blur encoder has no kernel head (model.kernel_size = 0)")
        h = self.features(x)
        logits = self.fc_kernel(h).float()
        k = torch.softmax(logits, dim=1).view(-1, self.kernel_size, self.kernel_size)
        return self.fc_mu(h), self.fc_logvar(h), k


def apply_kernel(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Blur each image of N x C x H x W with its own K x K kernel (N x K x K), 'same' size, reflected borders.

    A true convolution, computed with FFTs in float32: a 31 x 31 kernel costs ~1,000 multiply-adds a pixel as a
    direct convolution (and far more in its backward pass), a few dozen through the FFT. The padded image is
    transformed at its own size; the circular wrap-around only reaches the border that is cropped away.
    """
    n, c, h, w = x.shape
    k = kernel.shape[-1]
    if k % 2 == 0 or kernel.shape[-2] != k:
        raise ValueError(f"apply_kernel: kernels must be square with an odd side, got {tuple(kernel.shape[-2:])}")
    pad = k // 2
    mode = "reflect" if min(h, w) > pad else "replicate"
    xp = torch.nn.functional.pad(x.float().reshape(1, n * c, h, w), (pad, pad, pad, pad), mode=mode).view(
        n, c, h + 2 * pad, w + 2 * pad
    )
    size = xp.shape[-2:]
    with torch.autocast(x.device.type, enabled=False):
        spectrum = torch.fft.rfft2(xp, s=size) * torch.fft.rfft2(kernel.float(), s=size)[:, None]
        out = torch.fft.irfft2(spectrum, s=size)[..., 2 * pad :, 2 * pad :]
    return out.to(x.dtype).contiguous()


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I)."""
    return mu + torch.exp(0.5 * logvar) * noise_like(mu)

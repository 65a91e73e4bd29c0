"""An efficient content encoder / generator pair for the disentangled model: NAFNet-style blocks in a U-Net.

Chen et al., "Simple Baselines for Image Restoration" (ECCV 2022) showed that a U-Net of small blocks (channel
LayerNorm, 1x1 and depthwise 3x3 convs, a multiplicative "simple gate" instead of activations) restores images as
well as much larger networks, at a fraction of the FLOPs. Here it takes the place of DRIT's encoder/generator:

* E^c (per domain): a 3x3 intro conv, then ``levels`` stages of NAF blocks, each followed by a 2x2 stride-2 conv
  that doubles the width. Its content code is the list of every stage's features plus the bottleneck (the
  U-Net's skips), so the code keeps the exact positions of strokes that a 4x-downsampled code loses.
* The shared last layer of E_S^c / E_B^c and the shared first layer of G_S / G_B are NAF blocks on the
  bottleneck, and the content noise of the paper goes on the bottleneck only. So the paper's constraints (a shared
  layer, noise) bind only the 1/8-scale path: the skips, at full resolution too, can carry blur as well as content.
  The bottleneck is not normalised, so at initialisation the unit noise dominates it and the encoder learns to
  scale its features up.
* G (per domain): the blur code z modulates the features (FiLM: ``h * (1 + a(z)) + b(z)``) at the bottleneck
  and after each upsampling stage (1x1 conv + pixel shuffle, plus the encoder's skip), then a 3x3 conv to the
  image. With ``global_skip`` it predicts a correction to its source image, as the DRIT generator does.

Unlike NAFNet there is no channel attention: its global average pool would make a tile's output depend on the
tile, and the blur code already gives every pixel the image-wide context. So every layer is local and tiled
deblurring equals a whole-image pass away from tile borders. Inputs must be multiples of ``2**levels``;
``DeblurNet`` pads them.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import output_image
from .noise import noise_like


class ChannelNorm(nn.Module):
    """LayerNorm over channels at each pixel (NAFNet's LayerNorm2d), written out so ONNX export is plain."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        return (x - mu) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class NAFBlock(nn.Module):
    """Norm -> 1x1 -> depthwise 3x3 -> gate -> 1x1, then norm -> 1x1 -> gate -> 1x1; both residual.

    The residual scales (beta, gamma) start at zero, so a fresh block is the identity.
    """

    def __init__(self, channels: int):
        super().__init__()
        c = channels
        self.norm1 = ChannelNorm(c)
        self.expand = nn.Conv2d(c, 2 * c, 1)
        self.depthwise = nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c)
        self.project = nn.Conv2d(c, c, 1)
        self.norm2 = ChannelNorm(c)
        self.ffn_expand = nn.Conv2d(c, 2 * c, 1)
        self.ffn_project = nn.Conv2d(c, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    @staticmethod
    def _gate(x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self._gate(self.depthwise(self.expand(self.norm1(x)))))
        x = x + y * self.beta
        y = self.ffn_project(self._gate(self.ffn_expand(self.norm2(x))))
        return x + y * self.gamma


def _blocks(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*[NAFBlock(channels) for _ in range(count)])


class OnBottleneck(nn.Module):
    """Apply blocks to the last element of a content code (the bottleneck), leaving the skips as they are."""

    def __init__(self, channels: int, count: int = 1):
        super().__init__()
        self.blocks = _blocks(channels, count)

    def forward(self, code: list[torch.Tensor]) -> list[torch.Tensor]:
        return [*code[:-1], self.blocks(code[-1])]


class NAFEncoder(nn.Module):
    """One domain's private content encoder: intro conv, then ``levels`` x [NAF blocks, stride-2 conv]."""

    def __init__(self, channels: int = 3, width: int = 16, levels: int = 3, blocks: int = 1):
        super().__init__()
        self.intro = nn.Conv2d(channels, width, 3, padding=1)
        widths = [width * 2**i for i in range(levels)]
        self.stages = nn.ModuleList([_blocks(c, blocks) for c in widths])
        self.downs = nn.ModuleList([nn.Conv2d(c, 2 * c, 2, 2) for c in widths])
        self.out_channels = width * 2**levels
        self.size_multiple = 2**levels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.intro(x)
        code = []
        for stage, down in zip(self.stages, self.downs, strict=True):
            h = stage(h)
            code.append(h)
            h = down(h)
        return [*code, h]


class NAFContentEncoders(nn.Module):
    """E_S^c and E_B^c with ONE shared bottleneck block (the paper's shared last layer); same API as DRIT's."""

    def __init__(self, channels: int = 3, width: int = 16, levels: int = 3, blocks: int = 1,
                 noise_std: float = 1.0, share: bool = True):
        super().__init__()
        self.sharp = NAFEncoder(channels, width, levels, blocks)
        self.blurred = NAFEncoder(channels, width, levels, blocks)
        self.out_channels = self.sharp.out_channels
        self.shared = OnBottleneck(self.out_channels)
        self.blurred_last = self.shared if share else OnBottleneck(self.out_channels)
        self.noise_std = noise_std

    def _finish(self, code: list[torch.Tensor], last: nn.Module) -> list[torch.Tensor]:
        code = last(code)
        if self.training and self.noise_std > 0:
            code[-1] = code[-1] + self.noise_std * noise_like(code[-1])
        return code

    def encode_sharp(self, s: torch.Tensor) -> list[torch.Tensor]:
        return self._finish(self.sharp(s), self.shared)

    def encode_blurred(self, b: torch.Tensor) -> list[torch.Tensor]:
        return self._finish(self.blurred(b), self.blurred_last)

    def reset_parameters(self) -> None:
        """PyTorch's default conv init (NAFNet's) in place of the model-wide N(0, 0.02)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                m.reset_parameters()


class FiLM(nn.Module):
    """Feature-wise modulation by the blur code; zero-initialised, so it starts as the identity."""

    def __init__(self, latent: int, channels: int):
        super().__init__()
        self.linear = nn.Linear(latent, 2 * channels)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        scale, shift = self.linear(z).to(h.dtype)[:, :, None, None].chunk(2, dim=1)
        return h * (1 + scale) + shift


class NAFGeneratorBranch(nn.Module):
    """One domain's decoder: FiLM(z) at the bottleneck, then per level [upsample + skip, FiLM(z), NAF blocks]."""

    def __init__(self, channels: int = 3, width: int = 16, levels: int = 3, latent: int = 8, blocks: int = 1,
                 global_skip: bool = True):
        super().__init__()
        self.latent = latent
        self.global_skip = global_skip
        widths = [width * 2**i for i in reversed(range(levels))]  # decoder widths, deepest first
        self.film_bottleneck = FiLM(latent, 2 * widths[0])
        self.ups = nn.ModuleList([nn.Sequential(nn.Conv2d(2 * c, 4 * c, 1), nn.PixelShuffle(2)) for c in widths])
        self.films = nn.ModuleList([FiLM(latent, c) for c in widths])
        self.stages = nn.ModuleList([_blocks(c, blocks) for c in widths])
        self.to_image = nn.Conv2d(width, channels, 3, padding=1)

    def forward(self, code: list[torch.Tensor], z: torch.Tensor, src: torch.Tensor | None = None) -> torch.Tensor:
        *skips, h = code
        h = self.film_bottleneck(h, z)
        for up, film, stage, skip in zip(self.ups, self.films, self.stages, reversed(skips), strict=True):
            h = stage(film(up(h) + skip, z))
        out = self.to_image(h)
        return output_image(out, src, self.global_skip)


class NAFGenerators(nn.Module):
    """G_S and G_B: one shared bottleneck block, then a decoder per domain. Same API as DRIT's ``Generators``."""

    def __init__(self, channels: int = 3, width: int = 16, levels: int = 3, latent: int = 8, blocks: int = 1,
                 global_skip: bool = True):
        super().__init__()
        self.shared = OnBottleneck(width * 2**levels)
        self.sharp = NAFGeneratorBranch(channels, width, levels, latent, blocks, global_skip)
        self.blurred = NAFGeneratorBranch(channels, width, levels, latent, blocks, global_skip)

    def to_sharp(self, c: list[torch.Tensor], z: torch.Tensor, src: torch.Tensor | None = None) -> torch.Tensor:
        return self.sharp(self.shared(c), z, src)

    def to_blurred(self, c: list[torch.Tensor], z: torch.Tensor, src: torch.Tensor | None = None) -> torch.Tensor:
        return self.blurred(self.shared(c), z, src)

    def reset_parameters(self) -> None:
        """PyTorch's default conv init (NAFNet's), FiLM at zero and, with the global skip, a zero output conv,
        so the generator starts as the identity whatever init ran before."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                m.reset_parameters()
            elif isinstance(m, FiLM):
                nn.init.zeros_(m.linear.weight)
                nn.init.zeros_(m.linear.bias)
        for branch in (self.sharp, self.blurred):
            if branch.global_skip:
                nn.init.zeros_(branch.to_image.weight)
                nn.init.zeros_(branch.to_image.bias)

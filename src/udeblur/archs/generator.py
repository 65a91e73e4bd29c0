"""Generators G_S and G_B: one shared residual block, then a branch per domain conditioned on the blur code."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import LayerNorm2d, ResBlock, output_image, tile_code


class GeneratorBranch(nn.Module):
    """Residual blocks on [content, z], then two upsampling stages and a 1x1 conv, z re-attached before each.

    This is DRIT's G_concat branch: the blur code is tiled over the feature map and concatenated at the input of
    the residual stage and of every upsampling layer.
    """

    def __init__(
        self,
        content_ch: int,
        latent: int,
        channels: int = 3,
        res_blocks: int = 3,
        global_skip: bool = False,
    ):
        super().__init__()
        self.latent = latent
        self.global_skip = global_skip
        ch = content_ch + latent
        self.res = nn.Sequential(*[ResBlock(ch) for _ in range(res_blocks)])
        ups = []
        for _ in range(2):
            ch = ch + latent
            ups.append(
                nn.Sequential(
                    nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1),
                    LayerNorm2d(ch // 2),
                    nn.ReLU(),
                )
            )
            ch = ch // 2
        self.ups = nn.ModuleList(ups)
        self.to_image = nn.Conv2d(ch + latent, channels, 1)

    def forward(self, c: torch.Tensor, z: torch.Tensor, src: torch.Tensor | None = None) -> torch.Tensor:
        h = self.res(torch.cat([c, tile_code(z, c)], 1))
        for up in self.ups:
            h = up(torch.cat([h, tile_code(z, h)], 1))
        out = self.to_image(torch.cat([h, tile_code(z, h)], 1))
        return output_image(out, src, self.global_skip)


class Generators(nn.Module):
    """G_S (to sharp) and G_B (to blurred). Both take the blur code z_b (method.md)."""

    def __init__(
        self,
        content_ch: int,
        latent: int = 8,
        channels: int = 3,
        res_blocks: int = 3,
        global_skip: bool = False,
    ):
        super().__init__()
        self.shared = ResBlock(content_ch)
        self.sharp = GeneratorBranch(content_ch, latent, channels, res_blocks, global_skip)
        self.blurred = GeneratorBranch(content_ch, latent, channels, res_blocks, global_skip)

    def reset_parameters(self) -> None:
        """After the model-wide N(0, std) init, with the global skip: a zero output conv (each branch starts as the
        identity)."""
        for branch in (self.sharp, self.blurred):
            if branch.global_skip:
                nn.init.zeros_(branch.to_image.weight)
                nn.init.zeros_(branch.to_image.bias)

    def to_sharp(self, c: torch.Tensor, z: torch.Tensor, src: torch.Tensor | None = None) -> torch.Tensor:
        """G_S. ``src`` is the image whose content ``c`` is (used only with the global skip)."""
        return self.sharp(self.shared(c), z, src)

    def to_blurred(self, c: torch.Tensor, z: torch.Tensor, src: torch.Tensor | None = None) -> torch.Tensor:
        """G_B. ``src`` as in :meth:`to_sharp`."""
        return self.blurred(self.shared(c), z, src)

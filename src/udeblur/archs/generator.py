"""Generators G_S and G_B: one shared residual block, then a branch per domain conditioned on the blur code."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import LayerNorm2d, ResBlock, conv_block, output_image, tile_code


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
        source_skips: bool = False,
    ):
        super().__init__()
        self.latent = latent
        self.global_skip = global_skip
        ch = content_ch + latent
        self.res = nn.Sequential(*[ResBlock(ch) for _ in range(res_blocks)])
        full_ch = (content_ch + latent) // 4  # about the last upsampling stage's width
        # U-Net-style skips from the source image (beyond the paper): features of src at 1/2 and full resolution
        # join the last upsampling stage and a 3x3 fusion conv, so the correction sees the source's exact strokes,
        # not only the 4x-downsampled content code. The stems belong to the generator (no encoder API change).
        self.stem_full = conv_block(channels, full_ch, 3, 1, 1, act=nn.ReLU()) if source_skips else None
        self.stem_half = conv_block(full_ch, 2 * full_ch, 3, 2, 1, act=nn.ReLU()) if source_skips else None
        ups = []
        for i in range(2):
            ch = ch + latent
            extra = 2 * full_ch if source_skips and i == 1 else 0
            ups.append(
                nn.Sequential(
                    nn.ConvTranspose2d(ch + extra, ch // 2, 3, 2, 1, output_padding=1),
                    LayerNorm2d(ch // 2),
                    nn.ReLU(),
                )
            )
            ch = ch // 2
        self.ups = nn.ModuleList(ups)
        self.fuse = conv_block(ch + full_ch, ch, 3, 1, 1, act=nn.ReLU()) if source_skips else None
        self.to_image = nn.Conv2d(ch + latent, channels, 1)

    def reset_source_stems(self) -> None:
        """He init for the skip stems and fusion conv: at N(0, 0.02) their features would start ~10x too small."""
        for block in (self.stem_full, self.stem_half, self.fuse):
            if block is not None:
                for m in block.modules():
                    if isinstance(m, nn.Conv2d):
                        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                        nn.init.zeros_(m.bias)

    def forward(self, c: torch.Tensor, z: torch.Tensor, src: torch.Tensor | None = None) -> torch.Tensor:
        h = self.res(torch.cat([c, tile_code(z, c)], 1))
        full = half = None
        if self.stem_full is not None:
            if src is None:
                raise ValueError("a generator with source skips needs the source image (src)")
            full = self.stem_full(src)
            half = self.stem_half(full)
        for i, up in enumerate(self.ups):
            parts = [h, tile_code(z, h)] + ([half] if i == 1 and half is not None else [])
            h = up(torch.cat(parts, 1))
        if full is not None:
            h = self.fuse(torch.cat([h, full], 1))
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
        source_skips: bool = False,
    ):
        super().__init__()
        self.shared = ResBlock(content_ch)
        self.sharp = GeneratorBranch(content_ch, latent, channels, res_blocks, global_skip, source_skips)
        self.blurred = GeneratorBranch(content_ch, latent, channels, res_blocks, global_skip, source_skips)

    def reset_parameters(self) -> None:
        """After the model-wide N(0, std) init: He init for the source stems and, with the global skip, a zero
        output conv (each branch starts as the identity)."""
        for branch in (self.sharp, self.blurred):
            branch.reset_source_stems()
            if branch.global_skip:
                nn.init.zeros_(branch.to_image.weight)
                nn.init.zeros_(branch.to_image.bias)

    def to_sharp(self, c: torch.Tensor, z: torch.Tensor, src: torch.Tensor | None = None) -> torch.Tensor:
        """G_S. ``src`` is the image whose content ``c`` is (used only with the global skip)."""
        return self.sharp(self.shared(c), z, src)

    def to_blurred(self, c: torch.Tensor, z: torch.Tensor, src: torch.Tensor | None = None) -> torch.Tensor:
        """G_B. ``src`` as in :meth:`to_sharp`."""
        return self.blurred(self.shared(c), z, src)

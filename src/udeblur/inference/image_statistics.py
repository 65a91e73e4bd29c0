"""Whole-image normalisation statistics for tiled deblurring (``Deblurrer(norm="image")``).

InstanceNorm (content encoder) and LayerNorm (generator) compute statistics over whatever they are given, so
tiles normalised by their own statistics differ slightly from a whole-image pass (``norm="tile"``, the default;
see :mod:`udeblur.inference.tiling`). ``norm="image"`` first runs the tiles layer by layer to gather the whole
image's statistics for every normalisation layer, then normalises every tile with them: about (number of norm
layers / 2 + 1) times the work (~11x for the paper's model). The result equals a whole-image pass up to
tile-border effects: mean |difference| 0.002 / 0.0002 / <1e-5 with 64- / 128- / 256-px tiles on a 256x512 mosaic
of text crops (a briefly trained ``tiny`` model).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..archs.blocks import LayerNorm2d

__all__ = ["ImageStatistics", "StopForward"]


class StopForward(Exception):
    """Raised by a hook to end a forward pass once the layer being calibrated has been seen."""


class ImageStatistics:
    """Let tiles normalise with the statistics of the whole image instead of their own (``norm="image"``).

    Forward hooks on every InstanceNorm2d / LayerNorm2d. Calibration goes layer by layer in execution order: in
    stage k a tiled pass runs up to layer k (then stops), with layers before k normalising by their already
    known image statistics, and layer k's input is summed (x, x^2 in float64) over the part of each tile that
    the tile owns: the owned parts partition the padded image, so every position counts once, and tile borders,
    which see padding rather than neighbours, are left out. Stage k's statistics are then those of a
    whole-image pass up to the border effects. Layer by layer is what makes it exact: calibrating all layers at
    once from one pass mixes statistics of differently normalised inputs, and repeating such passes does not
    converge (it got worse with each pass on test networks). Afterwards every hook replaces its layer's output
    by the input normalised with the image statistics (and the LayerNorm's affine).
    """

    def __init__(self, net: nn.Module):
        self.layers = [m for m in net.modules() if isinstance(m, (nn.InstanceNorm2d, LayerNorm2d))]
        self.stats: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}
        self.target: nn.Module | None = None  # the layer being calibrated
        self.order: list[nn.Module] | None = None  # when set, hooks only record the call order
        self.regions: list[tuple[int, int, int, int]] = []  # owned (y0, y1, x0, x1) per batch item, tile px
        self.tile_size = (1, 1)
        self._sums: list = []
        self._handles: list = []

    def __enter__(self) -> ImageStatistics:
        self._handles = [m.register_forward_hook(self._hook) for m in self.layers]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def execution_order(self, run: Callable[[], object]) -> list[nn.Module]:
        self.order = []
        try:
            run()
        finally:
            order, self.order = self.order, None
        if len(set(order)) != len(order):
            raise RuntimeError("a normalisation layer runs twice in one forward pass; use norm='tile'")
        return order

    def calibrate(self, layer: nn.Module, run_tiles: Callable[[], None]) -> None:
        """Gather ``layer``'s image statistics; ``run_tiles`` runs every tile (setting ``regions``)."""
        self.target, self._sums = layer, [0.0, 0.0, 0]
        try:
            run_tiles()
        finally:
            self.target = None
        s, s2, n = self._sums
        mean = s / n
        var = (s2 / n - mean * mean).clamp_min(0.0)  # biased, as the layers use; float64 against cancellation
        self.stats[layer] = (mean.float(), var.float())

    def _hook(self, layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor | None:
        x = inputs[0]
        if self.order is not None:
            self.order.append(layer)
            return None
        if layer is self.target:
            sy, sx = self.tile_size[0] // x.shape[2], self.tile_size[1] // x.shape[3]  # 1, 2 or 4
            dims = (1, 2) if isinstance(layer, nn.InstanceNorm2d) else (0, 1, 2)  # per channel / per sample
            for i, (y0, y1, x0, x1) in enumerate(self.regions):
                v = x[i, :, y0 // sy : y1 // sy, x0 // sx : x1 // sx].double()
                self._sums[0] = self._sums[0] + v.sum(dims)
                self._sums[1] = self._sums[1] + (v * v).sum(dims)
                self._sums[2] += v[0].numel() if len(dims) == 2 else v.numel()
            raise StopForward
        if layer not in self.stats:
            return None
        mean, var = self.stats[layer]
        if isinstance(layer, nn.InstanceNorm2d):
            y = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + layer.eps)
            return y * layer.weight[:, None, None] + layer.bias[:, None, None] if layer.affine else y
        return (x - mean) / torch.sqrt(var + layer.eps) * layer.weight + layer.bias

"""Perceptual loss on the fixed, scaled VGG features of `udeblur.archs.vgg`.

The feature-distance METRIC on the same features is :mod:`udeblur.metrics.feature_distance`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..archs.vgg import VGGFeatures

__all__ = ["perceptual_loss"]


def perceptual_loss(net: VGGFeatures, x: torch.Tensor, y: torch.Tensor, layer: str = "conv3_3") -> torch.Tensor:
    """Mean squared error between the scaled ``layer`` features of ``x`` and ``y`` (a scalar).

    In training ``x`` is the deblurred image s_b (gradients flow back to it) and ``y`` its own blurred input
    b, a fixed target: its features are computed without a graph, which also saves the memory of a second
    backward graph. Features are divided by the layer's RMS activation, so the value is O(1) (0 for x == y).
    Computed in float32 even under autocast: squared errors of half-precision features lose digits.
    """
    net.check_pair(x, y, layer)
    fx = net(x)[layer]
    with torch.no_grad():
        fy = net(y)[layer]
    return F.mse_loss(fx.float(), fy.float())

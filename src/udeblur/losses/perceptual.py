"""Perceptual loss and feature distance on the fixed, scaled VGG features of `udeblur.archs.vgg`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..archs.vgg import VGGFeatures

__all__ = ["feature_distance", "perceptual_loss"]


def _check(net: VGGFeatures, x: torch.Tensor, y: torch.Tensor, layer: str) -> None:
    if layer not in net.layers:
        raise ValueError(f"layer {layer!r} not computed by this network (it has {list(net.layers)})")
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")


def perceptual_loss(net: VGGFeatures, x: torch.Tensor, y: torch.Tensor, layer: str = "conv3_3") -> torch.Tensor:
    """Mean squared error between the scaled ``layer`` features of ``x`` and ``y`` (a scalar).

    In training ``x`` is the deblurred image s_b (gradients flow back to it) and ``y`` its own blurred input
    b, a fixed target: its features are computed without a graph, which also saves the memory of a second
    backward graph. Features are divided by the layer's RMS activation, so the value is O(1) (0 for x == y).
    Computed in float32 even under autocast: squared errors of half-precision features lose digits.
    """
    _check(net, x, y, layer)
    fx = net(x)[layer]
    with torch.no_grad():
        fy = net(y)[layer]
    return F.mse_loss(fx.float(), fy.float())


@torch.no_grad()
def feature_distance(net: VGGFeatures, x: torch.Tensor, y: torch.Tensor, layer: str = "pool5") -> torch.Tensor:
    """Per-image L2 distance between the scaled ``layer`` features of ``x`` and ``y`` (shape N, no grad).

    The paper's feature-distance metric (deblurred vs sharp, pool5). The value grows with image size (a sum
    over positions) and is in units of the scaled features: compare numbers from the same network/size only.
    """
    _check(net, x, y, layer)
    diff = net(x)[layer].float() - net(y)[layer].float()
    return torch.linalg.vector_norm(diff.flatten(1), dim=1)

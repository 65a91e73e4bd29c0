"""The paper's feature-distance metric: L2 distance of the scaled VGG features of `udeblur.archs.vgg`.

The perceptual LOSS on the same features is :mod:`udeblur.losses.perceptual`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..archs.vgg import VGGFeatures

__all__ = ["MIN_SIDE", "feature_distance", "image_feature_distance"]

# pool5 is 1/32 of the input: smaller images have no pool5 feature at all
MIN_SIDE = 32


@torch.no_grad()
def feature_distance(net: VGGFeatures, x: torch.Tensor, y: torch.Tensor, layer: str = "pool5") -> torch.Tensor:
    """Per-image L2 distance between the scaled ``layer`` features of ``x`` and ``y`` (shape N, no grad).

    The paper's feature-distance metric (deblurred vs sharp, pool5). The value grows with image size (a sum
    over positions) and is in units of the scaled features: compare numbers from the same network/size only.
    """
    net.check_pair(x, y, layer)
    diff = net(x)[layer].float() - net(y)[layer].float()
    return torch.linalg.vector_norm(diff.flatten(1), dim=1)


def image_feature_distance(net: VGGFeatures, a: np.ndarray, b: np.ndarray, layer: str = "pool5") -> float:
    """``feature_distance`` of two H x W x C float images in [0, 1]; NaN for images under ``MIN_SIDE`` px."""
    if min(a.shape[:2]) < MIN_SIDE:
        return float("nan")
    return float(feature_distance(net, _to_tensor(a), _to_tensor(b), layer)[0])


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None] * 2.0 - 1.0

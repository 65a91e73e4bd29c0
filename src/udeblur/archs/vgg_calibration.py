"""The constants that scale VGG features to O(1), and how they are measured.

Features are divided by fixed per-network, per-layer constants (the RMS activation on real photographs) so
that the squared feature error between a sharp and a blurred image is O(1) instead of ~1e6.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .vgg_weights import VGGWeightsError

__all__ = ["FEATURE_SCALES", "feature_scales", "measure_feature_rms", "prepare_image", "reference_image"]

# RMS activation (after ReLU) per layer, by which features are divided so that the mean squared scaled
# activation of a natural image is ~1. Measured with `measure_feature_rms` on real photographs: scikit-image's
# astronaut, coffee and chelsea and matplotlib's grace_hopper.jpg, each resized (PIL bicubic) so its shorter
# side is 144 px (the training load size), RGB in [-1, 1], full image; per layer the square root of the mean,
# over the 4 images, of each image's mean squared activation (all channels and positions). Single images lie
# within 0.55-1.25x of these; at native resolution (512-600 px) activations are ~0.6-0.9x. With them the
# conv3_3 MSE between a 128 px crop and its Gaussian blur (sigma 1-3 px) is 0.07-0.9 (raw: 3e4-4e5).
# VGG-19: torchvision's weights could not be downloaded where these were measured, so for "vgg19" the same
# measurement is made once at load time on grace_hopper.jpg (bundled with matplotlib); see `feature_scales`.
FEATURE_SCALES: dict[str, dict[str, float]] = {
    "vgg16": {
        "conv1_1": 56.67,
        "conv1_2": 259.8,
        "pool1": 308.3,
        "conv2_1": 384.9,
        "conv2_2": 574.2,
        "pool2": 815.3,
        "conv3_1": 705.4,
        "conv3_2": 726.6,
        "conv3_3": 657.9,
        "pool3": 960.6,
        "conv4_1": 506.8,
        "conv4_2": 315.4,
        "conv4_3": 127.7,
        "pool4": 198.2,
        "conv5_1": 100.4,
        "conv5_2": 48.02,
        "conv5_3": 10.34,
        "pool5": 15.3,
    },
}


def reference_image() -> torch.Tensor:
    """matplotlib's bundled grace_hopper.jpg, shorter side 144 px, as 1x3xHxW in [-1, 1]."""
    import matplotlib
    from PIL import Image

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        raise VGGWeightsError(f"{path}: calibration image missing from matplotlib's sample data")
    with Image.open(path) as im:
        return prepare_image(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)


def prepare_image(img: np.ndarray, short_side: int = 144) -> torch.Tensor:
    """HxWx3 float [0, 1] -> 1x3xhxw in [-1, 1], resized (PIL bicubic) so the shorter side is ``short_side``."""
    from PIL import Image

    h, w = img.shape[:2]
    s = short_side / min(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    u8 = Image.fromarray(np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8))
    arr = np.asarray(u8.resize(size, Image.Resampling.BICUBIC), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0) * 2.0 - 1.0


@torch.no_grad()
def measure_feature_rms(net: nn.Module, images: Sequence[torch.Tensor]) -> dict[str, float]:
    """RMS of the UNSCALED features of each layer of ``net`` (a ``VGGFeatures``): sqrt(mean over images of
    mean(f**2)).

    This is how `FEATURE_SCALES` were measured (images: 1x3xHxW in [-1, 1]).
    """
    sums = dict.fromkeys(net.layers, 0.0)
    for img in images:
        feats = net(img.to(net.mean.device))
        for k, f in feats.items():
            sums[k] += float((f.double() * net.scales[k]).pow(2).mean())
    return {k: (v / len(images)) ** 0.5 for k, v in sums.items()}


def feature_scales(net: nn.Module) -> dict[str, float]:
    """The scales of a ``VGGFeatures``' layers: the measured table for vgg16; for vgg19 (no measured table) the
    same measurement on grace_hopper."""
    table = FEATURE_SCALES.get(net.arch, {})
    if all(layer in table for layer in net.layers):
        return {layer: table[layer] for layer in net.layers}
    rms = measure_feature_rms(net, [reference_image()])
    for layer, v in rms.items():
        if not v > 0:  # all-dead layer: such weights cannot be ImageNet's
            raise VGGWeightsError(f"{net.arch} {layer}: zero activation on the calibration image; bad weights?")
    return rms

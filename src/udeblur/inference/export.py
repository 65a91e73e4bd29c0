"""Export the deblurring path (DeblurNet: E_B^c, shared block, E^b, G_S) to ONNX with dynamic batch/height/width.

    from udeblur.inference.export import export_onnx
    export_onnx("runs/x/deblur.safetensors", "deblur.onnx")

The ONNX graph maps ``blurred`` (N x C x H x W, float32, values in [-1, 1]) to ``sharp`` (same shape), with
z_b = mu (deterministic, as in ``Deblurrer``). Like the PyTorch network it needs H and W to be MULTIPLES OF 4 and
at least ``DeblurNet.min_size`` (16 px for the paper's model): the caller pads (reflect, bottom/right) and crops
back, as ``udeblur.inference.Deblurrer`` does. The file's metadata records both numbers (``size_multiple``,
``min_size``) and the model config.

Export notes (why the graph is built from a copy of the network):

* TorchScript-based exporter (``dynamo=False``): the dynamo exporter needs ``onnxscript``, which is not a
  dependency. Opset 17 (>= 17 also has LayerNormalization, but see the next point).
* ``LayerNorm2d`` normalises over (C, H, W), a shape that changes with the input; ``F.layer_norm`` wants that
  shape as constants, so a dynamic-size export fails. The copy replaces it by the same arithmetic written with
  reductions (mean and biased variance over dims 1-3), which export with dynamic sizes. Parameters are shared.
* ``aten::atanh`` (``model.global_skip``) is mapped to ONNX ``Atanh`` (the exporter lacks that mapping).
* Reflection padding exports as ``Pad(mode="reflect")`` and InstanceNorm (affine=False) as
  ``InstanceNormalization`` with unit scale; ``tests/test_export.py`` checks onnxruntime against PyTorch on
  several sizes.
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from ..archs.blocks import LayerNorm2d
from ..model import DeblurNet

ONNX_OPSET = 17
INPUT_NAME = "blurred"
OUTPUT_NAME = "sharp"


class _ReducedLayerNorm2d(nn.Module):
    """``LayerNorm2d`` with explicit reductions: identical maths, exportable with dynamic H and W."""

    def __init__(self, ln: LayerNorm2d):
        super().__init__()
        self.weight = ln.weight
        self.bias = ln.bias
        self.eps = float(ln.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        centred = x - mean
        var = centred.pow(2).mean(dim=(1, 2, 3), keepdim=True)  # biased, as F.layer_norm
        return centred * torch.rsqrt(var + self.eps) * self.weight + self.bias


def _register_symbolics() -> None:
    """ONNX has had ``Atanh`` since opset 9, but the TorchScript exporter has no mapping for ``aten::atanh``
    (used by the generators' ``global_skip`` option); map it directly."""
    torch.onnx.register_custom_op_symbolic("aten::atanh", lambda g, x: g.op("Atanh", x), 9)


def exportable(net: DeblurNet) -> DeblurNet:
    """A copy of ``net`` (eval mode, float32, CPU) whose layers all export with dynamic spatial sizes."""
    net = copy.deepcopy(net).to("cpu", torch.float32).eval()
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LayerNorm2d):
                setattr(parent, name, _ReducedLayerNorm2d(child))
    return net


def export_onnx(model: str | os.PathLike | DeblurNet, out: str | os.PathLike, opset: int = ONNX_OPSET,
                example_size: tuple[int, int] = (64, 64), expected_sha256: str | None = None) -> Path:
    """Write the deblurring path of ``model`` (a DeblurNet, an exported ``.safetensors`` or a training ``.pt``)
    to ``out`` as ONNX with dynamic batch, height and width. Returns the path.

    A model file is checked against ``expected_sha256`` (or its ``.sha256`` sidecar) as every load is
    (``udeblur.model_files.load_deblur_net``: CheckpointError on a mismatch).

    ``example_size`` only shapes the trace (rounded up to the size multiple, >= the minimum size); the graph is
    size-free.
    """
    if opset < 17:
        raise ValueError(f"opset {opset}: need >= 17")
    model_cfg = None
    if isinstance(model, DeblurNet):
        net = model
    else:
        from ..model_files import load_deblur_net

        net, model_cfg = load_deblur_net(model, expected_sha256=expected_sha256)
    net = exportable(net)
    h, w = (max(s, net.min_size) for s in example_size)
    h, w = -(-h // net.size_multiple) * net.size_multiple, -(-w // net.size_multiple) * net.size_multiple
    channels = model_channels(net)
    example = torch.zeros(1, channels, h, w).uniform_(-1, 1, generator=torch.Generator().manual_seed(0))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    axes = {0: "batch", 2: "height", 3: "width"}
    tmp = out.with_name(out.name + ".partial")
    try:
        export_graph(net, (example,), tmp, {INPUT_NAME: axes}, {OUTPUT_NAME: axes}, opset)
        _add_metadata(tmp, net, model_cfg)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def export_graph(module: nn.Module, example: tuple[torch.Tensor, ...], out: str | os.PathLike | io.BytesIO,
                 inputs: dict[str, dict[int, str]], outputs: dict[str, dict[int, str]],
                 opset: int = ONNX_OPSET) -> None:
    """``torch.onnx.export`` of an exportable module (see ``exportable``) with named inputs/outputs and their
    dynamic axes, without the exporter's notices that do not apply here. Needs no ``onnx`` package."""
    _register_symbolics()
    with warnings.catch_warnings():
        # the legacy exporter is the supported path here (no onnxscript); its deprecation notice is noise
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # InstanceNorm without running statistics always normalises with the input's own statistics, in
        # eval mode too: the exporter's "train=True" notice describes the right behaviour
        warnings.filterwarnings("ignore", message=".*operator 'instance_norm' is set to train=True")
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        torch.onnx.export(
            module, example, out if isinstance(out, io.BytesIO) else str(out), dynamo=False, opset_version=opset,
            input_names=list(inputs), output_names=list(outputs), dynamic_axes={**inputs, **outputs},
            do_constant_folding=True,
        )


def model_channels(net: DeblurNet) -> int:
    """Image channels the network takes (its first convolution's input)."""
    first = next(m for m in net.content_blurred.modules() if isinstance(m, nn.Conv2d))
    return int(first.in_channels)


def _add_metadata(path: Path, net: DeblurNet, model_cfg) -> None:
    import onnx

    proto = onnx.load(str(path))
    meta = {
        "format": "udeblur-deblurnet-onnx/1",
        "input": f"{INPUT_NAME}: N x C x H x W float32 in [-1, 1]; H, W multiples of {net.size_multiple}, "
                 f">= {net.min_size} (pad by reflection, crop back)",
        "size_multiple": str(net.size_multiple),
        "min_size": str(net.min_size),
    }
    if model_cfg is not None:
        meta["model_config"] = json.dumps(asdict(model_cfg), sort_keys=True)
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(path))


__all__ = ["ONNX_OPSET", "export_graph", "export_onnx", "exportable"]

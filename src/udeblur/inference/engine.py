"""What runs the deblurring path for ``Deblurrer``: PyTorch, or onnxruntime on the exported graph.

Both engines offer the two calls the Deblurrer makes: ``blur_code(x)`` (E^b's mu of a padded image) and
``decode(x, z)`` (the sharp image of padded tiles given one blur code), on CPU tensors in [-1, 1].

``engine="auto"`` follows a documented rule rather than a start-up timing (a timing would need the export first,
seconds): onnxruntime where it is installed, the device is the CPU, the precision is fp32 (the graph is fp32)
and tiles normalise by their own statistics (``norm="tile"``; ``norm="image"`` hooks the PyTorch layers), and
the model came from a file (its SHA-256 keys the cached graph); PyTorch otherwise. Measured on an AVX2 EPYC, one
thread, ``paper`` network: onnxruntime takes 0.73-0.78x the time of PyTorch eager (``benchmarks/bench_defaults.py``
re-checks it on any CPU). Where bf16 is the measured precision, PyTorch's bf16 runs instead.

Outputs agree with PyTorch's to ``ONNX_TOLERANCE`` (max |difference| on the [-1, 1] scale, tested on the bundled
model and on tiled images in tests/test_engine.py): summation order differs, nothing else.

The graphs (two files: the blur code and the rest) are exported once per model file into
``udeblur.cache.cache_dir()/onnx/``, named by the file's SHA-256, written atomically, so concurrent
processes and later runs share them. An in-memory network (no file) is exported into memory each time.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_write
from ..model import DeblurNet
from .export import model_channels

ENGINES = ("auto", "torch", "onnx")
# max |onnxruntime - PyTorch| on the [-1, 1] output scale (1e-4: 1/80 of an 8-bit grey level; measured ~3e-6)
ONNX_TOLERANCE = 1e-4
# part of the cached file names: a change to what is exported must not pick up graphs of the old layout
GRAPH_VERSION = 1


def onnxruntime_available() -> bool:
    """Whether onnxruntime imports here (an optional dependency; blocked or missing means no)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def choose_engine(engine: str, device: torch.device, precision: str, norm: str, model_sha256: str | None) -> str:
    """The engine ``"auto"`` stands for (see the module doc); an explicit choice that cannot work is an error."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be auto, torch or onnx, got {engine!r}")
    if engine == "torch":
        return "torch"
    problem = None
    if device.type != "cpu":
        problem = f"runs on the CPU, not {device}"
    elif precision != "fp32":
        problem = f"runs the fp32 graph, not precision {precision} (use --precision fp32)"
    elif norm != "tile":
        problem = "needs norm='tile' (whole-image statistics hook the PyTorch layers)"
    elif not onnxruntime_available():
        problem = "needs onnxruntime (pip install onnxruntime)"
    if engine == "onnx":
        if problem:
            raise ValueError(f"engine onnx {problem}")
        return "onnx"
    return "torch" if problem or model_sha256 is None else "onnx"


class TorchEngine:
    """The PyTorch network itself."""

    name = "torch"

    def __init__(self, net: DeblurNet, device: torch.device):
        self.net, self.device = net, device

    def blur_code(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.blur_code(x.to(self.device))

    def decode(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(self.device), z)


class _Decode(nn.Module):
    def __init__(self, net: DeblurNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(x, z)


class _BlurCode(nn.Module):
    def __init__(self, net: DeblurNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.blur_code(x)


class OnnxEngine:
    """onnxruntime (CPU) on the exported graphs; sessions are made at the first call."""

    name = "onnx"

    def __init__(self, net: DeblurNet, model_sha256: str | None = None, threads: int | None = None):
        self.net = net
        self.model_sha256 = model_sha256
        self.threads = threads or torch.get_num_threads()  # the same thread budget as PyTorch would use
        self._sessions: dict[str, Any] = {}

    def graph_path(self, kind: str) -> Path | None:
        """Where the cached graph of this model lives (None for an in-memory network)."""
        if self.model_sha256 is None:
            return None
        from ..cache import cache_dir

        return cache_dir() / "onnx" / f"{self.model_sha256}.{kind}.g{GRAPH_VERSION}.onnx"

    def _session(self, kind: str) -> Any:
        if kind not in self._sessions:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3  # warnings about unused initialisers etc. are noise to a user
            source = self._graph(kind)
            self._sessions[kind] = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
        return self._sessions[kind]

    def _graph(self, kind: str) -> str | bytes:
        from .export import exportable

        path = self.graph_path(kind)
        if path is not None and path.is_file():
            return str(path)
        net = exportable(self.net)
        side = max(net.min_size, 32)
        side = -(-side // net.size_multiple) * net.size_multiple
        x = torch.zeros(1, model_channels(net), side, side).uniform_(-1, 1, generator=torch.Generator().manual_seed(0))
        axes = {0: "batch", 2: "height", 3: "width"}
        if kind == "decode":
            module, example = _Decode(net), (x, net.blur_code(x))
            inputs, outputs = {"blurred": axes, "z": {0: "batch"}}, {"sharp": axes}
        else:
            module, example = _BlurCode(net), (x,)
            inputs, outputs = {"blurred": axes}, {"z": {0: "batch"}}
        buf = io.BytesIO()
        from .export import export_graph

        with torch.no_grad():
            export_graph(module, example, buf, inputs, outputs)
        data = buf.getvalue()
        if path is None:
            return data
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))  # unique temp name: two may export at once
        return str(path)

    def blur_code(self, x: torch.Tensor) -> torch.Tensor:
        if self.net.blur is None:  # ablation without a blur encoder: z = 0, as DeblurNet.blur_code
            return torch.zeros(x.shape[0], self.net.gen_sharp.latent)
        (z,) = self._session("code").run(None, {"blurred": _numpy(x)})
        return torch.from_numpy(z)

    def decode(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        (y,) = self._session("decode").run(None, {"blurred": _numpy(x), "z": _numpy(z)})
        return torch.from_numpy(y)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().cpu().numpy())


def make_engine(name: str, net: DeblurNet, device: torch.device, model_sha256: str | None) -> TorchEngine | OnnxEngine:
    """The engine object for a resolved name (``choose_engine``)."""
    return OnnxEngine(net, model_sha256) if name == "onnx" else TorchEngine(net, device)


__all__ = ["ENGINES", "ONNX_TOLERANCE", "OnnxEngine", "TorchEngine", "choose_engine", "make_engine",
           "onnxruntime_available"]

"""Deblurring images of any size and mode with a trained model, deterministically.

    from udeblur.inference import Deblurrer
    sharp = Deblurrer.from_checkpoint("model.safetensors")("blurred.jpg")   # PIL image, same size

What happens to an image:

* **Size.** The networks need H and W to be multiples of ``DeblurNet.size_multiple`` (4 for DRIT's generator, 8 for
  the NAFNet one) and not smaller than the deepest layer can reflect-pad (8 px, or 2^(blur_blocks+1) for the blur
  encoder: 16 for the paper's model). The image is padded at the bottom/right by reflection (repeated reflection,
  or replication for a 1-px side), run, and cropped back. It is never resized, so the output has exactly the
  input's size.
* **Modes.** Pixels are deblurred in the model's channel count: a grayscale image given to an RGB model is
  replicated to RGB and the result converted back to one channel by luma (ITU-R 601). An RGB image given to a
  grayscale model is converted to gray (luma) and comes back grayscale. Alpha is never sent through the network
  and is copied back unchanged. Palette images come back RGB (RGBA if transparent); 16-bit grayscale is
  read and written with 16 bits. Other modes (CMYK, YCbCr, ...) are converted by ``udeblur.imageio``.
* **Determinism.** Eval mode, z_b = mu (never sampled), no content noise. On one device and thread count the
  same input gives bit-identical output.
* **Tiling.** If H or W exceeds ``tile``, the image is cut into overlapping tiles (``overlap`` px, tile origins
  aligned to multiples of the size multiple so the strided layers sample the same pixel grid as a whole-image
  pass) and the outputs are cross-faded with raised-cosine ramps that sum to one, so there are no seams. Network
  memory is bounded by the tile size; only the input/output arrays scale with the image.

  The blur code z_b is computed ONCE for the whole image and given to every tile. The blur encoder has no
  normalisation layers and ends in a global average pool followed by linear heads, so its mu over the whole image
  equals the area-weighted mean of the mu of non-overlapping pieces up to the pieces' border effects; that is how
  it is computed for large images, at full resolution. (A downscaled copy would be cheaper, but downscaling
  shrinks the blur itself, so the code would describe a sharper image than the one being deblurred.)

  Normalisation is the one thing tiles do not share by themselves: InstanceNorm (content encoder) and LayerNorm
  (generator) compute statistics over whatever they are given. Two modes:

  - ``norm="tile"`` (default, one pass): each tile normalises with its own statistics. Tiles of very different
    content (sky next to text) then get slightly different tone/contrast; the cross-fade keeps that free of
    seams, but the result is not the whole-image result. Measured with a briefly trained ``tiny`` model on a
    256x512 mosaic of text crops: mean |difference| 0.029 / 0.020 / 0.008 (max 0.39 / 0.35 / 0.10) on a
    [0, 1] scale with 64- / 128- / 256-px tiles; bigger tiles make it smaller. Tile borders, which see
    reflection padding instead of their neighbours, are kept out of the result by the overlap (keep it
    generous: 64 px default).
  - ``norm="image"`` (exact, about (number of norm layers / 2 + 1) times the work: ~11x for the paper's model):
    the tiles are first run layer by layer to gather whole-image statistics for every normalisation layer
    (``_ImageStatistics``), then every tile is normalised with them. The result equals a whole-image pass up to
    tile-border effects: mean |difference| 0.002 / 0.0002 / <1e-5 in the measurement above.

  Images no larger than ``tile`` are processed in one pass, exactly, in either mode.
* **Tone anchor** (``tone_anchor`` = sigma in px, off by default; the bundled text model uses 16). A blur kernel is
  non-negative and sums to one, so blurring keeps the local mean of an image at scales well above the kernel's
  size; deblurring should too. A network need not: the bundled one brightens real pages a little.
  With the anchor, the output's Gaussian low-pass at sigma is replaced by the input's (per channel, reflected
  borders, over the whole image after tiling), then clipped to [0, 1]. Only the coarse tone changes; strokes and
  edges are the network's. Measured in docs/model_card_text.md (real text +0.26 dB, synthetic crops +0.02 dB).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..archs.blocks import LayerNorm2d
from ..config import ModelConfig
from ..device import resolve_device, resolve_precision
from ..imageio import ImageData, ImageReadError, image_from_pil, list_images, read_image, save_png, to_channels, to_pil
from ..model import DeblurNet, pad_reflect
from . import pretrained
from .engine import choose_engine, make_engine, onnxruntime_available
from .pretrained import DEFAULT, ResolvedModel

ImageLike = str | os.PathLike | Image.Image | np.ndarray

# Modes whose alpha channel must come back even when it happens to be fully opaque (imageio drops those).
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


class DeblurBatchError(ValueError):
    """Some files of a batch could not be deblurred. Raised after all the others were written.

    ``failed`` lists (path, problem); ``written`` the outputs that were written.
    """

    def __init__(self, failed: list[tuple[Path, str]], written: list[Path]):
        self.failed = failed
        self.written = written
        names = ", ".join(str(p) for p, _ in failed[:5]) + (", ..." if len(failed) > 5 else "")
        total = len(failed) + len(written)
        super().__init__(f"{len(failed)} of {total} image(s) could not be deblurred: {names}")


class _Span(NamedTuple):
    """One tile along one axis: where it starts, its blend weights, and the part of the axis it owns."""

    start: int
    weight: np.ndarray  # 1-D blend weights over the tile
    own: tuple[int, int]  # absolute [lo, hi): the tiles' owned parts partition the axis (size multiples)


def _axis_tiles(length: int, tile: int, overlap: int, multiple: int = 4) -> list[_Span]:
    """Tile origins along one axis (multiples of the network's size multiple), 1-D blend weights, owned intervals.

    ``length`` and ``tile`` are multiples of ``multiple``. Neighbouring tiles overlap by at least ``overlap`` px;
    within each overlap they cross-fade with a raised cosine (weights of the pair sum to 1) centred in the overlap,
    so the pixels nearest a tile's border, the ones most affected by its padding, get (almost) no weight. The owned
    intervals split every overlap at its centre; they are what normalisation statistics are gathered from.
    """
    if length <= tile:
        return [_Span(0, np.ones(length, dtype=np.float64), (0, length))]
    n = max(2, math.ceil((length - overlap) / (tile - overlap)))
    while True:
        starts = [multiple * round(k * (length - tile) / (n - 1) / multiple) for k in range(n)]
        if all(starts[k] + tile - starts[k + 1] >= overlap for k in range(n - 1)):
            break
        n += 1  # rounding to multiples made one overlap a little short
    steps = [starts[k + 1] - starts[k] for k in range(n - 1)]
    # fade length: the requested overlap, but never so long that a middle tile's two fades would meet
    fade = min([overlap, *steps, *(tile - s for s in steps)])
    weights = [np.ones(tile, dtype=np.float64) for _ in starts]
    bounds = [0]
    for k in range(n - 1):
        lo, hi = starts[k + 1], starts[k] + tile  # the overlap of tiles k and k+1, absolute coordinates
        c0 = (lo + hi - fade) // 2
        pos_k = np.arange(starts[k], starts[k] + tile)
        pos_n = np.arange(starts[k + 1], starts[k + 1] + tile)
        t = np.clip((pos_k - c0 + 0.5) / max(fade, 1), 0.0, 1.0) if fade else (pos_k >= c0).astype(np.float64)
        weights[k] *= 0.5 + 0.5 * np.cos(np.pi * t)
        t = np.clip((pos_n - c0 + 0.5) / max(fade, 1), 0.0, 1.0) if fade else (pos_n >= c0).astype(np.float64)
        weights[k + 1] *= 0.5 - 0.5 * np.cos(np.pi * t)
        bounds.append(multiple * round((lo + hi) / (2 * multiple)))  # splits every downsampled scale too
    bounds.append(length)
    return [_Span(st, w, (bounds[k], bounds[k + 1])) for k, (st, w) in enumerate(zip(starts, weights, strict=True))]


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once the layer being calibrated has been seen."""


class _ImageStatistics:
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

    def __enter__(self) -> _ImageStatistics:
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
            raise _StopForward
        if layer not in self.stats:
            return None
        mean, var = self.stats[layer]
        if isinstance(layer, nn.InstanceNorm2d):
            y = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + layer.eps)
            return y * layer.weight[:, None, None] + layer.bias[:, None, None] if layer.affine else y
        return (x - mean) / torch.sqrt(var + layer.eps) * layer.weight + layer.bias


def _anchor_tone(out: np.ndarray, blurred: np.ndarray, sigma: float) -> np.ndarray:
    """``out`` with its Gaussian low-pass (sigma px) replaced by ``blurred``'s; both H x W x C in [0, 1]."""
    from scipy.ndimage import gaussian_filter

    lows = [gaussian_filter(a, sigma=(sigma, sigma, 0), mode="reflect") for a in (blurred, out)]
    return np.clip(out + (lows[0] - lows[1]), 0.0, 1.0).astype(np.float32)


def _with_pixels(data: ImageData, pixels: np.ndarray) -> ImageData:
    """``data`` with new colour pixels; alpha and bit depth carry over (an opaque alpha of an RGBA/LA source too)."""
    alpha = data.alpha
    if alpha is None and data.source_mode in _ALPHA_MODES:
        alpha = np.ones(data.size, dtype=np.float32)
    return ImageData(pixels, alpha, data.bits, data.source_mode)


class Deblurrer:
    """Deblur images with a trained deblurring path (E_B^c, shared block, E^b, G_S).

    ``tile``: largest side processed in one pass (rounded down to the network's size multiple); bigger images are tiled.
    ``overlap``: minimum overlap of neighbouring tiles in px (at most tile/2). ``batch``: images (of one size) or
    tiles per forward pass (helps on a GPU; costs ``batch`` times the activation memory). ``norm``: ``"tile"``
    (each tile normalised by its own statistics, one pass) or ``"image"`` (whole-image statistics, exact, slower).
    ``precision``: ``"auto"`` (fp16 autocast on CUDA; on a CPU bf16 autocast where a start-up timing shows it
    clearly faster than fp32, fp32 elsewhere: ``udeblur.device.resolve_precision``), ``"fp32"``, ``"fp16"`` (CUDA
    only) or ``"bf16"`` (autocast; 5-100x slower than fp32 on CPUs without native bf16). ``io_workers``: threads
    that read and write files while the network runs (``deblur_paths``). ``tone_anchor``: sigma (px) of the
    low-frequency anchor, 0 = off (the network's output as is). ``engine``: ``"auto"``, ``"torch"`` or ``"onnx"``
    (onnxruntime on the exported graph; auto takes it for a model file on the CPU in fp32 where onnxruntime is
    installed: ``udeblur.inference.engine``); the chosen one is ``self.engine``. ``model_sha256``: the model
    file's SHA-256, which keys the cached ONNX graph (``from_checkpoint`` sets it).
    See the module docstring for sizes, modes, determinism and the tiling strategy.
    """

    def __init__(
        self,
        net: DeblurNet | None = None,
        model_cfg: ModelConfig | None = None,
        device: str | torch.device = "auto",
        tile: int = 1024,
        overlap: int = 64,
        batch: int = 1,
        norm: str = "tile",
        precision: str = "auto",
        io_workers: int = 2,
        tone_anchor: float = 0.0,
        engine: str = "auto",
        model_sha256: str | None = None,
    ):
        if net is None or model_cfg is None:
            raise TypeError("Deblurrer needs a network and its ModelConfig; for a model file use "
                            "Deblurrer.from_pretrained('text') (the bundled model) or Deblurrer.from_checkpoint(PATH)")
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.model_cfg = model_cfg
        self.channels = model_cfg.channels
        m = self.size_multiple = net.size_multiple
        # smaller inputs break the deepest reflection pads; padded up to this (a multiple of m)
        self.min_side = -(-net.min_size // m) * m
        tile = int(tile) // m * m
        if tile < max(self.min_side, 16):
            raise ValueError(f"tile must be at least {max(self.min_side, 16)} px for this model, got {tile}")
        if not 0 <= int(overlap) <= tile // 2:
            raise ValueError(f"overlap must be between 0 and tile/2 = {tile // 2} px, got {overlap}")
        if int(batch) < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if norm not in ("tile", "image"):
            raise ValueError(f"norm must be 'tile' or 'image', got {norm!r}")
        precision = resolve_precision(precision, self.device)  # auto: measured on this CPU, once per process
        if precision not in ("fp32", "fp16", "bf16"):
            raise ValueError(f"precision must be auto, fp32, fp16 or bf16, got {precision!r}")
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("precision fp16 needs a CUDA device (CPUs run fp16 convolutions slowly or not at all)")
        if int(io_workers) < 1:
            raise ValueError(f"io_workers must be >= 1, got {io_workers}")
        if not (math.isfinite(float(tone_anchor)) and float(tone_anchor) >= 0.0):
            raise ValueError(f"tone_anchor must be a sigma in px >= 0 (0 = off), got {tone_anchor}")
        self.tone_anchor = float(tone_anchor)
        self.tile, self.overlap, self.batch, self.norm = tile, int(overlap), int(batch), norm
        self.precision, self.io_workers = precision, int(io_workers)
        self.engine = choose_engine(engine, self.device, precision, norm, model_sha256)
        self._engine = make_engine(self.engine, self.net, self.device, model_sha256)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str | torch.device = "auto", expected_sha256: str | None = None, **kw
    ) -> Deblurrer:
        """Load an exported ``.safetensors`` model or a full training checkpoint (``.pt``).

        Raises ``CheckpointError`` naming the file when it is missing, damaged or fails its SHA-256 check.
        """
        from ..model_files import load_deblur_net

        net, model_cfg = load_deblur_net(path, expected_sha256=expected_sha256, map_location="cpu")
        if kw.get("engine", "auto") != "torch" and "model_sha256" not in kw and onnxruntime_available():
            from ..model_files import sha256_of

            kw["model_sha256"] = expected_sha256 or sha256_of(path)  # keys the cached ONNX graph
        return cls(net, model_cfg, device=device, **kw)

    @classmethod
    def from_pretrained(cls, name: str = DEFAULT, **kw) -> Deblurrer:
        """A bundled model (``udeblur.inference.pretrained.BUNDLED``) with the settings it ships with (its tone
        anchor) unless ``kw`` overrides them; its SHA-256 is checked first (CheckpointError on mismatch)."""
        path = pretrained.model_path(name)  # UnknownModelError naming the bundled models for an unknown name
        kw.setdefault("tone_anchor", pretrained.BUNDLED[name].tone_anchor)
        return cls.from_checkpoint(path, expected_sha256=pretrained.BUNDLED[name].sha256, **kw)

    @classmethod
    def from_resolved(cls, model: ResolvedModel, **kw) -> Deblurrer:
        """The Deblurrer for a ``resolve_model`` answer: its SHA-256 checked and its tone anchor set."""
        return cls.from_checkpoint(model.path, expected_sha256=model.sha256, tone_anchor=model.tone_anchor, **kw)

    # ------------------------------------------------------------------ public entry points

    def __call__(self, image: ImageLike) -> Image.Image | np.ndarray:
        """Deblur a path, a PIL image or a numpy array; the output has exactly the input's size.

        Paths and PIL images give a PIL image (mode L, I;16, RGB, LA or RGBA, following the input).
        Arrays (H x W or H x W x C, C = 1..4, uint8 / uint16 / float in [0, 1]) give an array of the same dtype;
        C = 2 or 4 means the last channel is alpha and is copied back unchanged.
        """
        if isinstance(image, np.ndarray):
            return self._deblur_array(image)
        if isinstance(image, Image.Image):
            return self._to_pil(self.deblur_data(image_from_pil(image)))
        if isinstance(image, (str, os.PathLike)):
            return self._to_pil(self.deblur_data(read_image(image)))
        raise TypeError(f"cannot deblur a {type(image).__name__}; give a path, a PIL image or a numpy array")

    def deblur_data(self, data: ImageData) -> ImageData:
        """Deblur decoded image data; alpha and bit depth carry over (an opaque alpha of an RGBA/LA source too)."""
        return _with_pixels(data, self.deblur_pixels(data.pixels))

    def deblur_file(self, src: str | os.PathLike, dst: str | os.PathLike) -> Path:
        """Read ``src``, deblur it and write a PNG to ``dst`` (atomically). Returns ``dst``."""
        out = self.deblur_data(read_image(src))
        save_png(dst, out.pixels, out.alpha, out.bits)
        return Path(dst)

    def deblur_paths(
        self,
        inputs: Sequence[str | os.PathLike],
        out_dir: str | os.PathLike,
        *,
        progress: bool = True,
        on_error: Callable[[Path, str], None] | None = None,
        max_megapixels: float | None = None,
    ) -> list[Path]:
        """Deblur files and folders (recursively) into ``out_dir``; see ``plan_outputs`` for the output names.

        Files are decoded ahead and encoded behind by ``io_workers`` threads while the network runs (Pillow
        releases the GIL while it decodes and compresses), and consecutive images of one size that need no
        tiling go through the network ``batch`` at a time. Outputs equal one-by-one deblurring.

        A file that cannot be read or written is reported (``on_error(path, problem)``; default: one line on
        stderr), skipped and counted; the rest are still written. If any failed, ``DeblurBatchError`` is raised
        at the end, carrying ``failed`` and ``written``. Missing inputs, image-less folders and outputs that would
        replace an input raise ``ImageReadError`` before anything is processed. ``max_megapixels``: larger images
        are refused (checked from the file header, before decoding). Returns the written paths in input order.
        """
        from tqdm import tqdm

        plan = plan_outputs(inputs, out_dir)
        outcome: dict[int, str | None] = {}  # plan index -> None (written) or the problem
        # disable=None: tqdm shows the bar only on a terminal
        bar = tqdm(total=len(plan), desc="deblur", unit="img", disable=None if progress else True, file=sys.stderr)

        def report(i: int, problem: str | None) -> None:
            outcome[i] = problem
            bar.update(1)
            if problem is not None:
                if on_error is not None:
                    on_error(plan[i][0], problem)
                else:
                    tqdm.write(f"skipped {plan[i][0]}: {problem}", file=sys.stderr)

        def read(i: int) -> ImageData:
            return read_image(plan[i][0], max_megapixels)

        def write(i: int, data: ImageData) -> None:
            save_png(plan[i][1], data.pixels, data.alpha, data.bits)

        lookahead = max(2 * self.batch, self.io_workers + 1)
        with ThreadPoolExecutor(self.io_workers, "udeblur-read") as readers, \
                ThreadPoolExecutor(1, "udeblur-write") as writer:
            reads: deque[tuple[int, Future]] = deque()
            writes: deque[tuple[int, Future]] = deque()  # bounded: decoded outputs wait in memory
            upcoming = iter(range(len(plan)))

            def fill() -> None:
                while len(reads) < lookahead and (i := next(upcoming, None)) is not None:
                    reads.append((i, readers.submit(read, i)))

            fill()
            while reads:
                group: list[tuple[int, ImageData]] = []
                while reads and len(group) < self.batch:
                    i, fut = reads[0]
                    try:
                        data = fut.result()
                    except Exception as exc:
                        reads.popleft()
                        report(i, exc.problem if isinstance(exc, ImageReadError) else f"{type(exc).__name__}: {exc}")
                        fill()
                        continue
                    if group and not (self._fits_one_pass(data) and data.pixels.shape == group[0][1].pixels.shape):
                        break  # a new size (or a tiled image) starts the next group
                    reads.popleft()
                    group.append((i, data))
                    fill()
                    if not self._fits_one_pass(data):
                        break  # tiled images go alone
                if not group:
                    continue
                try:
                    results = self._deblur_group([d for _, d in group])
                except Exception as exc:  # e.g. out of memory on one huge image: report it, go on with the rest
                    for i, _ in group:
                        report(i, f"{type(exc).__name__}: {exc}")
                    continue
                for (i, _), out in zip(group, results, strict=True):
                    writes.append((i, writer.submit(write, i, out)))
                # report writes as they land (an honest progress bar); wait when too many outputs are pending
                while writes and (writes[0][1].done() or len(writes) > lookahead):
                    self._finish_write(*writes.popleft(), report)
            for i, fut in writes:
                self._finish_write(i, fut, report)
        bar.close()
        written = [plan[i][1] for i in sorted(outcome) if outcome[i] is None]
        failed = [(plan[i][0], p) for i, p in sorted(outcome.items()) if p is not None]
        if failed:
            raise DeblurBatchError(failed, written)
        return written

    @staticmethod
    def _finish_write(i: int, fut: Future, report: Callable[[int, str | None], None]) -> None:
        try:
            fut.result()
        except OSError as exc:  # e.g. output not writable; other files may still succeed
            report(i, f"cannot write ({exc.strerror or exc})")
        except Exception as exc:
            report(i, f"{type(exc).__name__}: {exc}")
        else:
            report(i, None)

    def _fits_one_pass(self, data: ImageData) -> bool:
        """Whether an image needs no tiling (only those are batched together)."""
        h, w = data.pixels.shape[:2]
        return max(self._padded_size(h), self._padded_size(w)) <= self.tile

    def _deblur_group(self, group: list[ImageData]) -> list[ImageData]:
        if len(group) == 1:
            return [self.deblur_data(group[0])]
        outs = self.deblur_pixels_batch([d.pixels for d in group])
        return [_with_pixels(data, out) for data, out in zip(group, outs, strict=True)]

    def deblur_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Float32 H x W x C (C = 1 or 3) in [0, 1] -> deblurred, same H x W, C as described in the module doc."""
        return self.deblur_pixels_batch([pixels])[0]

    @torch.inference_mode()
    def deblur_pixels_batch(self, batch: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``deblur_pixels`` for several images of one shape in one forward pass (tiled ones: one by one)."""
        xs, gray_in = [], []
        for pixels in batch:
            if pixels.ndim == 2:
                pixels = pixels[..., None]
            if pixels.ndim != 3 or pixels.shape[2] not in (1, 3) or pixels.shape[0] < 1 or pixels.shape[1] < 1:
                raise ValueError(f"expected H x W x 1 or H x W x 3 pixels, got shape {pixels.shape}")
            gray_in.append(pixels.shape[2] == 1)
            x = to_channels(np.clip(np.asarray(pixels, dtype=np.float32), 0.0, 1.0), self.channels)
            xs.append(torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))))
        if len({x.shape for x in xs}) != 1:
            raise ValueError(f"images of one batch must have one shape, got {sorted({tuple(x.shape) for x in xs})}")
        h, w = xs[0].shape[1:]
        if max(self._padded_size(h), self._padded_size(w)) > self.tile:
            ys = torch.cat([self._run(x[None] * 2.0 - 1.0) for x in xs])
        else:
            ys = self._run(torch.stack(xs) * 2.0 - 1.0)
        if not bool(torch.isfinite(ys).all()):  # never write NaN as black: it means a broken model or fp16 overflow
            raise ValueError("the network's output contains NaN or infinity: the model is damaged or diverged, or "
                             "fp16 overflowed (try --precision fp32)")
        outs = []
        for x, y, gray in zip(xs, ys, gray_in, strict=True):
            out = ((y.permute(1, 2, 0).numpy() + 1.0) * 0.5).clip(0.0, 1.0).astype(np.float32)
            if self.tone_anchor > 0:
                out = _anchor_tone(out, x.numpy().transpose(1, 2, 0), self.tone_anchor)
            if gray and self.channels == 3:
                out = to_channels(out, 1)  # a 3-channel model may tint a gray image; luma brings it back to gray
            outs.append(np.ascontiguousarray(out))
        return outs

    # ------------------------------------------------------------------ the network passes

    def _pad(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return pad_reflect(x, height, width)

    def _padded_size(self, n: int) -> int:
        m = self.size_multiple
        return max(self.min_side, -(-n // m) * m)

    def _blur_code(self, x: torch.Tensor) -> torch.Tensor:
        """mu of the whole (padded) image: one pass, or the area-weighted mean over non-overlapping tiles."""
        _, _, h, w = x.shape
        if h <= self.tile and w <= self.tile:
            return self._engine.blur_code(x)
        total = torch.zeros(1, self.model_cfg.blur_latent, dtype=torch.float64, device=self.device)
        for y0 in range(0, h, self.tile):
            for x0 in range(0, w, self.tile):
                piece = x[:, :, y0 : y0 + self.tile, x0 : x0 + self.tile]
                ph, pw = piece.shape[2:]
                piece = self._pad(piece, self._padded_size(ph), self._padded_size(pw))
                total += self._engine.blur_code(piece).double().to(self.device) * (ph * pw)
        return (total / (h * w)).float()

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """N x C x H x W in [-1, 1] (CPU) -> deblurred N x C x H x W in [-1, 1] (CPU); N > 1 only untiled."""
        with self._autocast():
            return self._run_fp(x)

    def _run_fp(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        hp, wp = self._padded_size(h), self._padded_size(w)
        xp = self._pad(x, hp, wp)
        if hp <= self.tile and wp <= self.tile:
            xd = xp.to(self.device)
            return self._engine.decode(xd, self._engine.blur_code(xd)).float().cpu()[:, :, :h, :w]
        if n != 1:
            raise ValueError("tiled images are deblurred one at a time")
        z = self._blur_code(xp)
        rows = _axis_tiles(hp, self.tile, self.overlap, self.size_multiple)
        cols = _axis_tiles(wp, self.tile, self.overlap, self.size_multiple)
        th, tw = min(hp, self.tile), min(wp, self.tile)
        jobs = [(r, q) for r in rows for q in cols]
        chunks = [jobs[i : i + self.batch] for i in range(0, len(jobs), self.batch)]

        def forward(chunk: list[tuple[_Span, _Span]]) -> torch.Tensor:
            tiles = torch.cat([xp[:, :, r.start : r.start + th, q.start : q.start + tw] for r, q in chunk])
            return self._engine.decode(tiles, z.expand(len(chunk), -1))

        out = torch.zeros(1, c, hp, wp, dtype=torch.float32)
        norm = torch.zeros(1, 1, hp, wp, dtype=torch.float32)
        with contextlib.ExitStack() as stack:
            if self.norm == "image":
                stats = stack.enter_context(_ImageStatistics(self.net))
                stats.tile_size = (th, tw)

                def run_tiles() -> None:
                    for chunk in chunks:
                        stats.regions = [(*(v - r.start for v in r.own), *(v - q.start for v in q.own))
                                         for r, q in chunk]
                        try:
                            forward(chunk)
                        except _StopForward:
                            pass

                for layer in stats.execution_order(lambda: forward(chunks[0][:1])):
                    stats.calibrate(layer, run_tiles)
            for chunk in chunks:
                ys = forward(chunk).float().cpu()
                for y_tile, (r, q) in zip(ys, chunk, strict=True):
                    weight = torch.from_numpy(np.outer(r.weight, q.weight).astype(np.float32))
                    out[0, :, r.start : r.start + th, q.start : q.start + tw] += y_tile * weight
                    norm[0, 0, r.start : r.start + th, q.start : q.start + tw] += weight
        return (out / norm.clamp_min(1e-12))[:, :, :h, :w]

    # ------------------------------------------------------------------ conversions

    def _to_pil(self, data: ImageData) -> Image.Image:
        return to_pil(data.pixels, data.alpha, data.bits)

    def _deblur_array(self, arr: np.ndarray) -> np.ndarray:
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
            raise ValueError(f"expected an H x W or H x W x C (C = 1..4) array, got shape {arr.shape}")
        if arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ValueError(f"image has zero width or height (shape {arr.shape})")
        if arr.dtype == np.uint8:
            scale = 255.0
        elif arr.dtype == np.uint16:
            scale = 65535.0
        elif np.issubdtype(arr.dtype, np.floating):
            scale = 1.0
            if not np.isfinite(arr).all():
                raise ValueError("image array contains NaN or infinity")
        else:
            raise TypeError(f"unsupported array dtype {arr.dtype} (use uint8, uint16 or float in [0, 1])")
        cube = arr[..., None] if arr.ndim == 2 else arr
        n_colour = 1 if cube.shape[2] in (1, 2) else 3
        alpha = cube[..., n_colour:]  # empty when there is no alpha; copied back bit-exact, never processed
        out = self.deblur_pixels(cube[..., :n_colour].astype(np.float32) / np.float32(scale))
        if scale == 1.0:
            out_arr = out.astype(arr.dtype)
        else:
            out_arr = np.round(out * scale).astype(arr.dtype)
        out_arr = np.concatenate([out_arr, alpha], axis=2) if alpha.shape[2] else out_arr
        if arr.ndim == 2 and out_arr.shape[2] == 1:
            out_arr = out_arr[..., 0]
        return out_arr


# ---------------------------------------------------------------------- batch planning


def _collect(inputs: Iterable[str | os.PathLike], out_dir: Path) -> list[tuple[Path, Path, Path]]:
    """(source, output path relative to out_dir before clash handling, the folder that path is relative to).

    Files keep their name; folders their tree. A file named twice (a folder and a file in it) is listed once.
    """
    out_real = Path(os.path.realpath(out_dir))
    items: list[tuple[Path, Path, Path]] = []
    seen: set[str] = set()
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise ImageReadError(path, "no such file or folder")
        if path.is_dir():
            every = list_images(path)
            # skip what a previous run wrote when the output folder sits inside the input folder
            found = [p for p in every if out_real not in Path(os.path.realpath(p)).parents]
            if not found and every:
                raise ImageReadError(path, f"all its {len(every)} image(s) are inside the output folder {out_dir}, "
                                     "which is never read as input (it holds outputs); choose an output folder "
                                     f"outside {path}")
            if not found:
                raise ImageReadError(path, "folder contains no image files (.png, .jpg, .tif, ...)")
            listed = [(p, p.relative_to(path), path) for p in found]
        else:
            listed = [(path, Path(path.name), path.parent)]
        for item in listed:
            real = os.path.realpath(item[0])  # realpath, unlike Path.resolve, does not raise on a looping link
            if real not in seen:
                seen.add(real)
                items.append(item)
    return items


def _file_id(path: str | os.PathLike) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def plan_outputs(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike) -> list[tuple[Path, Path]]:
    """Pair every input image with its output PNG under ``out_dir``.

    A file ``x/a.jpg`` -> ``out_dir/a.png``; a folder's files keep their path relative to the folder
    (``photos/2019/b.tif`` -> ``out_dir/2019/b.png``). When inputs with different extensions would get the same
    output (``a.jpg`` and ``a.png``; compared case-insensitively for macOS/Windows), the non-PNG ones keep their
    extension in the name (``a.jpg.png``). Files of one name from different folders (``x/a.png``, ``y/a.png``)
    keep as much of their folder path as tells them apart (``out_dir/x/a.png``, ``out_dir/y/a.png``); a clash
    still left gets ``-2``, ``-3``, ... before ``.png``, in input order.
    Raises ``ImageReadError`` before anything is written for a missing input, a folder without images, or an
    output that would replace one of the inputs.
    """
    out_dir = Path(out_dir)
    items = _collect(inputs, out_dir)
    rels = [rel.with_suffix(".png") for _, rel, _ in items]
    keys = [str(r).casefold() for r in rels]
    suffixes: dict[str, set[str]] = {}
    for key, (_, rel, _) in zip(keys, items, strict=True):
        suffixes.setdefault(key, set()).add(rel.suffix.casefold())
    for i, (_, rel, _) in enumerate(items):
        # a.jpg + a.png: the extension tells them apart
        if len(suffixes[keys[i]]) > 1 and rel.suffix.casefold() != ".png":
            rels[i] = rel.with_name(rel.name + ".png")
    groups: dict[str, list[int]] = {}
    for i, rel in enumerate(rels):
        groups.setdefault(str(rel).casefold(), []).append(i)
    for group in groups.values():
        if len(group) < 2:
            continue
        # the folders' real paths without the root: prefixes of them never leave out_dir
        folders = [Path(os.path.realpath(items[i][2])).parts[1:] for i in group]
        for k in range(1, max(len(f) for f in folders) + 1):
            named = [Path(*f[-k:], rels[i]) for f, i in zip(folders, group, strict=True)]
            if len({str(p).casefold() for p in named}) == len(group):
                break
        for i, p in zip(group, named, strict=True):
            rels[i] = p
    taken: set[str] = set()
    result = []
    for (src, _, _), rel in zip(items, rels, strict=True):
        candidate, n = rel, 1
        while str(candidate).casefold() in taken:
            n += 1
            candidate = rel.with_name(f"{rel.stem}-{n}.png")
        taken.add(str(candidate).casefold())
        result.append((src, out_dir / candidate))
    _refuse_overwriting_inputs(result)
    return result


def _refuse_overwriting_inputs(plan: list[tuple[Path, Path]]) -> None:
    """One check over all outputs against all inputs (same file also through links), before anything is written."""
    inputs = {fid: src for src, _ in plan if (fid := _file_id(src)) is not None}
    for src, dst in plan:
        victim = inputs.get(_file_id(dst))
        if victim is not None:
            whose = "its own output" if victim == src else f"the output of {src}"
            raise ImageReadError(victim, f"this input would be overwritten by {whose} ({dst}); nothing was written: "
                                 "choose an output folder (-o) that holds none of the inputs")


def load_pretrained(name: str = DEFAULT, **deblurrer_options: object) -> Deblurrer:
    """``Deblurrer.from_pretrained``: a bundled model with the settings it was measured with unless overridden."""
    return Deblurrer.from_pretrained(name, **deblurrer_options)

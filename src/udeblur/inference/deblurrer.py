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
* **Tiling.** If H or W exceeds ``tile``, the image is cut into overlapping, cross-faded tiles
  (:mod:`udeblur.inference.tiling`; with ``norm="image"`` every tile is normalised by whole-image statistics:
  :mod:`udeblur.inference.image_statistics`). Images no larger than ``tile`` are processed in one pass, exactly.

  The blur code z_b is computed ONCE for the whole image and given to every tile. The blur encoder has no
  normalisation layers and ends in a global average pool followed by linear heads, so its mu over the whole image
  equals the area-weighted mean of the mu of non-overlapping pieces up to the pieces' border effects; that is how
  it is computed for large images, at full resolution. (A downscaled copy would be cheaper, but downscaling
  shrinks the blur itself, so the code would describe a sharper image than the one being deblurred.)
* **Tone anchor** (``tone_anchor`` = sigma in px, off by default; the bundled text model uses 16): the output's
  coarse tone is replaced by the input's (:mod:`udeblur.inference.tone`).
* **Files and folders** (``deblur_paths``): output names and the threaded read/deblur/write pipeline are in
  :mod:`udeblur.inference.folders`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..config import ModelConfig
from ..device import autocast, resolve_device, resolve_precision
from ..imageio import ImageData, image_from_pil, read_image, to_channels, to_pil
from ..model import DeblurNet, pad_reflect
from . import pretrained
from .engine import choose_engine, make_engine, onnxruntime_available
from .folders import DeblurBatchError, deblur_files, plan_outputs
from .pretrained import DEFAULT, ResolvedModel
from .tiling import run_tiled
from .tone import anchor_tone

__all__ = ["DeblurBatchError", "Deblurrer", "ImageLike", "load_pretrained", "plan_outputs", "resolve_device"]

ImageLike = str | os.PathLike | Image.Image | np.ndarray

# Modes whose alpha channel must come back even when it happens to be fully opaque (imageio drops those).
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


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
    def from_resolved(cls, model: ResolvedModel, **kw) -> Deblurrer:
        """The Deblurrer for a ``resolve_model`` answer: its SHA-256 checked, its tone anchor unless ``kw`` sets one."""
        kw.setdefault("tone_anchor", model.tone_anchor)
        return cls.from_checkpoint(model.path, expected_sha256=model.sha256, **kw)

    @classmethod
    def from_pretrained(cls, name: str = DEFAULT, **kw) -> Deblurrer:
        """A bundled model (``udeblur.inference.pretrained.BUNDLED``) with the settings it ships with (its tone
        anchor) unless ``kw`` overrides them; its SHA-256 is checked first (CheckpointError on mismatch)."""
        return cls.from_resolved(pretrained.resolve_bundled(name), **kw)

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
        return deblur_files(plan_outputs(inputs, out_dir), self._deblur_group, self._fits_one_pass, batch=self.batch,
                            io_workers=self.io_workers, progress=progress, on_error=on_error,
                            max_megapixels=max_megapixels)

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
                out = anchor_tone(out, x.numpy().transpose(1, 2, 0), self.tone_anchor)
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
        with autocast(self.precision, self.device):
            return self._run_fp(x)

    def _run_fp(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        hp, wp = self._padded_size(h), self._padded_size(w)
        xp = self._pad(x, hp, wp)
        if hp <= self.tile and wp <= self.tile:
            xd = xp.to(self.device)
            return self._engine.decode(xd, self._engine.blur_code(xd)).float().cpu()[:, :, :h, :w]
        if n != 1:
            raise ValueError("tiled images are deblurred one at a time")
        out = run_tiled(xp, self._blur_code(xp), self._engine.decode, self.net, self.tile, self.overlap,
                        self.size_multiple, self.batch, self.norm)
        return out[:, :, :h, :w]

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


def load_pretrained(name: str = DEFAULT, **deblurrer_options: object) -> Deblurrer:
    """``Deblurrer.from_pretrained``: a bundled model with the settings it was measured with unless overridden."""
    return Deblurrer.from_pretrained(name, **deblurrer_options)

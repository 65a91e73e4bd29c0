"""From pixels to what the networks see: resizing, padding, the paper's crop-and-flip, tensors in [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """float32 H x W x C in [0, 1] -> C x H x W tensor in [-1, 1] (what the networks see)."""
    chw = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(chw).mul_(2.0).sub_(1.0)


def resize_shorter(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is ``size``, keeping aspect ratio (Pillow bicubic, antialiased when
    shrinking). Works per channel in float ("F" mode), so 16-bit sources keep their precision."""
    h, w = pixels.shape[:2]
    if min(h, w) == size:
        return pixels
    if h <= w:
        new_h, new_w = size, max(1, round(w * size / h))
    else:
        new_h, new_w = max(1, round(h * size / w)), size
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(pixels[..., c])).resize(
                (new_w, new_h), Image.Resampling.BICUBIC
            )
        )
        for c in range(pixels.shape[2])
    ]
    # bicubic overshoots a little at edges; keep the [0, 1] contract
    return np.clip(np.stack(channels, axis=2), 0.0, 1.0).astype(np.float32)


def pad_to(pixels: np.ndarray, size: int) -> np.ndarray:
    """Reflection-pad (centred) so both sides are at least ``size``.

    Padding rather than upscaling keeps the pixel scale of the blur: a 15 px shake stays a 15 px shake,
    which is what the domain's blur statistics are about. numpy's "reflect" repeats the reflection when
    the pad is wider than the image, so any size works.
    """
    h, w = pixels.shape[:2]
    ph, pw = max(0, size - h), max(0, size - w)
    if ph == 0 and pw == 0:
        return pixels
    mode = "reflect" if min(h, w) > 1 else "edge"  # reflection of a 1-pixel line is undefined
    return np.pad(pixels, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode=mode)


def augment(pixels: np.ndarray, rng: np.random.Generator, crop_size: int, load_size: int = 0,
            flip: bool = True) -> np.ndarray:
    """The paper's augmentation: shorter side to ``load_size`` (if > 0), random crop, random h-flip.

    Draws exactly three numbers from ``rng`` (y, x, flip) in that order, so the stream is stable.
    """
    if load_size > 0:
        pixels = resize_shorter(pixels, load_size)
    pixels = pad_to(pixels, crop_size)
    h, w = pixels.shape[:2]
    y = int(rng.integers(0, h - crop_size + 1))
    x = int(rng.integers(0, w - crop_size + 1))
    do_flip = bool(rng.random() < 0.5)
    out = pixels[y:y + crop_size, x:x + crop_size]
    if flip and do_flip:
        out = out[:, ::-1]
    return out

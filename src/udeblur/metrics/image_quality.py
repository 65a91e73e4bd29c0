"""PSNR and SSIM, on RGB or on the Y (luma) channel, for numpy images and batched torch tensors.

Inputs
    * numpy: one image, ``H x W x C`` (C = 1 or 3) or ``H x W``, float, values in ``value_range`` (default
      [0, 1]). The functions return a Python float.
    * torch: a batch, ``N x C x H x W``, values in ``value_range``. The functions return a float64 tensor of
      N values (one per image) on the input's device; they are differentiable.

Both paths run the same torch code in float64, so a numpy image and the same image inside a torch batch give
the same number. Values are used as given: nothing is clipped or rounded to 8 bits (round outputs yourself if
you want the numbers of saved 8-bit files).

Colour handling (``on``)
    * ``"rgb"``: every channel as is.
    * ``"y"``: ITU-R BT.601 luma with the studio-swing scaling of MATLAB's ``rgb2ycbcr`` (as BasicSR's
      ``rgb2ycbcr(..., y_only=True)`` and most super-resolution/deblurring papers):
      ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in [0, 1], so Y lies in
      [16/255, 235/255]; PSNR and SSIM are then computed with a data range of 1, exactly as BasicSR does on
      its 0..255 scale with a data range of 255. A one-channel image is treated as R = G = B (so its Y is
      ``(16 + 219 v) / 255``) and gives the same result as its three-channel copy; BasicSR instead uses a
      grey image unchanged.

``crop_border=k`` drops ``k`` pixels on every side before anything is computed (BasicSR's ``crop_border``).

PSNR: ``10 log10(1 / MSE)`` with the MSE over all pixels and channels of one image (data range 1); ``inf``
for identical images.

SSIM: Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to structural
similarity", IEEE TIP 2004 -- an 11 x 11 Gaussian window with sigma 1.5 (taps ``exp(-k^2 / (2 sigma^2))``,
k = -5..5, normalised to sum 1, applied separably), K1 = 0.01, K2 = 0.03, data range 1, population
(not sample) variances. The local statistics are only taken where the whole window lies inside the image (a
'valid' convolution), the SSIM map is averaged over that region for each channel and the channel means are
averaged. This equals scikit-image's
``structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1.0, channel_axis=-1)``: scikit-image filters with reflective padding and then crops the 5-pixel
border where that padding was used, which leaves exactly the valid region (the tests check agreement to 1e-4).
It is also what BasicSR's ``calculate_ssim`` computes (``cv2.getGaussianKernel(11, 1.5)``, valid region).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Literal, overload

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

ColorSpace = Literal["rgb", "y"]
ImageLike = np.ndarray | str | os.PathLike

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
# MATLAB rgb2ycbcr / BT.601 studio-swing luma weights for R, G, B in [0, 1] giving Y on the 0..255 scale.
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0

__all__ = ["psnr", "ssim", "rgb_to_y", "evaluate_pairs", "ColorSpace"]


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """``N x 3 x H x W`` (or ``N x 1 x H x W``, taken as R = G = B) in [0, 1] -> ``N x 1 x H x W`` BT.601 Y
    in [16/255, 235/255], as MATLAB's ``rgb2ycbcr`` / BasicSR's ``rgb2ycbcr(y_only=True)`` divided by 255."""
    if x.shape[1] == 1:
        return (_Y_OFFSET + sum(_Y_WEIGHTS) * x) / 255.0
    if x.shape[1] != 3:
        raise ValueError(f"on='y' needs 1 or 3 channels, got {x.shape[1]}")
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return (_Y_OFFSET + _Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b) / 255.0


def _as_batch(img: np.ndarray | torch.Tensor, name: str) -> tuple[torch.Tensor, bool]:
    """Return (N x C x H x W float64 tensor, whether the input was a single numpy image)."""
    if isinstance(img, torch.Tensor):
        if img.ndim != 4:
            raise ValueError(f"{name}: torch input must be N x C x H x W, got shape {tuple(img.shape)}")
        return img.to(torch.float64), False
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"{name}: numpy input must be H x W x C or H x W, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        # Integer images would silently be compared on a 0..255 scale with data range 1.
        raise TypeError(f"{name}: expected a float image in value_range, got dtype {arr.dtype}")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64)).permute(2, 0, 1)[None], True


def _prepare(
    a: np.ndarray | torch.Tensor,
    b: np.ndarray | torch.Tensor,
    on: ColorSpace,
    crop_border: int,
    value_range: tuple[float, float],
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    if isinstance(a, torch.Tensor) != isinstance(b, torch.Tensor):
        raise TypeError("both images must be numpy arrays or both torch tensors")
    x, single = _as_batch(a, "first image")
    y, _ = _as_batch(b, "second image")
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)} (N x C x H x W)")
    lo, hi = value_range
    if hi <= lo:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
    if (lo, hi) != (0.0, 1.0):
        x, y = (x - lo) / (hi - lo), (y - lo) / (hi - lo)
    if on == "y":
        x, y = rgb_to_y(x), rgb_to_y(y)
    elif on != "rgb":
        raise ValueError(f"on must be 'rgb' or 'y', got {on!r}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border:
        if 2 * crop_border >= min(x.shape[-2:]):
            raise ValueError(f"crop_border={crop_border} leaves nothing of a {tuple(x.shape[-2:])} image")
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
        y = y[..., crop_border:-crop_border, crop_border:-crop_border]
    return x, y, single


def _psnr_batch(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    mse = (x - y).pow(2).flatten(1).mean(dim=1)
    # 1/0 = inf and log10(inf) = inf, so identical images give inf without a special case.
    return 10.0 * torch.log10(1.0 / mse)


def _gaussian_taps(device: torch.device) -> torch.Tensor:
    r = SSIM_WINDOW // 2
    k = torch.arange(-r, r + 1, dtype=torch.float64, device=device)
    g = torch.exp(-0.5 * (k / SSIM_SIGMA) ** 2)
    return g / g.sum()


def _ssim_batch(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {h}x{w}")
    c1 = (SSIM_K1 * 1.0) ** 2
    c2 = (SSIM_K2 * 1.0) ** 2
    # One grouped, separable convolution filters all five local statistics of all channels at once.
    stats = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    g = _gaussian_taps(x.device)
    groups = stats.shape[1]
    filt = F.conv2d(stats, g.view(1, 1, 1, -1).expand(groups, 1, 1, SSIM_WINDOW), groups=groups)
    filt = F.conv2d(filt, g.view(1, 1, -1, 1).expand(groups, 1, SSIM_WINDOW, 1), groups=groups)
    ux, uy, uxx, uyy, uxy = filt.split(c, dim=1)
    vx = uxx - ux * ux
    vy = uyy - uy * uy
    vxy = uxy - ux * uy
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    # Every channel has the same number of valid pixels, so the overall mean is the mean of channel means.
    return s.flatten(1).mean(dim=1)


@overload
def psnr(
    a: np.ndarray, b: np.ndarray, *, on: ColorSpace = ..., crop_border: int = ...,
    value_range: tuple[float, float] = ...,
) -> float: ...
@overload
def psnr(
    a: torch.Tensor, b: torch.Tensor, *, on: ColorSpace = ..., crop_border: int = ...,
    value_range: tuple[float, float] = ...,
) -> torch.Tensor: ...
def psnr(
    a: np.ndarray | torch.Tensor,
    b: np.ndarray | torch.Tensor,
    *,
    on: ColorSpace = "rgb",
    crop_border: int = 0,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> float | torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(1 / MSE)`` after mapping ``value_range`` to [0, 1].

    numpy ``H x W x C`` / ``H x W`` -> float; torch ``N x C x H x W`` -> tensor of N values. ``inf`` when the
    images are identical. ``on="y"``: BT.601 luma (MATLAB ``rgb2ycbcr``, as BasicSR). ``crop_border``: pixels
    dropped on each side first. Pass ``value_range=(-1, 1)`` for network tensors in [-1, 1].
    """
    x, y, single = _prepare(a, b, on, crop_border, value_range)
    out = _psnr_batch(x, y)
    return float(out[0]) if single else out


@overload
def ssim(
    a: np.ndarray, b: np.ndarray, *, on: ColorSpace = ..., crop_border: int = ...,
    value_range: tuple[float, float] = ...,
) -> float: ...
@overload
def ssim(
    a: torch.Tensor, b: torch.Tensor, *, on: ColorSpace = ..., crop_border: int = ...,
    value_range: tuple[float, float] = ...,
) -> torch.Tensor: ...
def ssim(
    a: np.ndarray | torch.Tensor,
    b: np.ndarray | torch.Tensor,
    *,
    on: ColorSpace = "rgb",
    crop_border: int = 0,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> float | torch.Tensor:
    """Wang et al. (2004) Gaussian-window SSIM (11x11, sigma 1.5, K1 0.01, K2 0.03, data range 1).

    Mean of the SSIM map over the valid region (window fully inside the image), per channel, then averaged
    over channels: equal to scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1.0, channel_axis=-1)``. numpy -> float, torch ``N x C x H x W``
    -> tensor of N values. ``on``, ``crop_border``, ``value_range`` as in :func:`psnr`.
    """
    x, y, single = _prepare(a, b, on, crop_border, value_range)
    out = _ssim_batch(x, y)
    return float(out[0]) if single else out


def _load(item: ImageLike) -> np.ndarray:
    if isinstance(item, np.ndarray):
        return item if item.ndim == 3 else item[..., None]
    from udeblur.imageio import load_pixels  # only needed for paths

    # Three channels for both sides so a grey file can be compared with an RGB one (grey = R = G = B).
    return load_pixels(item, channels=3)


def evaluate_pairs(
    pairs: Iterable[tuple[ImageLike, ImageLike]],
    *,
    metrics: Sequence[str] = ("psnr", "ssim"),
    on: ColorSpace = "rgb",
    crop_border: int = 0,
    value_range: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    progress: bool = True,
    total: int | None = None,
    desc: str = "PSNR/SSIM",
) -> list[dict[str, float]]:
    """PSNR and/or SSIM for every (restored, reference) pair, with a tqdm progress bar.

    Each item of a pair is a numpy image (``H x W x C`` or ``H x W``, in ``value_range``) or an image file
    path (read with :func:`udeblur.imageio.load_pixels` as RGB in [0, 1]; ``value_range`` should then stay
    (0, 1)). Consecutive pairs of the same shape are stacked into torch batches of up to ``batch_size`` and
    evaluated on ``device``; results are exactly those of :func:`psnr` / :func:`ssim` per pair. Returns one
    dict per pair, in input order, e.g. ``{"psnr": 27.1, "ssim": 0.84}``. ``metrics`` picks a subset of
    ``("psnr", "ssim")``; ``total`` sizes the progress bar when ``pairs`` has no ``len``.
    """
    unknown = set(metrics) - {"psnr", "ssim"}
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from 'psnr', 'ssim'")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if total is None and hasattr(pairs, "__len__"):
        total = len(pairs)  # type: ignore[arg-type]
    results: list[dict[str, float]] = []
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    bar = tqdm(total=total, desc=desc, unit="img", disable=not progress)

    def flush() -> None:
        if not pending:
            return
        x = torch.from_numpy(np.stack([p[0] for p in pending])).permute(0, 3, 1, 2).to(device)
        y = torch.from_numpy(np.stack([p[1] for p in pending])).permute(0, 3, 1, 2).to(device)
        cols: dict[str, list[float]] = {}
        with torch.no_grad():
            if "psnr" in metrics:
                cols["psnr"] = psnr(x, y, on=on, crop_border=crop_border, value_range=value_range).tolist()
            if "ssim" in metrics:
                cols["ssim"] = ssim(x, y, on=on, crop_border=crop_border, value_range=value_range).tolist()
        for i in range(len(pending)):
            results.append({m: cols[m][i] for m in metrics})
        bar.update(len(pending))
        pending.clear()

    try:
        for index, (restored, reference) in enumerate(pairs):
            ra = _load(restored)
            rb = _load(reference)
            if ra.shape != rb.shape:
                names = "" if isinstance(restored, np.ndarray) else f" ({restored} vs {reference})"
                raise ValueError(f"pair {index}{names}: shapes differ, {ra.shape} vs {rb.shape}")
            if not np.issubdtype(ra.dtype, np.floating) or not np.issubdtype(rb.dtype, np.floating):
                raise TypeError(f"pair {index}: expected float images, got {ra.dtype} and {rb.dtype}")
            if pending and pending[0][0].shape != ra.shape:
                flush()
            pending.append((ra.astype(np.float64, copy=False), rb.astype(np.float64, copy=False)))
            if len(pending) >= batch_size:
                flush()
        flush()
    finally:
        bar.close()
    return results


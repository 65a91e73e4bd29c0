"""Blur synthesis: camera-shake, linear-motion, defocus and Gaussian kernels, sensor noise, JPEG.

Camera shake follows the random-trajectory model of Boracchi & Foi ("Modeling the performance of image
restoration from motion blur", IEEE TIP 2012), the model DeblurGAN's ``motion_blur`` code implements: a
particle moves with inertia, is nudged by Gaussian perturbations, pulled back towards its start (a hand
correcting itself) and now and then jerks into a new direction ("anxiety"). The kernel is the histogram of
positions over the exposure, splatted bilinearly so intensity varies with the time spent at each place.

Conventions: kernels are float32 ``k x k`` (k odd), non-negative, sum to 1, centre of mass at the middle
pixel ``(k // 2, k // 2)`` for the symmetric kinds and the shake trajectories. Images are float32
``H x W x C`` in [0, 1]. Every random choice comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import io
import math
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fft as sfft
from PIL import Image

KINDS = ("shake", "linear", "defocus", "gaussian")


def _default_kinds() -> dict[str, float]:
    return {"shake": 0.7, "linear": 0.1, "defocus": 0.15, "gaussian": 0.05}


@dataclass
class BlurConfig:
    """What `degrade` draws from. Ranges are inclusive and sampled uniformly per image."""

    kinds: dict[str, float] = field(default_factory=_default_kinds)  # mixture weights over KINDS
    max_kernel: int = 31  # largest kernel support (odd; even values are rounded down)
    min_kernel: int = 7  # smallest kernel support (odd; even values are rounded up)
    noise_std: tuple[float, float] = (0.0, 0.02)  # Gaussian read-noise std range, pixels in [0, 1]
    poisson_peak: tuple[float, float] | None = None  # photon count at white (shot noise), log-uniform, or None
    jpeg_quality: tuple[int, int] | None = None  # JPEG re-compression quality range, or None

    def __post_init__(self) -> None:
        # YAML/JSON give lists; keep tuples so configs compare and hash alike.
        self.kinds = {str(k): float(v) for k, v in dict(self.kinds).items()}
        self.noise_std = (float(self.noise_std[0]), float(self.noise_std[1]))
        if self.poisson_peak is not None:
            self.poisson_peak = (float(self.poisson_peak[0]), float(self.poisson_peak[1]))
        if self.jpeg_quality is not None:
            self.jpeg_quality = (int(self.jpeg_quality[0]), int(self.jpeg_quality[1]))
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"BlurConfig.kinds: unknown kind(s) {sorted(unknown)}; choose from {list(KINDS)}")
        if any(w < 0 for w in self.kinds.values()) or sum(self.kinds.values()) <= 0:
            raise ValueError(f"BlurConfig.kinds: weights must be >= 0 with a positive sum, got {self.kinds}")
        if not 1 <= self.min_kernel <= self.max_kernel:
            raise ValueError(
                f"BlurConfig: need 1 <= min_kernel <= max_kernel, got {self.min_kernel}, {self.max_kernel}"
            )
        lo, hi = self.noise_std
        if not 0 <= lo <= hi:
            raise ValueError(f"BlurConfig.noise_std: need 0 <= low <= high, got {self.noise_std}")
        if self.poisson_peak is not None and not 0 < self.poisson_peak[0] <= self.poisson_peak[1]:
            raise ValueError(f"BlurConfig.poisson_peak: need 0 < low <= high, got {self.poisson_peak}")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"BlurConfig.jpeg_quality: need 1 <= low <= high <= 100, got {self.jpeg_quality}")


# ----------------------------------------------------------------------------------------------- kernels


def _check_size(size: int) -> int:
    size = int(size)
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd number, got {size}")
    return size


def _normalise(kernel: np.ndarray) -> np.ndarray:
    kernel = np.maximum(kernel, 0)
    total = kernel.sum()
    if total <= 0:  # cannot happen for valid inputs; a delta keeps callers safe
        kernel = np.zeros_like(kernel)
        kernel[kernel.shape[0] // 2, kernel.shape[1] // 2] = 1.0
        total = 1.0
    return (kernel / total).astype(np.float32)


def _splat(points: np.ndarray, size: int) -> np.ndarray:
    """Bilinear splatting of equally weighted points (complex: x + i*y, pixel units) onto a size x size grid.

    Splatting keeps the first moment exactly, so the kernel's centre of mass is the points' mean.
    """
    x, y = points.real, points.imag
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    idx = np.concatenate([y0 * size + x0, y0 * size + x0 + 1, (y0 + 1) * size + x0, (y0 + 1) * size + x0 + 1])
    w = np.concatenate([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy])
    inside = np.concatenate([(x0 >= 0) & (x0 + 1 < size) & (y0 >= 0) & (y0 + 1 < size)] * 4)
    grid = np.bincount(idx[inside], weights=w[inside], minlength=size * size)
    return grid.reshape(size, size)


def _shake_path(rng: np.random.Generator, exposure: float, anxiety: float, steps: int = 160) -> np.ndarray:
    """One Boracchi-Foi style trajectory over the exposure; complex positions in arbitrary units.

    The model is written in continuous time (rates per unit time, unit base speed) so that the shape does
    not depend on the pixel scale; `camera_shake_kernel` scales it to the requested length afterwards.
    """
    # Per-trajectory temperament, drawn like Boracchi & Foi / DeblurGAN draw theirs.
    centripetal = rng.uniform(0.0, 12.0)  # pull back towards the start, per unit displacement and time
    diffusion = anxiety * rng.uniform(1.5, 6.0)  # Gaussian direction noise, rad / sqrt(time)
    jerk_rate = anxiety * rng.uniform(0.0, 3.0)  # expected impulsive jerks per unit time
    speed_wobble = rng.uniform(0.3, 1.0)  # log-speed modulation: uneven intensity along the path
    theta0 = rng.uniform(0.0, 2 * math.pi)

    dt = exposure / steps
    # Everything random is drawn up front (vectorised); the loop below only integrates.
    noise = (rng.standard_normal(steps) + 1j * rng.standard_normal(steps)) * (diffusion * math.sqrt(dt) / 2**0.5)
    jerks = rng.uniform(size=steps) < jerk_rate * dt
    turn = np.exp(1j * (math.pi + rng.uniform(-0.5, 0.5, size=steps)))  # roughly a reversal
    t = np.arange(steps) * dt
    freqs = rng.uniform(0.5, 3.0, size=3) * 2 * math.pi
    phases = rng.uniform(0, 2 * math.pi, size=3)
    amps = rng.standard_normal(3) / math.sqrt(3)
    log_speed = speed_wobble * (amps[None, :] * np.sin(t[:, None] * freqs + phases)).sum(axis=1)
    speed = np.exp(log_speed)
    if jerks.any():
        # A hand that reverses slows down first: a dip in speed (a bright spot) around each jerk.
        dip = np.convolve(jerks.astype(float), np.bartlett(max(3, steps // 12)), mode="same")
        speed *= np.clip(1.0 - 0.8 * dip, 0.15, 1.0)
    step = (speed * dt).tolist()
    noise_l, jerks_l, turn_l = noise.tolist(), jerks.tolist(), turn.tolist()

    pull = centripetal * dt
    v = complex(math.cos(theta0), math.sin(theta0))
    x = 0j
    out = [0j] * (steps + 1)
    for i in range(steps):  # sequential by nature: the pull depends on the current position
        if jerks_l[i]:
            v = v + 2.0 * v * turn_l[i]
        v = v + noise_l[i] - pull * x
        v = v / (abs(v) or 1.0)
        x = x + v * step[i]
        out[i + 1] = x
    return np.asarray(out)


def camera_shake_kernel(
    size: int,
    rng: np.random.Generator,
    exposure: float = 1.0,
    anxiety: float = 0.5,
    length: float | None = None,
) -> np.ndarray:
    """Camera-shake kernel from a random Boracchi-Foi trajectory.

    size: odd kernel support. exposure in (0, 1]: the fraction of the trajectory's time the shutter is open
    (short exposures give straighter paths). anxiety in [0, 1]: strength of the random perturbations and
    the rate of sudden jerks. length: path length in pixels (default 0.8 * size); a path that would not fit
    is scaled down to the support. The kernel is centred (centre of mass at the middle pixel).
    """
    size = _check_size(size)
    if not 0 < exposure <= 1:
        raise ValueError(f"exposure must be in (0, 1], got {exposure}")
    if not 0 <= anxiety <= 1:
        raise ValueError(f"anxiety must be in [0, 1], got {anxiety}")
    length = 0.8 * size if length is None else float(length)
    path = _shake_path(rng, exposure, anxiety)
    seg = np.abs(np.diff(path))
    total = seg.sum()
    if total <= 0 or length <= 0 or size == 1:
        return _normalise(np.pad(np.ones((1, 1)), size // 2))
    path = path * (length / total)
    # Sample positions densely in time (linear between steps = constant velocity within a step), so the
    # splatted path has no gaps and the weight per pixel stays proportional to the time spent there.
    sub = max(1, math.ceil(seg.max() * length / total / 0.25))
    tt = np.arange((len(path) - 1) * sub + 1) / sub
    src = np.arange(len(path))
    dense = np.interp(tt, src, path.real) + 1j * np.interp(tt, src, path.imag)
    centre = (size - 1) / 2
    dense = dense - dense.mean()
    reach = max(np.abs(dense.real).max(), np.abs(dense.imag).max())
    room = centre - 1.0  # one pixel for the bilinear footprint
    if reach > room:
        dense = dense * (max(room, 0.0) / reach)
    return _normalise(_splat(dense + complex(centre, centre), size))


def linear_motion_kernel(size: int, length: float, angle_deg: float) -> np.ndarray:
    """Uniform straight motion of `length` pixels at `angle_deg` (counter-clockwise from +x, as seen on
    screen), centred, anti-aliased by bilinear splatting. Lengths beyond the support are clipped."""
    size = _check_size(size)
    length = float(np.clip(length, 0.0, size - 3 if size > 3 else 0.0))
    n = max(2, int(math.ceil(length * 8)) + 1)
    s = np.linspace(-length / 2, length / 2, n)
    a = math.radians(angle_deg)
    centre = (size - 1) / 2
    # Image rows grow downwards, hence the minus on y for a counter-clockwise angle.
    points = (centre + s * math.cos(a)) + 1j * (centre - s * math.sin(a))
    return _normalise(_splat(points, size))


def _supersampled_grid(size: int, factor: int = 8) -> tuple[np.ndarray, np.ndarray]:
    centre = (size - 1) / 2
    offs = (np.arange(size * factor) + 0.5) / factor - 0.5 - centre
    return np.meshgrid(offs, offs, indexing="ij")


def defocus_kernel(size: int, radius: float) -> np.ndarray:
    """Uniform disk (out-of-focus blur) of `radius` pixels, anti-aliased by 8x8 supersampling.
    Radii beyond the support are clipped."""
    size = _check_size(size)
    radius = float(np.clip(radius, 0.0, size / 2))
    if radius < 0.5:
        radius = 0.5  # smaller disks are a single pixel anyway
    factor = 8
    yy, xx = _supersampled_grid(size, factor)
    inside = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    return _normalise(inside.reshape(size, factor, size, factor).mean(axis=(1, 3)))


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """Isotropic Gaussian of std `sigma` pixels, truncated to the support and renormalised."""
    size = _check_size(size)
    if sigma <= 1e-3:
        return _normalise(np.pad(np.ones((1, 1)), size // 2))
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-0.5 * (r / sigma) ** 2)
    return _normalise(np.outer(g, g))


def _odd_range(cfg: BlurConfig) -> tuple[int, int]:
    lo = cfg.min_kernel if cfg.min_kernel % 2 else cfg.min_kernel + 1
    hi = cfg.max_kernel if cfg.max_kernel % 2 else cfg.max_kernel - 1
    return lo, max(lo, hi)


def sample_kernel(rng: np.random.Generator, cfg: BlurConfig) -> tuple[np.ndarray, dict]:
    """`random_kernel` plus a description of what was drawn (kind and parameters), for metadata."""
    names = [k for k in KINDS if cfg.kinds.get(k, 0) > 0]
    weights = np.array([cfg.kinds[k] for k in names], dtype=np.float64)
    kind = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    lo, hi = _odd_range(cfg)
    size = lo + 2 * int(rng.integers(0, (hi - lo) // 2 + 1))
    span = size - 1
    if kind == "shake":
        params = {
            "length": float(rng.uniform(0.5, 1.6) * span),
            "exposure": float(rng.uniform(0.3, 1.0)),
            "anxiety": float(rng.uniform(0.1, 1.0)),
        }
        kernel = camera_shake_kernel(size, rng, **params)
    elif kind == "linear":
        params = {"length": float(rng.uniform(0.4, 1.0) * span), "angle_deg": float(rng.uniform(0, 180))}
        kernel = linear_motion_kernel(size, **params)
    elif kind == "defocus":
        params = {"radius": float(max(1.0, rng.uniform(0.3, 1.0) * span / 2))}
        kernel = defocus_kernel(size, **params)
    else:
        params = {"sigma": float(max(0.5, rng.uniform(0.4, 1.0) * span / 6))}
        kernel = gaussian_kernel(size, **params)
    return kernel, {"kind": kind, "size": size, **params}


def random_kernel(rng: np.random.Generator, cfg: BlurConfig) -> np.ndarray:
    """A kernel of a kind drawn from ``cfg.kinds``: float32, odd size in [min_kernel, max_kernel], sum 1."""
    return sample_kernel(rng, cfg)[0]


# ------------------------------------------------------------------------------------ image degradation


def _fft_valid(padded_chw: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'valid' 2-D convolution of C x Hp x Wp by a kh x kw kernel through one real FFT.

    A circular convolution at least as large as the padded input equals the linear one on the valid part
    (wrap-around only reaches the first k-1 rows/columns, which are dropped), so no extra zero-padding.
    """
    _, hp, wp = padded_chw.shape
    kh, kw = kernel.shape
    shape = (sfft.next_fast_len(hp, real=True), sfft.next_fast_len(wp, real=True))
    spec = sfft.rfft2(padded_chw, s=shape) * sfft.rfft2(kernel.astype(np.float32), s=shape)
    out = sfft.irfft2(spec, s=shape)
    return out[:, kh - 1 : hp, kw - 1 : wp]


def convolve(pixels: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'Same'-size convolution of every channel (H x W x C or H x W) with an odd kernel, by FFT.

    Borders are reflect-padded (a mirror looks like more of the scene; zero padding would darken them).
    """
    squeeze = pixels.ndim == 2
    img = np.asarray(pixels, dtype=np.float32)
    if squeeze:
        img = img[..., None]
    kernel = np.asarray(kernel, dtype=np.float32)
    kh, kw = kernel.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"kernel sides must be odd, got {kernel.shape}")
    h, w = img.shape[:2]
    mode = "reflect" if min(h, w) > 1 else "edge"  # a 1-pixel side cannot be mirrored
    chw = np.pad(np.moveaxis(img, 2, 0), ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)), mode=mode)
    out = np.ascontiguousarray(np.moveaxis(_fft_valid(chw, kernel), 0, 2), dtype=np.float32)
    return out[..., 0] if squeeze else out


def blur_valid(region: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve H x W x C by a k x k kernel keeping only pixels whose whole footprint is inside the region
    (output (H-k+1) x (W-k+1) x C): blur with the real surroundings instead of mirrored borders."""
    chw = np.ascontiguousarray(np.moveaxis(np.asarray(region, dtype=np.float32), 2, 0))
    return np.ascontiguousarray(np.moveaxis(_fft_valid(chw, kernel), 0, 2), dtype=np.float32)


def add_noise(pixels: np.ndarray, rng: np.random.Generator, cfg: BlurConfig) -> np.ndarray:
    """Sensor noise: Gaussian read noise (std drawn from cfg.noise_std) plus, if cfg.poisson_peak is set,
    shot noise with a photon count at white drawn log-uniformly from that range. Clipped to [0, 1].

    Shot noise uses the Gaussian approximation (variance = value / peak), the Poissonian-Gaussian model of
    Foi et al.: exact enough at realistic photon counts and several times faster than rng.poisson.
    """
    img = np.asarray(pixels, dtype=np.float32)
    std = float(rng.uniform(*cfg.noise_std))
    var: np.ndarray | float = std * std
    if cfg.poisson_peak is not None:
        lo, hi = cfg.poisson_peak
        peak = float(np.exp(rng.uniform(math.log(lo), math.log(hi))))
        var = var + np.clip(img, 0.0, 1.0) / peak
    if np.all(np.asarray(var) == 0):
        return np.clip(img, 0.0, 1.0)
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img + np.sqrt(var).astype(np.float32) * noise, 0.0, 1.0)


def jpeg_recompress(pixels: np.ndarray, quality: int) -> np.ndarray:
    """Encode to JPEG at `quality` (1-100) and decode again: the artefacts of a camera/phone file."""
    img = np.clip(np.asarray(pixels, dtype=np.float32), 0.0, 1.0)
    gray = img.ndim == 2 or img.shape[2] == 1
    arr8 = np.round(img * 255.0).astype(np.uint8)
    pil = Image.fromarray(arr8.reshape(arr8.shape[:2]) if gray else arr8)
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as dec:
        out = np.asarray(dec, dtype=np.float32) / 255.0
    return out.reshape(img.shape)


def camera_noise(pixels: np.ndarray, rng: np.random.Generator, cfg: BlurConfig) -> np.ndarray:
    """What a camera adds after the blur: sensor noise (`add_noise`), then JPEG if ``cfg.jpeg_quality`` is set."""
    out = add_noise(pixels, rng, cfg)
    if cfg.jpeg_quality is not None:
        out = jpeg_recompress(out, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    return out


def degrade_with_kernel(pixels: np.ndarray, kernel: np.ndarray, rng: np.random.Generator, cfg: BlurConfig,
                        valid: bool = False) -> np.ndarray:
    """Blur with a given kernel, then noise and JPEG as in `degrade`. valid=True blurs with the real
    surroundings (see `blur_valid`) and returns an image smaller by k-1 on each axis."""
    blurred = blur_valid(pixels, kernel) if valid else convolve(pixels, kernel)
    return np.clip(camera_noise(blurred, rng, cfg), 0.0, 1.0).astype(np.float32)


def degrade(pixels: np.ndarray, rng: np.random.Generator, cfg: BlurConfig) -> tuple[np.ndarray, np.ndarray]:
    """Blur with a random kernel, add sensor noise, optionally re-compress: (blurred in [0, 1], kernel)."""
    kernel = random_kernel(rng, cfg)
    return degrade_with_kernel(pixels, kernel, rng, cfg), kernel


# ---------------------------------------------------------------------------------------------- folders


_SEED_TAG = 0x626C7572  # "blur"


def tagged_seed(tag: int, seed: int, *keys: int) -> np.random.SeedSequence:
    """The random stream ``keys`` of a generator that calls itself ``tag`` (its name's bytes), under ``seed``.

    The leading tag keeps these streams apart from other users of the same seed (SeedSequence pads with zeros,
    so ``[seed]`` alone would equal ``[seed, 0, 0]``).
    """
    return np.random.SeedSequence([tag, int(seed) % 2**32, *keys])


def _file_seed(seed: int, rel: str) -> np.random.SeedSequence:
    # Seeded by the relative path, not the position in the listing: adding files changes nothing else.
    return tagged_seed(_SEED_TAG, seed, zlib.crc32(rel.encode("utf-8")))


def blur_folder(src: Path, dst: Path, cfg: BlurConfig, seed: int, save_kernels: bool = False) -> int:
    """Blur every image under `src` into PNGs under `dst` (same relative paths, suffix .png).

    Grayscale stays grayscale, 16-bit grayscale stays 16-bit, an alpha channel is blurred with the same
    kernel (no noise). With save_kernels the kernels go to ``dst/kernels/<relative path>.npy``. Unreadable
    files are skipped with a warning naming each and a count at the end. Returns the number written.
    A missing or image-less `src` raises DatasetError. Each file's randomness comes from `seed` and its
    relative path, so a re-run (or a run over more files) reproduces every output.
    """
    from ..imageio import ImageReadError, list_images, read_image, save_png
    from .datasets import DatasetError

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise DatasetError(f"{src}: no such folder")
    files = list_images(src)
    out_root = dst.resolve()
    # An output folder inside the source (photos/ -> photos/blurred/) must not be read back as input.
    files = [f for f in files if not f.resolve().is_relative_to(out_root)]
    if not files:
        raise DatasetError(f"{src}: no image files found (looked for png, jpg, bmp, tif, webp, ...)")
    written, skipped = 0, []
    for path in files:
        rel = path.relative_to(src)
        try:
            data = read_image(path)
        except ImageReadError as exc:
            warnings.warn(f"skipping unreadable image {exc}", stacklevel=2)
            skipped.append(str(path))
            continue
        rng = np.random.default_rng(_file_seed(seed, rel.as_posix()))
        blurred, kernel = degrade(data.pixels, rng, cfg)
        alpha = None if data.alpha is None else np.clip(convolve(data.alpha, kernel), 0.0, 1.0)
        bits = data.bits if (blurred.shape[2] == 1 and alpha is None) else 8
        save_png(dst / rel.with_suffix(".png"), blurred, alpha=alpha, bits=bits)
        if save_kernels:
            kpath = dst / "kernels" / rel.with_suffix(".npy")
            kpath.parent.mkdir(parents=True, exist_ok=True)
            np.save(kpath, kernel)
        written += 1
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable image(s) of {len(files)} under {src}", stacklevel=2)
    return written

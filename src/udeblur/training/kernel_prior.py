"""A blur prior on the sharp set (beyond the paper): ``loss.kernel_prior`` and ``loss.prior_cycle``.

Without it the re-blur loss alone lets E^b settle on one generic kernel for every image (measured: predicted
kernel radius 3.1-3.3 px for true radii 1-8 px), so ``k * s_b = b`` cannot tell a right deblurring from a wrong
one. Here SHARP training crops are blurred with kernels drawn from a camera-shake/defocus/motion prior and E^b
must give back a kernel that blurs them the same way (``loss.kernel_prior``; no gradient reaches the deblurring
path), and G_S must give back the sharp crop (``loss.prior_cycle``: a sharp cycle whose blur is known). Only the
sharp set and the prior are used: the blurred set's true kernels stay unseen, as they are for users' photos.
The blurred copies are not clipped to [-1, 1] (the shipped model was trained so). Measured so far: 2,000 steps
of ``loss.kernel_prior`` did NOT make E^b's kernels image-specific (model card); ``loss.prior_cycle`` carries the gain.

The prior's noise is Gaussian read noise (``loss.prior_noise: gaussian``), or that plus shot noise and JPEG
re-compression as phone photos have (``camera``, the noise of the built-in ``documents`` appearance): a network
trained on clean blur sharpens noise and JPEG blocks into false strokes.

The bank is generated once from the seed; which kernels a step draws depends only on (seed, step), so a
resumed run draws the same kernels as an uninterrupted one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ..archs.blur_encoder import apply_kernel
from ..data.blur import BlurConfig, camera_noise, random_kernel
from ..data.text.config import documents_blur

#: the prior's mixture; broader than the built-in data's blur (sizes from 3 px, more linear/Gaussian)
PRIOR_BLUR = BlurConfig(
    kinds={"shake": 0.55, "defocus": 0.2, "linear": 0.15, "gaussian": 0.1}, min_kernel=3, max_kernel=31,
    noise_std=(0.0, 0.02),
)

#: ``loss.prior_noise: camera``: the noise and JPEG of the built-in ``documents`` blurred set (its kernels unused)
CAMERA_NOISE = documents_blur()

PRIOR_NOISES = ("gaussian", "camera")


class PriorDraw(NamedTuple):
    """One step's draw: kernels (n x K x K), Gaussian noise std per image (n; unused with camera noise, which
    draws its own), and for camera noise the per-step seed of its noise and JPEG (None: Gaussian noise only)."""

    kernels: torch.Tensor
    noise_std: torch.Tensor
    camera_seed: tuple[int, ...] | None = None


class KernelBank:
    """``count`` kernels of the prior, each zero-padded to ``size`` x ``size`` (odd)."""

    def __init__(self, size: int, count: int = 2048, seed: int = 0, blur: BlurConfig = PRIOR_BLUR,
                 noise: str = "gaussian"):
        if size < 1 or size % 2 == 0:
            raise ValueError(f"KernelBank: size must be a positive odd number, got {size}")
        if noise not in PRIOR_NOISES:
            raise ValueError(f"KernelBank: noise must be one of {PRIOR_NOISES}, got {noise!r}")
        self.camera = noise == "camera"
        cfg = BlurConfig(kinds=blur.kinds, min_kernel=min(blur.min_kernel, size), max_kernel=size,
                         noise_std=blur.noise_std)
        rng = np.random.default_rng([seed, 0x6B65726E])  # "kern"
        bank = np.zeros((count, size, size), np.float32)
        for i in range(count):
            k = random_kernel(rng, cfg)
            p = (size - k.shape[0]) // 2
            bank[i, p : p + k.shape[0], p : p + k.shape[1]] = k
        self.kernels = torch.from_numpy(bank)
        self.noise_std = blur.noise_std
        self.seed = seed

    def draw(self, n: int, step: int) -> PriorDraw:
        """This step's kernels (random flips/transposes for variety) and noise."""
        rng = np.random.default_rng([self.seed, step, 0x6B65726E])
        idx = torch.from_numpy(rng.integers(0, len(self.kernels), n))
        k = self.kernels[idx]
        flips = rng.integers(0, 2, (n, 3))
        out = []
        for ki, (fy, fx, tr) in zip(k, flips, strict=True):
            ki = ki.flip(0) if fy else ki
            ki = ki.flip(1) if fx else ki
            out.append(ki.t() if tr else ki)
        lo, hi = self.noise_std
        std = torch.from_numpy(rng.uniform(lo, hi, n).astype(np.float32))
        return PriorDraw(torch.stack(out), std, (self.seed, step, 0x63616D) if self.camera else None)  # "cam"


def blur_with_prior(
    s: torch.Tensor, kernels: torch.Tensor, noise_std: torch.Tensor, camera_seed: tuple[int, ...] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(k * s in float32, the target; k * s + noise in s's dtype, the input) for sharp ``s`` in [-1, 1] (the [0, 1]
    noise std is doubled). With ``camera_seed``, the noise is CAMERA_NOISE's instead (shot noise, JPEG; the input
    then lies in [-1, 1] on 8-bit levels). No gradient."""
    with torch.no_grad():
        clean = apply_kernel(s.float(), kernels.to(s.device))
        if camera_seed is None:
            noisy = clean + 2 * noise_std.to(s.device).view(-1, 1, 1, 1) * torch.randn_like(clean)
        else:
            noisy = _camera_noise(clean, camera_seed)
    return clean, noisy.to(s.dtype)


def _camera_noise(clean: torch.Tensor, seed: tuple[int, ...]) -> torch.Tensor:
    rng = np.random.default_rng(list(seed))
    out = []
    for img in ((clean.detach().cpu().permute(0, 2, 3, 1) + 1) / 2).numpy():
        out.append(camera_noise(img, rng, CAMERA_NOISE))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(clean.device) * 2 - 1

"""The supervised reference method: the SAME deblurring path (E_B^c, shared block, E^b, G_S) trained on PAIRED crops.

This is the reference an unpaired method is held to (the paper compares with supervised networks); it is not an
upper bound (the MSE-only variant gains more PSNR than the L1 + perceptual one, docs/model_card_text.md). It uses
the same networks, step budget, batch size, crop size, Adam settings and learning-rate schedule as the unpaired run
it is compared with, and exports the same ``deblur.safetensors`` so :class:`~udeblur.inference.Deblurrer` and
``udeblur eval --model`` load it unchanged.

Paired training data (why and how). The unpaired data has no pairs by design, so pairs are synthesised on
the fly from the SHARP training images (``train/sharp``): for each sample a random crop is taken with a
margin of half the kernel size, blurred with a kernel drawn from the domain's blur model
(:func:`udeblur.data.blur.sample_kernel`) using the real surroundings (``degrade_with_kernel(valid=True)``,
exactly how the built-in text domain makes its test pairs), noise added, and paired with the crop's centre.
The blur model is the one in the data root's ``meta.json`` (the built-in text domain writes it); other data
roots fall back to :class:`~udeblur.data.blur.BlurConfig` defaults, which then need not match how their
blurred images were made. Every sample is a pure function of ``(seed, step, position)``, so a resumed run
sees the same data. The test images are never used.

Loss: ``10 * L1(s_hat, s) + perceptual * ||phi(s_hat) - phi(s)||^2`` (phi: the config's perceptual net and
layer, VGG-16 conv3_3 by default; ``perceptual`` = ``loss.perceptual`` of the config, 0.1 by default), the
same L1/perceptual weight ratio as the unpaired model's cycle/perceptual terms. With ``loss.prior_cycle_norm: l2``
the pixel term is ``10 * MSE`` instead: it is the norm of the unpaired model's own paired term (the prior cycle), so
the reference is trained the way that term is (variant ``supervised_l2``: MSE alone). The blur code is used
deterministically (z = mu), as at test time, and there is no content noise (it belongs to the two-domain
translation, not to this path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import ExperimentConfig
from ..data.blur import BlurConfig, degrade_with_kernel, sample_kernel
from ..data.datasets import pad_to, resize_shorter, to_tensor
from ..imageio import list_images, load_pixels
from ..losses.regularizers import pixel_loss
from ..model import DeblurNet, Translator
from ..training.precision import grad_scaler
from ..visualize import to_numpy_image
from .base import Method, MethodContext, TrainData, endless

__all__ = ["PairedCropSampler", "SupervisedMethod", "domain_blur_config"]

PIXEL_WEIGHT = 10.0  # of the L1 (or MSE) term; the perceptual weight is the config's
_TAG = 0x73757076  # "supv": keeps these streams apart from other users of the same seed


def domain_blur_config(root: str | Path) -> tuple[BlurConfig, str]:
    """The blur model of a data root: from its ``meta.json`` (built-in text domain) or the defaults.

    Returns (config, where it came from) so reports can say which.
    """
    from ..data.text import read_domain_meta

    meta = read_domain_meta(Path(root))  # None without a readable meta.json
    try:
        return BlurConfig(**meta["config"]["blur"]), str(Path(root) / "meta.json")
    except (KeyError, TypeError, ValueError):
        return BlurConfig(), "BlurConfig defaults (no meta.json with a blur config in the data root)"


def _sharp_folder(root: Path) -> Path:
    from ..data.datasets import find_domain_folders

    return find_domain_folders(root).sharp


class PairedCropSampler:
    """Synthetic (sharp, blurred) training pairs from sharp images; batch of ``step`` = f(seed, step)."""

    def __init__(self, sharp_files: list[Path], blur: BlurConfig, crop_size: int, load_size: int = 0,
                 channels: int = 3, seed: int = 0):
        if not sharp_files:
            raise ValueError("no sharp training images to make pairs from")
        self.files = [str(f) for f in sharp_files]
        self.blur, self.crop, self.load_size, self.channels, self.seed = blur, crop_size, load_size, channels, seed

    def sample(self, step: int, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([_TAG, self.seed % 2**32, int(step), int(position)])
        pixels = load_pixels(self.files[int(rng.integers(len(self.files)))], self.channels)
        if self.load_size > 0:
            pixels = resize_shorter(pixels, self.load_size)
        kernel, _ = sample_kernel(rng, self.blur)
        m = kernel.shape[0] // 2
        size = self.crop + 2 * m
        pixels = pad_to(pixels, size)
        h, w = pixels.shape[:2]
        y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        region = np.ascontiguousarray(pixels[y:y + size, x:x + size])
        blurred = degrade_with_kernel(region, kernel, rng, self.blur, valid=True)  # real surroundings
        sharp = region[m:m + self.crop, m:m + self.crop]
        return to_tensor(sharp), to_tensor(blurred)

    def batch(self, step: int, batch_size: int, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions ``start .. start + batch_size - 1`` of the step's global batch (a rank's share)."""
        pairs = [self.sample(step, i) for i in range(start, start + batch_size)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


class SupervisedMethod(Method):
    """The deblurring path alone, trained on paired crops: one network, one Adam, a pixel + perceptual loss."""

    name = "supervised"
    export_suffix = "-supervised"

    def __init__(self, cfg: ExperimentConfig, ctx: MethodContext):
        super().__init__(cfg, ctx)
        t = cfg.train
        # built through the Translator so the path starts from the unpaired model's initial weights for the seed
        self.net = Translator(cfg.model).deblur_net().to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=t.lr, betas=(t.beta1, t.beta2))
        self.scaler = grad_scaler(self.amp)
        self.sampler: PairedCropSampler | None = None  # made by make_data: it needs the data root
        self.blur_source = ""
        self._perceptual = None
        if cfg.loss.perceptual > 0:
            from ..archs.vgg import load_perceptual_net

            w = cfg.loss
            self._perceptual = load_perceptual_net(w.perceptual_net, w.perceptual_layer, w.vgg19_weights,
                                                   device=self.device)

    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optim": self.opt}

    def deblur_net(self) -> DeblurNet:
        return self.net

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"net": self.net.state_dict(), "optim": self.opt.state_dict()}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["optim"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    def make_data(self, root: Path, start_step: int) -> TrainData:
        blur, self.blur_source = domain_blur_config(root)
        t = self.cfg.train
        files = list_images(_sharp_folder(Path(root)))
        self.sampler = sampler = PairedCropSampler(files, blur, self.cfg.data.crop_size, self.cfg.data.load_size,
                                                   self.cfg.model.channels, t.seed)
        per_rank = t.batch_size // self.dist.world_size
        first = self.dist.rank * per_rank

        def batch_of(step: int) -> dict[str, torch.Tensor]:
            s, b = sampler.batch(step, per_rank, start=first)
            return {"sharp": s, "blurred": b}

        def preview() -> dict[str, torch.Tensor]:
            s, b = sampler.batch(0, 4)
            return {"sharp": s, "blurred": b}

        return TrainData(endless(batch_of, start_step), preview)

    def preview(self, batch: dict[str, torch.Tensor]) -> list[list[np.ndarray]]:
        """Rows of blurred | deblurred | sharp."""
        s, b = batch["sharp"].to(self.device), batch["blurred"].to(self.device)
        was_training = self.net.training
        self.net.eval()
        try:
            with torch.no_grad():
                out = self.net(b)
        finally:
            self.net.train(was_training)
        return [[to_numpy_image(t[i]) for t in (b, out, s)] for i in range(s.shape[0])]

    def on_fit_start(self, run_dir: Path) -> None:
        files = self.sampler.files if self.sampler is not None else []
        (run_dir / "paired_data.txt").write_text(
            f"paired crops synthesised from {files and Path(files[0]).parent}\nblur model: {self.blur_source}\n"
        )

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        from ..losses.perceptual import perceptual_loss

        s = batch["sharp"].to(self.device, non_blocking=True)
        b = batch["blurred"].to(self.device, non_blocking=True)
        self.net.train()
        norm = self.cfg.loss.prior_cycle_norm
        with self.autocast():
            out = self.net(b)
            pixel = pixel_loss(norm)(out.float(), s)
            loss = PIXEL_WEIGHT * pixel
            terms = {norm: pixel}
            if self._perceptual is not None:
                # here the target is the SHARP image (paired), unlike the unpaired model's own-input target
                p = perceptual_loss(self._perceptual, out, s, self.cfg.loss.perceptual_layer)
                loss = loss + self.cfg.loss.perceptual * p
                terms["perceptual"] = p
        terms["total"] = loss
        _, logs = self.backward_step(loss, self.net, self.opt, "supervised", terms, step, self.scaler)
        return logs

"""Supervised reference: the SAME deblurring path (E_B^c, shared block, E^b, G_S) trained on PAIRED crops.

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

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import ExperimentConfig, config_from_dict
from ..data.blur import BlurConfig, degrade_with_kernel, sample_kernel
from ..data.datasets import pad_to, resize_shorter, to_tensor
from ..imageio import list_images, load_pixels
from ..losses.regularizers import pixel_loss
from ..model import Translator
from ..model_files import export_deblur_net, load_checkpoint, save_checkpoint
from ..training.run_logger import RunLogger

__all__ = ["PairedCropSampler", "SupervisedTrainer", "domain_blur_config"]

CHECKPOINT_NAME = "checkpoints/last.pt"
EXPORT_NAME = "deblur.safetensors"
PIXEL_WEIGHT = 10.0  # of the L1 (or MSE) term; the perceptual weight is the config's
_TAG = 0x73757076  # "supv": keeps these streams apart from other users of the same seed


def domain_blur_config(root: str | Path) -> tuple[BlurConfig, str]:
    """The blur model of a data root: from its ``meta.json`` (built-in text domain) or the defaults.

    Returns (config, where it came from) so reports can say which.
    """
    meta = Path(root) / "meta.json"
    try:
        blur = json.loads(meta.read_text())["config"]["blur"]
        return BlurConfig(**blur), str(meta)
    except (OSError, ValueError, KeyError, TypeError):
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

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [self.sample(step, i) for i in range(batch_size)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


class SupervisedTrainer:
    """Train the deblurring path on paired crops; same run-folder layout as the unpaired Trainer
    (``checkpoints/last.pt``, ``deblur.safetensors``, ``log.jsonl``, ``config.yaml``). Resumable."""

    def __init__(self, cfg: ExperimentConfig, run_dir: str | Path, data_root: str | Path, resume: bool = False,
                 progress: bool = True):
        from ..training.trainer import resolve_device

        self.run_dir = Path(run_dir)
        ckpt = self.run_dir / CHECKPOINT_NAME
        state: dict[str, Any] | None = None
        if ckpt.exists():
            if not resume:
                raise FileExistsError(f"{self.run_dir} already holds a checkpoint; resume it or use another folder")
            state = load_checkpoint(ckpt)
            saved = state["config"]
            saved["train"]["total_steps"] = cfg.train.total_steps  # the budget may be extended on resume
            cfg = config_from_dict(saved)
        self.cfg = cfg
        self.progress = progress
        self.device = resolve_device(cfg.train.device)
        torch.manual_seed(cfg.train.seed)
        self.net = Translator(cfg.model).deblur_net().to(self.device)
        t = cfg.train
        self.opt = torch.optim.Adam(self.net.parameters(), lr=t.lr, betas=(t.beta1, t.beta2))
        self.step = 0
        if state is not None:
            self.net.load_state_dict(state["net"])
            self.opt.load_state_dict(state["optim"])
            self.step = int(state["step"])
            torch.set_rng_state(state["rng"])
        self.data_root = Path(data_root)
        blur, self.blur_source = domain_blur_config(self.data_root)
        files = list_images(_sharp_folder(self.data_root))
        self.sampler = PairedCropSampler(files, blur, cfg.data.crop_size, cfg.data.load_size, cfg.model.channels,
                                         cfg.train.seed)
        self._perceptual = None
        if cfg.loss.perceptual > 0:
            from ..archs.vgg import load_perceptual_net

            w = cfg.loss
            self._perceptual = load_perceptual_net(w.perceptual_net, w.perceptual_layer, w.vgg19_weights,
                                                   device=self.device)

    def save(self) -> None:
        save_checkpoint(self.run_dir / CHECKPOINT_NAME, {
            "step": self.step, "config": self.cfg.to_dict(), "net": self.net.state_dict(),
            "optim": self.opt.state_dict(), "rng": torch.get_rng_state(), "kind": "supervised",
        })
        export_deblur_net(self.net, self.cfg.model, self.run_dir / EXPORT_NAME, step=str(self.step),
                          name=f"{self.cfg.name}-supervised")

    def train_step(self) -> dict[str, float]:
        from ..losses.perceptual import perceptual_loss
        from ..training.trainer import lr_factor

        lr = self.cfg.train.lr * lr_factor(self.step, self.cfg.train)
        for group in self.opt.param_groups:
            group["lr"] = lr
        s, b = self.sampler.batch(self.step, self.cfg.train.batch_size)
        s, b = s.to(self.device), b.to(self.device)
        self.net.train()
        out = self.net(b)
        norm = self.cfg.loss.prior_cycle_norm
        pixel = pixel_loss(norm)(out, s)
        loss = PIXEL_WEIGHT * pixel
        logs = {"lr": lr, norm: float(pixel.detach())}
        if self._perceptual is not None:
            # here the target is the SHARP image (paired), unlike the unpaired model's own-input target
            p = perceptual_loss(self._perceptual, out, s, self.cfg.loss.perceptual_layer)
            loss = loss + self.cfg.loss.perceptual * p
            logs["perceptual"] = float(p.detach())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"step {self.step}: supervised loss is not finite; lower train.lr")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        logs["total"] = float(loss.detach())
        self.step += 1
        return logs

    def fit(self, max_steps: int | None = None, time_limit: float | None = None) -> Path:
        started = time.perf_counter()
        t = self.cfg.train
        end = t.total_steps if max_steps is None else min(t.total_steps, self.step + max_steps)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(self.cfg.to_yaml())
        (self.run_dir / "paired_data.txt").write_text(
            f"paired crops synthesised from {self.sampler.files and Path(self.sampler.files[0]).parent}\n"
            f"blur model: {self.blur_source}\n"
        )
        logger = RunLogger(self.run_dir, tensorboard=False)
        bar = tqdm(total=end, initial=self.step, disable=not self.progress, desc=f"{self.cfg.name} supervised",
                   unit="it", dynamic_ncols=True)
        last = time.perf_counter()
        last_step = self.step
        try:
            while self.step < end:
                if time_limit is not None and time.perf_counter() - started > time_limit:
                    break
                logs = self.train_step()
                bar.update(1)
                final = self.step == end
                if self.step % t.log_every == 0 or final:
                    now = time.perf_counter()
                    logs["sec_per_it"] = (now - last) / max(1, self.step - last_step)
                    last, last_step = now, self.step
                    logger.scalars(self.step, logs)
                    norm = self.cfg.loss.prior_cycle_norm
                    bar.set_postfix({norm: f"{logs[norm]:.3g}"})
                if self.step % t.checkpoint_every == 0:
                    self.save()
            self.save()
        except KeyboardInterrupt:
            self.save()
            raise
        finally:
            bar.close()
            logger.close()
        return self.run_dir / CHECKPOINT_NAME

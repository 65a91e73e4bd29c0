"""GAN losses over multi-scale discriminator outputs (lists of patch logits), summed over scales."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _target_loss(logits: torch.Tensor, target: float, mode: str) -> torch.Tensor:
    logits = logits.float()  # losses in fp32 even under autocast
    if mode == "bce":  # the paper's: sigmoid output + binary cross-entropy
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))
    if mode == "lsgan":
        return F.mse_loss(logits, torch.full_like(logits, target))
    raise ValueError(f"unknown GAN mode {mode!r}")


def discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor], mode: str = "bce") -> torch.Tensor:
    """D is trained to call real images 1 and generated ones 0, at every scale."""
    return sum(_target_loss(r, 1.0, mode) + _target_loss(f, 0.0, mode) for r, f in zip(real, fake, strict=True))


def generator_loss(fake: list[torch.Tensor], mode: str = "bce") -> torch.Tensor:
    """G is trained to make D call its outputs real (non-saturating form for BCE)."""
    return sum(_target_loss(f, 1.0, mode) for f in fake)

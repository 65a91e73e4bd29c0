"""KL, L1 and L2 terms of the objective."""

from __future__ import annotations

from collections.abc import Callable

import torch


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) = 1/2 * sum(mu^2 + sigma^2 - log sigma^2 - 1).

    Summed over the latent dimensions and averaged over the batch, so the weight does not depend on batch size
    (the authors' code also summed over the batch).
    """
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).sum(dim=1).mean()


def l1_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (cross-cycle, self-reconstruction and latent regression terms)."""
    return (x.float() - y.float()).abs().mean()


def l2_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error (the prior cycle with ``loss.prior_cycle_norm: l2``)."""
    return (x.float() - y.float()).pow(2).mean()


def pixel_loss(norm: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The paired pixel term for ``loss.prior_cycle_norm`` ("l1" or "l2"): the prior cycle and the supervised
    reference both use it."""
    return {"l1": l1_loss, "l2": l2_loss}[norm]

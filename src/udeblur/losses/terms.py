"""The table of loss terms: the one list the progress bar, the report's curves and the tests derive from.

``training/objective.py`` computes the terms (each under ``if w.<weight> > 0``); a new term is one row here, its
weight in ``LossConfig`` and its lines in the objective. ``tests/test_losses.py`` checks the three agree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LossTerm:
    name: str  # the key in the objective's terms and in log.jsonl
    weight: str | None  # the LossConfig field that scales and switches it; None: a method's own, unweighted term
    group: str  # "generator" (encoders + generators), "discriminator", or "supervised" (the paired reference)
    bar: bool  # shown in the training progress bar
    about: str


LOSS_TERMS: tuple[LossTerm, ...] = (
    LossTerm("adv", "adv", "generator", True, "adversarial: s_b and b_s against the sharp / blurred discriminators"),
    LossTerm("cycle", "cycle", "generator", True, "cross-cycle consistency: s and b back after two translations"),
    LossTerm("perceptual", "perceptual", "generator", True, "VGG features of s_b vs its own blurred input"),
    LossTerm("kl", "kl", "generator", True, "KL of the blur code to N(0, I)"),
    LossTerm("self_recon", "self_recon", "generator", False, "each domain rebuilt from its own content and code"),
    LossTerm("latent_regression", "latent_regression", "generator", False,
             "E^b (frozen) recovers a random blur code from the image made with it"),
    LossTerm("reblur", "reblur", "generator", False, "the deblurred image blurred with E^b's kernel gives back b"),
    LossTerm("kernel_prior", "kernel_prior", "generator", False,
             "E^b's kernel reproduces a blur drawn from the blur prior"),
    LossTerm("prior_cycle", "prior_cycle", "generator", False, "G_S deblurs sharp crops blurred by the prior"),
    LossTerm("random_z_adv", "random_z_adv", "generator", False,
             "adversarial on outputs made with a random blur code (second pair of discriminators)"),
    LossTerm("d_sharp", "adv", "discriminator", True, "sharp discriminator: real s vs s_b"),
    LossTerm("d_blurred", "adv", "discriminator", False, "blurred discriminator: real b vs b_s"),
    LossTerm("d_sharp_random", "random_z_adv", "discriminator", False, "random-z sharp discriminator"),
    LossTerm("d_blurred_random", "random_z_adv", "discriminator", False, "random-z blurred discriminator"),
    LossTerm("l1", None, "supervised", False, "supervised reference: L1 to the paired sharp image"),
    LossTerm("l2", None, "supervised", False, "supervised reference: mean squared error to the paired sharp image"),
)

# logged sums: "g_total" of the weighted generator terms, "total" of the supervised reference
TOTAL_KEYS = ("g_total", "total")
BAR_KEYS = frozenset([t.name for t in LOSS_TERMS if t.bar] + ["g_total"])
# report panels: the terms in table order, then the totals
CURVE_KEYS = tuple(t.name for t in LOSS_TERMS) + TOTAL_KEYS


def terms_of(group: str) -> tuple[LossTerm, ...]:
    return tuple(t for t in LOSS_TERMS if t.group == group)

"""Named variants: the full model, its ablations, CycleGAN, the supervised reference and the evaluation-only
baselines, each as a kind plus a list of ``a.b=value`` config overrides on top of a base config.

Kinds
    * ``unpaired``: trained by the normal :class:`udeblur.training.trainer.Trainer` on unpaired data.
    * ``supervised``: the same deblurring path trained on PAIRED crops, by the same Trainer (the kind sets
      ``train.method=supervised``, :mod:`udeblur.methods.supervised`).
    * ``baseline``: nothing to train; evaluated directly (:mod:`udeblur.evaluation.baselines`).

Train one by name::

    udeblur compare --list                           # names, kinds and overrides
    udeblur train -c small -o runs/no_kl loss.kl=0   # = the overrides of "no_kl"

or list it under ``variants:`` of a compare config (see :mod:`udeblur.evaluation.compare`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .baselines import BASELINES

__all__ = ["BUILTIN_VARIANTS", "Variant", "get_variant"]

KINDS = ("unpaired", "supervised", "baseline")


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str
    overrides: tuple[str, ...] = field(default_factory=tuple)
    label: str = ""  # how tables and plots name it
    note: str = ""

    @property
    def trained(self) -> bool:
        return self.kind in ("unpaired", "supervised")

    @property
    def title(self) -> str:
        return self.label or self.name


def _baseline_variant(name: str) -> Variant:
    b = BASELINES[name]
    return Variant(b.name, "baseline", (), b.label, b.note)


_NO_BLUR_CODE = ("loss.kl=0", "loss.latent_regression=0", "loss.random_z_adv=0")

BUILTIN_VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("ours", "unpaired", (), "ours (full model)", "the paper's model and losses"),
        Variant(
            "cyclegan", "unpaired",
            ("model.blur_encoder=false", "model.shared_content=false", *_NO_BLUR_CODE, "loss.perceptual=0",
             "loss.self_recon=0"),
            "CycleGAN",
            "same building blocks; no blur encoder, no shared content layer, only adversarial + cycle losses",
        ),
        # the norm is pinned: the supervised method's pixel term follows loss.prior_cycle_norm, which a compare
        # config's shared overrides might set for its unpaired variants
        Variant("supervised", "supervised", ("loss.prior_cycle_norm=l1",), "supervised (paired, L1+perceptual)",
                "the same deblurring path trained on paired crops: the reference an unpaired method is held to"),
        Variant("supervised_l2", "supervised", ("loss.prior_cycle_norm=l2", "loss.perceptual=0"),
                "supervised (paired, MSE)", "the same, PSNR-oriented: mean squared error alone, no perceptual term"),
        Variant("no_kl", "unpaired", ("loss.kl=0",), "ours w/o KL loss"),
        Variant("no_perceptual", "unpaired", ("loss.perceptual=0",), "ours w/o perceptual loss"),
        Variant("no_blur_encoder", "unpaired", ("model.blur_encoder=false", *_NO_BLUR_CODE),
                "ours w/o blur encoder", "z = 0 for the generators; KL/latent-regression/random-z need z"),
        Variant("no_shared_content", "unpaired", ("model.shared_content=false",), "ours w/o shared content layer"),
        Variant("no_cycle", "unpaired", ("loss.cycle=0",), "ours w/o cycle loss"),
        Variant("no_random_z", "unpaired", ("loss.random_z_adv=0", "loss.latent_regression=0"),
                "ours w/o random-z branch"),
        # the evaluation-only baselines, as registered in baselines.py
        *(_baseline_variant(name) for name in BASELINES),
    )
}


def get_variant(name: str) -> Variant:
    if name in BUILTIN_VARIANTS:
        return BUILTIN_VARIANTS[name]
    if name in BASELINES:  # registered after this module was imported
        return _baseline_variant(name)
    raise KeyError(f"unknown variant {name!r}; built-in: {', '.join(BUILTIN_VARIANTS)}")

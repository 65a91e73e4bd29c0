"""Loss functions and the objective's switches."""

import dataclasses
import math

import pytest
import torch

from udeblur.config import LossConfig, load_config, replace
from udeblur.losses.adversarial import discriminator_loss, generator_loss
from udeblur.losses.regularizers import kl_loss, l1_loss
from udeblur.losses.terms import BAR_KEYS, CURVE_KEYS, LOSS_TERMS, terms_of
from udeblur.model import Discriminators, Translator
from udeblur.training.kernel_prior import KernelBank
from udeblur.training.objective import discriminator_objective, generator_objective, make_fakes


def test_kl_matches_hand_computation():
    mu = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)], [math.log(0.25), 0.0]])
    # per sample: 1/2 * sum(mu^2 + sigma^2 - log sigma^2 - 1)
    s1 = 0.5 * ((0.25 + 1 - 0 - 1) + (1 + 4 - math.log(4) - 1))
    s2 = 0.5 * ((0 + 0.25 - math.log(0.25) - 1) + (4 + 1 - 0 - 1))
    assert kl_loss(mu, logvar).item() == pytest.approx((s1 + s2) / 2, rel=1e-6)
    assert kl_loss(torch.zeros(3, 8), torch.zeros(3, 8)).item() == 0.0


def test_gan_losses_bce_and_lsgan():
    real, fake = [torch.full((1, 1, 2, 2), 10.0)], [torch.full((1, 1, 2, 2), -10.0)]
    assert discriminator_loss(real, fake, "bce").item() < 1e-3  # a perfect D
    assert generator_loss(fake, "bce").item() == pytest.approx(10.0, abs=1e-3)  # -log(sigmoid(-10))
    assert generator_loss([torch.zeros(1, 1, 2, 2)] * 3, "lsgan").item() == pytest.approx(3.0)  # summed over scales
    assert l1_loss(torch.ones(2, 2), torch.zeros(2, 2)).item() == 1.0


# every generator term, switched by its weight (the table in udeblur/losses/terms.py)
TERMS = {t.weight: t.name for t in terms_of("generator")}
# a config in which every term of the objective is on: the blur-kernel terms need E^b's kernel head
ALL_ON = ["model.kernel_size=7", "loss.reblur=10", "loss.kernel_prior=10", "loss.prior_cycle=10"]


def _objective(loss_overrides, seed=0, base=("loss.perceptual=0",)):
    cfg = load_config("tiny", list(base))
    cfg = replace(cfg, loss=loss_overrides)
    g = torch.Generator().manual_seed(seed)
    s, b = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1, torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    torch.manual_seed(seed)
    t = Translator(cfg.model)
    torch.manual_seed(seed + 1)  # same forward-pass noise whether or not the random-z pair is built
    d = Discriminators(cfg.model, random_z=cfg.loss.random_z_adv > 0)
    torch.manual_seed(seed + 2)
    fakes = make_fakes(t, s, b, cfg.loss)
    w = cfg.loss
    prior = KernelBank(7, count=16).draw(2, step=0) if w.kernel_prior > 0 or w.prior_cycle > 0 else None
    # a stand-in for the VGG features (no weights needed): the term's switch is what is tested
    g_terms, _ = generator_objective(t, d, s, b, fakes, w, perceptual=l1_loss, prior=prior)
    d_terms = discriminator_objective(d, s, b, fakes, w)
    return g_terms, d_terms, t, d


@pytest.mark.parametrize("weight", list(TERMS))
def test_each_switch_removes_its_term(weight):
    full, _, _, _ = _objective({}, base=ALL_ON)
    off, d_terms, _, d = _objective({weight: 0.0}, base=ALL_ON)
    assert TERMS[weight] in full and full[TERMS[weight]].item() > 0
    assert TERMS[weight] not in off
    # the other terms are untouched (same seed, same forward passes); prior_cycle samples a blur code from the
    # global RNG, whose position depends on the noise the terms before it drew
    for k in set(off) - {"prior_cycle"}:
        assert off[k].item() == pytest.approx(full[k].item(), rel=1e-5), k
    if weight == "random_z_adv":
        assert d.sharp_random is None and "d_sharp_random" not in d_terms
    if weight == "adv":
        assert "d_sharp" not in d_terms


def test_weights_scale_terms():
    base, _, _, _ = _objective({})
    doubled, _, _, _ = _objective({"cycle": 20.0, "kl": 0.02})
    assert doubled["cycle"].item() == pytest.approx(2 * base["cycle"].item(), rel=1e-5)
    assert doubled["kl"].item() == pytest.approx(2 * base["kl"].item(), rel=1e-5)


def test_random_z_terms_do_not_train_the_blur_encoder():
    cfg = load_config("tiny", ["loss.perceptual=0"])
    only = {k: 0.0 for k in ("adv", "kl", "cycle", "self_recon", "random_z_adv")}
    g_terms, _, t, _ = _objective(only)
    assert set(g_terms) == {"latent_regression"}
    g_terms["latent_regression"].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in t.blur.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in t.gen.blurred.parameters())
    assert cfg.loss.latent_regression == 10.0


def test_perceptual_term_compares_deblurred_with_its_own_input():
    cfg = load_config("tiny")
    t, d = Translator(cfg.model), Discriminators(cfg.model)
    s, b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    seen = {}

    def fake_perceptual(x, y):
        seen["x"], seen["y"] = x, y
        return (x - y).pow(2).mean()

    fakes = make_fakes(t, s, b, cfg.loss)
    terms, _ = generator_objective(t, d, s, b, fakes, cfg.loss, fake_perceptual)
    assert seen["x"] is fakes["s_b"] and seen["y"] is b
    assert terms["perceptual"].item() == pytest.approx(0.1 * (fakes["s_b"] - b).pow(2).mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match="perceptual"):
        generator_objective(t, d, s, b, fakes, cfg.loss, None)


def test_every_loss_weight_has_a_row_in_the_table():
    weights = {f.name for f in dataclasses.fields(LossConfig) if f.type in ("float", float)}
    assert weights == {t.weight for t in LOSS_TERMS if t.weight is not None}
    names = [t.name for t in LOSS_TERMS]
    assert len(names) == len(set(names))
    assert {t.group for t in LOSS_TERMS} == {"generator", "discriminator", "supervised"}


def test_every_term_the_objective_emits_is_in_the_table():
    g_terms, d_terms, _, _ = _objective({"perceptual": 0.1}, base=ALL_ON)
    assert set(g_terms) == {t.name for t in terms_of("generator")}  # all on: every generator row is emitted
    assert set(d_terms) == {t.name for t in terms_of("discriminator")}
    assert set(BAR_KEYS) <= set(CURVE_KEYS) and "g_total" in BAR_KEYS

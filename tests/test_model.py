"""Networks: sizes, shapes, weight sharing, determinism, parameter counts against the authors' code."""

import pytest
import torch

from udeblur.config import load_config
from udeblur.model import DeblurNet, Discriminators, Translator, count_parameters


@pytest.fixture(scope="module")
def tiny():
    return load_config("tiny").model


def test_paper_parameter_counts_match_authors_code():
    cfg = load_config("paper").model
    t, d = Translator(cfg), Discriminators(cfg)
    # method.md: E_S^c+E_B^c+shared 9.02 M, E^b 1.34 M, G_S+G_B 9.56 M, one discriminator 8.27 M, path 11.8 M
    assert round(count_parameters(t.content) / 1e6, 2) == 9.02
    assert round(count_parameters(t.blur) / 1e6, 2) == 1.34
    assert round(count_parameters(t.gen) / 1e6, 2) == 9.56
    assert round(count_parameters(d.sharp) / 1e6, 2) == 8.27
    assert round(count_parameters(t.deblur_net()) / 1e6, 1) == 11.8
    assert len(d.sharp.scales) == 3


def test_shared_blocks_are_the_same_parameters(tiny):
    t = Translator(tiny)
    shared_ids = {id(p) for p in t.content.shared.parameters()}
    assert shared_ids and all(id(p) not in shared_ids for p in t.content.sharp.parameters())
    # the shared block's parameters are stored once although both encoders use them
    with torch.no_grad():
        s = torch.randn(1, 3, 16, 16)
        before = t.content.encode_blurred(s.clone())
        for p in t.content.shared.parameters():
            p.add_(0.5)
        t.eval()
        after_b = t.content.encode_blurred(s)
        t.train()
    assert not torch.allclose(before, after_b)
    gen_shared = {id(p) for p in t.gen.shared.parameters()}
    assert gen_shared.isdisjoint({id(p) for p in t.gen.sharp.parameters()})
    net = t.deblur_net()
    assert {id(p) for p in net.content_shared.parameters()} == shared_ids


@pytest.mark.parametrize("h,w", [(37, 53), (32, 32), (8, 8)])
def test_translation_shapes(tiny, h, w):
    t = Translator(tiny)
    hp, wp = (h + 3) // 4 * 4, (w + 3) // 4 * 4  # networks need multiples of 4; Deblurrer pads
    s, b = torch.randn(2, 3, hp, wp), torch.randn(2, 3, hp, wp)
    out = t.translate(s, b)
    assert out["s_b"].shape == b.shape and out["b_s"].shape == s.shape
    assert out["mu"].shape == (2, tiny.blur_latent) and out["z"].shape == (2, tiny.blur_latent)
    s_hat, b_hat = t.cycle(out["s_b"], out["b_s"], out["z"])
    assert s_hat.shape == s.shape and b_hat.shape == b.shape
    assert out["s_b"].abs().max() <= 1.0


def test_content_noise_only_in_training(tiny):
    t = Translator(tiny)
    x = torch.randn(1, 3, 16, 16)
    t.train()
    a, b = t.content.encode_blurred(x), t.content.encode_blurred(x)
    assert not torch.allclose(a, b)
    t.eval()
    assert torch.equal(t.content.encode_blurred(x), t.content.encode_blurred(x))


def test_deblur_is_deterministic_and_uses_mu(tiny):
    t = Translator(tiny).train()
    x = torch.randn(2, 3, 20, 24)
    assert torch.equal(t.deblur(x), t.deblur(x))
    assert t.training  # mode restored
    net = t.deblur_net().eval()
    mu = t.blur(x)[0]
    assert torch.allclose(net(x), net(x, mu))


def test_deblur_net_from_config_loads_translator_weights(tiny):
    t = Translator(tiny)
    fresh = DeblurNet.from_config(tiny)
    fresh.load_state_dict(t.deblur_net().state_dict())
    x = torch.randn(1, 3, 12, 16)
    assert torch.equal(fresh.eval()(x), t.deblur(x))


def test_discriminators_are_multi_scale_and_optional_random_pair(tiny):
    d = Discriminators(tiny, random_z=False)
    assert d.sharp_random is None
    outs = d.sharp(torch.randn(1, 3, 32, 32))
    assert len(outs) == tiny.disc_scales and outs[0].shape[-1] > outs[1].shape[-1]


def test_ablation_switches_change_the_networks():
    from udeblur.config import ConfigError

    base = load_config("tiny").model
    no_share = load_config("tiny", ["model.shared_content=false"]).model
    t = Translator(no_share)
    assert t.content.blurred_last is not t.content.shared
    assert count_parameters(t) > count_parameters(Translator(base))
    assert t.deblur_net().content_shared is t.content.blurred_last

    overrides = ["model.blur_encoder=false", "loss.kl=0", "loss.latent_regression=0", "loss.random_z_adv=0"]
    no_blur = Translator(load_config("tiny", overrides).model)
    assert no_blur.blur is None
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(no_blur.translate(x, x)["z"], torch.zeros(2, base.blur_latent))
    assert no_blur.deblur(x).shape == x.shape
    with pytest.raises(ConfigError, match="blur_encoder"):
        load_config("tiny", ["model.blur_encoder=false"])

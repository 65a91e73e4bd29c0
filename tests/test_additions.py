"""Additions beyond the paper (the `text` preset): global skip and the explicit-kernel re-blur loss."""

import numpy as np
import pytest
import torch

from udeblur.archs.blur_encoder import apply_kernel
from udeblur.config import ConfigError, load_config
from udeblur.data.blur import camera_shake_kernel, convolve
from udeblur.model import Discriminators, Translator
from udeblur.training.objective import generator_objective, make_fakes

ADDITIONS = ["model.global_skip=true", "model.kernel_size=7", "loss.reblur=10", "loss.perceptual=0"]


def test_global_skip_starts_as_identity():
    t = Translator(load_config("tiny", ["model.global_skip=true"]).model)
    b = torch.rand(2, 3, 16, 16) * 1.8 - 0.9
    assert torch.allclose(t.deblur(b), b, atol=1e-5)
    out = t.translate(b, b)
    assert torch.allclose(out["b_s"], b, atol=1e-5)


def test_apply_kernel_matches_numpy_convolution():
    rng = np.random.default_rng(0)
    k = camera_shake_kernel(9, rng)
    img = rng.random((24, 30, 3)).astype(np.float32)
    ref = convolve(img, k)
    got = apply_kernel(torch.from_numpy(img).permute(2, 0, 1)[None], torch.from_numpy(k)[None])[0].permute(1, 2, 0)
    inner = (slice(5, -5), slice(5, -5))  # borders: both reflect, possibly with different conventions
    assert np.abs(got.numpy()[inner] - ref[inner]).max() < 1e-5


def test_kernel_head_is_a_normalised_near_delta_at_start():
    t = Translator(load_config("tiny", ADDITIONS).model)
    mu, logvar, k = t.blur.forward_with_kernel(torch.rand(3, 3, 32, 32))
    assert k.shape == (3, 7, 7) and (k >= 0).all()
    assert torch.allclose(k.sum(dim=(1, 2)), torch.ones(3))
    assert (k[:, 3, 3] > 0.9).all()


def test_reblur_term_is_zero_at_identity_and_switchable():
    cfg = load_config("tiny", ADDITIONS)
    torch.manual_seed(0)
    t, d = Translator(cfg.model), Discriminators(cfg.model)
    s, b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    fakes = make_fakes(t, s, b, cfg.loss)
    terms, _ = generator_objective(t, d, s, b, fakes, cfg.loss)
    # s_b == b and k ~ delta at the start, so the re-blurred deblurred image is (almost) the input
    assert 0 <= terms["reblur"].item() / cfg.loss.reblur < 0.02  # mean |k * s_b - b| on noise images
    terms["reblur"].backward()
    assert t.blur.fc_kernel.weight.grad.abs().sum() > 0
    off = load_config("tiny", ADDITIONS[:2] + ["loss.perceptual=0"]).loss
    terms_off, _ = generator_objective(t, d, s, b, make_fakes(t, s, b, off), off)
    assert "reblur" not in terms_off


def test_reblur_needs_a_kernel_head():
    with pytest.raises(ConfigError, match="kernel_size"):
        load_config("tiny", ["loss.reblur=1"])
    with pytest.raises(ConfigError, match="odd"):
        load_config("tiny", ["model.kernel_size=8"])
    assert load_config("text").model.global_skip and load_config("paper").loss.reblur == 0

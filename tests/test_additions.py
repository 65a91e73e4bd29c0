"""Additions beyond the paper (the `text` preset): global skip, the explicit-kernel re-blur loss, the blur prior."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from udeblur.archs.blur_encoder import apply_kernel
from udeblur.config import ConfigError, load_config
from udeblur.data.blur import camera_shake_kernel, convolve
from udeblur.inference.pretrained import model_path
from udeblur.model import Discriminators, Translator
from udeblur.model_files import CheckpointError, load_deblur_net
from udeblur.training.kernel_prior import KernelBank
from udeblur.training.objective import generator_objective, make_fakes

ADDITIONS = ["model.global_skip=true", "model.kernel_size=7", "loss.reblur=10", "loss.perceptual=0"]


def test_global_skip_starts_as_identity():
    t = Translator(load_config("tiny", ["model.global_skip=true"]).model)
    b = torch.rand(2, 3, 16, 16) * 1.8 - 0.9
    assert torch.allclose(t.deblur(b), b, atol=1e-5)
    out = t.translate(b, b)
    assert torch.allclose(out["b_s"], b, atol=1e-5)


def test_the_removed_source_skips_key_is_dropped_when_off_and_refused_when_on(tmp_path):
    assert load_config("tiny", ["model.source_skips=false"]) == load_config("tiny")
    with pytest.raises(ConfigError, match="model.source_skips: True is no longer supported"):
        load_config("tiny", ["model.source_skips=true"])
    # the bundled file's metadata carries source_skips: false; it loads, and a copy saying true is refused
    bundled = model_path("text")
    with safe_open(str(bundled), framework="pt") as fh:
        meta = fh.metadata()
    model_meta = json.loads(meta["model_config"])
    assert model_meta["source_skips"] is False
    assert not hasattr(load_deblur_net(bundled)[1], "source_skips")
    meta["model_config"] = json.dumps({**model_meta, "source_skips": True})
    save_file(load_file(str(bundled)), str(tmp_path / "on.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="model.source_skips: True is no longer supported"):
        load_deblur_net(tmp_path / "on.safetensors")


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


def test_kernel_bank_holds_centred_normalised_prior_kernels_and_draws_by_step():
    bank = KernelBank(15, count=64, seed=3)
    k = bank.kernels
    assert k.shape == (64, 15, 15) and (k >= 0).all()
    assert torch.allclose(k.sum(dim=(1, 2)), torch.ones(64), atol=1e-5)
    sizes = {int((kk > 1e-6).any(0).sum()) for kk in k}  # widths of the support vary: small and large blurs
    assert min(sizes) <= 5 and max(sizes) >= 11
    a, na, _ = bank.draw(8, step=5)
    b, nb, _ = KernelBank(15, count=64, seed=3).draw(8, step=5)  # same seed and step: same draw (exact resume)
    assert torch.equal(a, b) and torch.equal(na, nb)
    c = bank.draw(8, step=6).kernels
    assert not torch.equal(a, c)
    assert torch.allclose(a.sum(dim=(1, 2)), torch.ones(8), atol=1e-5) and (na >= 0).all() and (na <= 0.02).all()
    with pytest.raises(ValueError, match="odd"):
        KernelBank(8)


PRIOR = ADDITIONS + ["loss.kernel_prior=10", "loss.prior_cycle=10"]


def test_prior_terms_train_what_they_should():
    cfg = load_config("tiny", PRIOR)
    torch.manual_seed(0)
    t, d = Translator(cfg.model), Discriminators(cfg.model)
    s, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    prior = KernelBank(7, count=16).draw(2, step=0)
    fakes = make_fakes(t, s, b, cfg.loss)
    terms, images = generator_objective(t, d, s, b, fakes, cfg.loss, prior=prior)
    assert images["s_prior"].shape == s.shape
    # the kernel term trains E^b's kernel head only; the deblurring path gets nothing from it
    terms["kernel_prior"].backward(retain_graph=True)
    assert t.blur.fc_kernel.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in t.gen.sharp.parameters())
    t.zero_grad(set_to_none=True)
    terms["prior_cycle"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in t.gen.sharp.parameters())
    # a delta kernel head on a blurred crop misses the blur: the kernel term is clearly above zero
    assert terms["kernel_prior"].item() > 0
    with pytest.raises(ValueError, match="prior"):
        generator_objective(t, d, s, b, fakes, cfg.loss)


def test_prior_cycle_norm_switches_between_l1_and_l2():
    values = {}
    for norm in ("l1", "l2"):
        cfg = load_config("tiny", PRIOR + [f"loss.prior_cycle_norm={norm}"])
        torch.manual_seed(0)  # same weights, crops and prior draw for both norms
        t, d = Translator(cfg.model), Discriminators(cfg.model)
        s, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
        prior = KernelBank(7, count=16).draw(2, step=0)
        terms, images = generator_objective(t, d, s, b, make_fakes(t, s, b, cfg.loss), cfg.loss, prior=prior)
        residual = (images["s_prior"].detach() - s).float()
        values[norm] = (terms["prior_cycle"].item(), residual)
    (l1, r1), (l2, r2) = values["l1"], values["l2"]
    assert torch.allclose(r1, r2)  # the same output, only the norm differs
    assert l1 == pytest.approx(10 * r1.abs().mean().item(), rel=1e-5)
    assert l2 == pytest.approx(10 * r2.pow(2).mean().item(), rel=1e-5)
    assert l1 != pytest.approx(l2, rel=1e-2)
    with pytest.raises(ConfigError, match="prior_cycle_norm"):
        load_config("tiny", PRIOR + ["loss.prior_cycle_norm=l3"])
    assert load_config("text").loss.prior_cycle_norm == "l1"


def test_kernel_prior_term_is_zero_for_the_right_kernel():
    from udeblur.training.kernel_prior import blur_with_prior

    s = torch.rand(2, 3, 24, 24) * 2 - 1
    k = KernelBank(7, count=4).draw(2, step=1)[0]
    clean, noisy = blur_with_prior(s, k, torch.zeros(2))
    assert torch.equal(clean, noisy) and torch.allclose(clean, apply_kernel(s, k))
    _, noisy = blur_with_prior(s, k, torch.full((2,), 0.02))
    assert 0.02 < (noisy - clean).std() < 0.06  # the [0, 1] std doubled on [-1, 1] images


def test_camera_prior_noise_adds_shot_noise_and_jpeg_drawn_by_step():
    from udeblur.training.kernel_prior import blur_with_prior

    bank = KernelBank(7, count=16, seed=1, noise="camera")
    draw = bank.draw(4, step=3)
    assert draw.camera_seed is not None and KernelBank(7, count=16, seed=1).draw(4, step=3).camera_seed is None
    s = torch.full((4, 3, 32, 32), 0.8)  # flat light paper: what remains after blurring is the noise
    s[:, :, 8:12] = -0.8  # and one dark line: JPEG rings around it
    clean, noisy = blur_with_prior(s, draw.kernels, draw.noise_std, draw.camera_seed)
    _, again = blur_with_prior(s, *bank.draw(4, step=3))
    assert torch.equal(noisy, again)  # a step's noise depends only on (seed, step): exact resume
    _, other = blur_with_prior(s, *bank.draw(4, step=4))
    assert not torch.equal(noisy, other)
    levels = (noisy + 1) / 2 * 255  # decoded JPEG: 8-bit levels in [-1, 1]
    assert torch.allclose(levels, levels.round(), atol=1e-4) and noisy.min() >= -1 and noisy.max() <= 1
    paper = (noisy - clean)[:, :, 20:, :]
    assert 0.005 < paper.std() < 0.2  # shot noise at 200-3000 photons plus read noise, on [-1, 1]
    with pytest.raises(ValueError, match="noise"):
        KernelBank(7, noise="salt")
    with pytest.raises(ConfigError, match="prior_noise"):
        load_config("tiny", PRIOR + ["loss.prior_noise=salt"])


def test_the_prior_noise_setting_reaches_the_methods_prior(tmp_path):
    from udeblur.methods.base import MethodContext
    from udeblur.methods.registry import get_method
    from udeblur.training.distributed import DistInfo

    ctx = MethodContext(torch.device("cpu"), "none", DistInfo(), tmp_path / "last.pt", progress=False)
    for noise, camera in (("gaussian", False), ("camera", True)):
        cfg = load_config("tiny", PRIOR + [f"loss.prior_noise={noise}"])
        method = get_method("disentangled")(cfg, ctx)
        assert (method._kernel_bank.draw(2, step=0).camera_seed is not None) is camera


def test_prior_terms_need_a_kernel_size():
    with pytest.raises(ConfigError, match="kernel_prior"):
        load_config("tiny", ["loss.kernel_prior=1"])
    with pytest.raises(ConfigError, match="prior_cycle"):
        load_config("tiny", ["loss.prior_cycle=1"])
    assert load_config("paper").loss.kernel_prior == 0 and load_config("paper").loss.prior_cycle == 0

"""Classical baselines: oracle deconvolution helps, the blind method returns a valid kernel; the baseline registry;
variant configs."""

import numpy as np
import pytest

from udeblur.config import load_config
from udeblur.data.blur import blur_valid, convolve, gaussian_kernel, linear_motion_kernel
from udeblur.evaluation import baselines
from udeblur.evaluation.classical import (
    blind_deblur,
    estimate_kernel_l0,
    estimate_noise_std,
    richardson_lucy,
    wiener_deconvolve,
)
from udeblur.evaluation.variants import BUILTIN_VARIANTS, get_variant
from udeblur.metrics import psnr


def _scene(size: int = 96) -> np.ndarray:
    """Sharp synthetic 'document': dark bars and blocks on a light background (strong edges, like text)."""
    rng = np.random.default_rng(0)
    img = np.full((size, size, 3), 0.9, dtype=np.float32)
    for _ in range(40):
        y, x = rng.integers(0, size - 8, 2)
        h, w = rng.integers(2, 8, 2)
        img[y:y + h, x:x + w] = rng.uniform(0.0, 0.3)
    return img


@pytest.mark.parametrize("kernel", [linear_motion_kernel(15, 11, 30), gaussian_kernel(9, 1.5)],
                         ids=["motion30", "gaussian"])
def test_oracle_wiener_with_true_kernel_raises_psnr_clearly(kernel):
    # blurred with its true surroundings (as the text domain's test pairs are), noise off
    m = kernel.shape[0] // 2
    scene = _scene(96 + 2 * m)
    sharp = scene[m:-m, m:-m]
    blurred = blur_valid(scene, kernel)
    before = psnr(blurred, sharp)
    after = psnr(wiener_deconvolve(blurred, kernel), sharp)  # lam from the noise estimate
    assert after > before + 3, (before, after)


def test_richardson_lucy_helps_and_keeps_shape():
    sharp = _scene()
    kernel = gaussian_kernel(9, 1.5)
    blurred = convolve(sharp, kernel)
    out = richardson_lucy(blurred, kernel, iterations=20)
    assert out.shape == blurred.shape and out.dtype == np.float32
    assert psnr(out, sharp) > psnr(blurred, sharp) + 1


def test_wiener_accepts_gray_and_rejects_even_kernels():
    gray = _scene()[..., 0]
    assert wiener_deconvolve(gray, gaussian_kernel(5, 1.0)).shape == gray.shape
    with pytest.raises(ValueError, match="odd"):
        wiener_deconvolve(gray, np.ones((4, 4)))


def test_noise_estimate_is_roughly_right():
    rng = np.random.default_rng(1)
    flat = np.full((128, 128, 1), 0.5) + rng.normal(0, 0.02, (128, 128, 1))
    assert 0.015 < estimate_noise_std(flat) < 0.025


def test_blind_method_returns_normalised_kernel_and_same_size_image():
    sharp = _scene(80)
    blurred = convolve(sharp, linear_motion_kernel(11, 7, 0))
    out, kernel = blind_deblur(blurred, kernel_size=11)
    assert out.shape == blurred.shape and out.dtype == np.float32
    assert kernel.shape == (11, 11)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5) and (kernel >= 0).all()
    assert np.isfinite(out).all()
    # a flat image gives no edges to estimate from: still a valid kernel
    flat = estimate_kernel_l0(np.full((40, 40, 3), 0.5, np.float32), kernel_size=7)
    assert flat.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", [n for n, v in BUILTIN_VARIANTS.items() if v.trained])
def test_every_trained_variant_is_a_valid_config(name):
    v = BUILTIN_VARIANTS[name]
    cfg = load_config("tiny", list(v.overrides))
    if name == "cyclegan":
        assert not cfg.model.blur_encoder and not cfg.model.shared_content
        assert cfg.loss.kl == cfg.loss.perceptual == cfg.loss.self_recon == 0
    if name == "no_cycle":
        assert cfg.loss.cycle == 0


def test_a_registered_baseline_is_an_eval_choice_and_a_compare_variant():
    from udeblur.cli.main import build_parser

    def brighter(item: baselines.TestItem) -> np.ndarray:
        return np.clip(item.blurred + 0.1, 0.0, 1.0)

    baselines.register_baseline("brighter", brighter, "brighter input", "adds 0.1")
    try:
        item = baselines.TestItem("x", np.full((4, 4, 3), 0.5, np.float32), np.zeros((4, 4, 3), np.float32))
        assert float(baselines.baseline_method("brighter")(item).mean()) == pytest.approx(0.6)
        assert get_variant("brighter").kind == "baseline" and get_variant("brighter").title == "brighter input"
        eval_parser = build_parser()._subparsers._group_actions[0].choices["eval"]
        assert "brighter" in eval_parser.format_help()
        with pytest.raises(ValueError, match="registered already"):
            baselines.register_baseline("brighter", brighter, "again")
    finally:
        del baselines.BASELINES["brighter"]
    assert [n for n, b in baselines.BASELINES.items() if b.needs_kernel] == ["oracle_wiener", "oracle_rl"]

"""PSNR/SSIM against analytic values and scikit-image; dlib face identity distance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from udeblur.imageio import save_png
from udeblur.metrics import face as face_mod
from udeblur.metrics.image_quality import evaluate_pairs, psnr, rgb_to_y, ssim

SKI_KW = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)


def _astronaut() -> np.ndarray:
    return data.astronaut()[40:232, 120:360].astype(np.float64) / 255.0  # 192 x 240 x 3, face and suit


def _camera() -> np.ndarray:
    return data.camera()[100:260, 150:350].astype(np.float64)[..., None] / 255.0  # 160 x 200 x 1


def _degrade(img: np.ndarray, blur: float, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = gaussian_filter(img, sigma=(blur, blur, 0)) if blur else img.copy()
    return np.clip(out + rng.normal(0.0, noise, img.shape), 0.0, 1.0)


def _y_numpy(img: np.ndarray) -> np.ndarray:
    """BasicSR's rgb2ycbcr(y_only=True) on [0, 1] RGB, written out independently (H x W)."""
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return (img @ np.array([65.481, 128.553, 24.966]) + 16.0) / 255.0


# --- known values -------------------------------------------------------------------------------------


@pytest.mark.parametrize("on", ["rgb", "y"])
def test_identical_images(on: str) -> None:
    a = _astronaut()
    assert psnr(a, a, on=on) == math.inf
    assert ssim(a, a, on=on) == pytest.approx(1.0, abs=1e-12)
    t = torch.from_numpy(a).permute(2, 0, 1)[None].repeat(2, 1, 1, 1)
    assert torch.isinf(psnr(t, t, on=on)).all()
    assert torch.allclose(ssim(t, t, on=on), torch.ones(2, dtype=torch.float64))


def test_constant_shift_gives_analytic_psnr() -> None:
    a = _astronaut() * 0.8
    d = 0.1
    assert psnr(a + d, a) == pytest.approx(20.0, abs=1e-9)  # 10 log10(1 / 0.1^2)
    # Y moves by d * 219/255 when R, G and B all move by d (studio-swing luma).
    assert psnr(a + d, a, on="y") == pytest.approx(-20 * math.log10(d * 219 / 255), abs=1e-9)
    # [-1, 1] tensors: a shift of 2d there is a shift of d in [0, 1].
    t = torch.from_numpy(a * 2 - 1).permute(2, 0, 1)[None]
    assert float(psnr(t + 2 * d, t, value_range=(-1, 1))[0]) == pytest.approx(20.0, abs=1e-9)


def test_gaussian_noise_gives_analytic_psnr() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(0.2, 0.8, size=(512, 512, 3))
    sigma = 0.05
    b = a + rng.normal(0.0, sigma, a.shape)  # not clipped: values are used as given
    assert psnr(b, a) == pytest.approx(-20 * math.log10(sigma), abs=0.02)  # 26.02 dB


def test_y_conversion_matches_matlab_range() -> None:
    x = torch.tensor([0.0, 1.0], dtype=torch.float64).view(2, 1, 1, 1).expand(2, 3, 1, 1)
    assert rgb_to_y(x).flatten().tolist() == pytest.approx([16 / 255, 235 / 255])
    a = _astronaut()
    y = rgb_to_y(torch.from_numpy(a).permute(2, 0, 1)[None])[0, 0].numpy()
    assert np.allclose(y, _y_numpy(a), atol=1e-12)


# --- scikit-image agreement ----------------------------------------------------------------------------


@pytest.mark.parametrize("image", ["astronaut", "camera"])
@pytest.mark.parametrize(("blur", "noise"), [(0.0, 0.05), (2.0, 0.0), (1.0, 0.02), (4.0, 0.1)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ssim_and_psnr_match_skimage_rgb(image: str, blur: float, noise: float, dtype: type) -> None:
    a = (_astronaut() if image == "astronaut" else _camera()).astype(dtype)
    b = _degrade(a, blur, noise).astype(dtype)
    ref = structural_similarity(a, b, channel_axis=-1, **SKI_KW)
    assert ssim(a, b) == pytest.approx(float(ref), abs=1e-4)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-4)


@pytest.mark.parametrize(("blur", "noise"), [(0.0, 0.05), (2.0, 0.0), (1.5, 0.03)])
def test_ssim_and_psnr_match_skimage_y(blur: float, noise: float) -> None:
    a = _astronaut()
    b = _degrade(a, blur, noise, seed=3)
    ya, yb = _y_numpy(a), _y_numpy(b)
    ref = structural_similarity(ya, yb, **SKI_KW)
    assert ssim(a, b, on="y") == pytest.approx(float(ref), abs=1e-4)
    assert psnr(a, b, on="y") == pytest.approx(peak_signal_noise_ratio(ya, yb, data_range=1.0), abs=1e-4)


def test_grey_image_equals_its_rgb_copy() -> None:
    a = _camera()
    b = _degrade(a, 1.0, 0.03)
    a3, b3 = np.repeat(a, 3, axis=2), np.repeat(b, 3, axis=2)
    for on in ("rgb", "y"):
        assert psnr(a, b, on=on) == pytest.approx(psnr(a3, b3, on=on), abs=1e-10)
        assert ssim(a, b, on=on) == pytest.approx(ssim(a3, b3, on=on), abs=1e-10)
    assert ssim(a[..., 0], b[..., 0]) == pytest.approx(ssim(a, b), abs=1e-12)  # H x W input


# --- batching, cropping, helpers -----------------------------------------------------------------------


def test_torch_batch_equals_numpy_per_image() -> None:
    base = _astronaut()[:128, :160]
    clean = [base, base[::-1].copy(), base[:, ::-1].copy(), base * 0.7]
    noisy = [_degrade(img, blur, noise, seed=i) for i, (img, blur, noise) in
             enumerate(zip(clean, [0.0, 1.0, 2.0, 3.0], [0.05, 0.02, 0.0, 0.01], strict=True))]
    x = torch.from_numpy(np.stack(noisy)).permute(0, 3, 1, 2).float()
    y = torch.from_numpy(np.stack(clean)).permute(0, 3, 1, 2).float()
    for on in ("rgb", "y"):
        for crop in (0, 4):
            bp = psnr(x, y, on=on, crop_border=crop)
            bs = ssim(x, y, on=on, crop_border=crop)
            assert bp.shape == (4,) and bs.shape == (4,)
            for i in range(4):
                n, c = x[i].permute(1, 2, 0).numpy(), y[i].permute(1, 2, 0).numpy()
                assert float(bp[i]) == pytest.approx(psnr(n, c, on=on, crop_border=crop), abs=1e-9)
                assert float(bs[i]) == pytest.approx(ssim(n, c, on=on, crop_border=crop), abs=1e-9)
    # [-1, 1] network tensors give the same numbers with value_range=(-1, 1).
    assert torch.allclose(ssim(x * 2 - 1, y * 2 - 1, value_range=(-1, 1)), ssim(x, y), atol=1e-9)


def test_crop_border() -> None:
    a = _astronaut()
    b = _degrade(a, 1.0, 0.02)
    k = 8
    inner = (slice(k, -k), slice(k, -k))
    assert psnr(a, b, crop_border=k) == pytest.approx(psnr(a[inner], b[inner]), abs=1e-12)
    assert ssim(a, b, crop_border=k, on="y") == pytest.approx(ssim(a[inner], b[inner], on="y"), abs=1e-12)
    # Damage confined to the border disappears once it is cropped.
    c = a.copy()
    c[:k] = 0.0
    assert psnr(c, a) < 30 and psnr(c, a, crop_border=k) == math.inf
    assert ssim(c, a, crop_border=k) == pytest.approx(1.0)


def test_bad_inputs_raise_clear_errors() -> None:
    a = _astronaut()
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(a, a[:-1])
    with pytest.raises(TypeError, match="float image"):
        psnr((a * 255).astype(np.uint8), (a * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a[:8, :8], a[:8, :8])
    with pytest.raises(ValueError, match="on must be"):
        psnr(a, a, on="lab")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="crop_border"):
        psnr(a, a, crop_border=200)


def test_evaluate_pairs_arrays_and_files(tmp_path) -> None:
    a = _astronaut()
    pairs = [
        (_degrade(a, 1.0, 0.02, seed=1), a),
        (_degrade(a, 2.0, 0.0), a),
        (_degrade(a[:96, :96], 0.0, 0.05), a[:96, :96]),  # another size: a batch of its own
        (a, a),
    ]
    rows = evaluate_pairs(pairs, batch_size=2, on="y", crop_border=2, progress=False)
    assert len(rows) == 4
    for row, (r, s) in zip(rows, pairs, strict=True):
        assert row["psnr"] == pytest.approx(psnr(r, s, on="y", crop_border=2), abs=1e-9)
        assert row["ssim"] == pytest.approx(ssim(r, s, on="y", crop_border=2), abs=1e-9)
    assert rows[3]["psnr"] == math.inf

    # Files are read as 8-bit RGB; a grey file compares with its RGB copy.
    save_png(tmp_path / "restored.png", pairs[0][0])
    save_png(tmp_path / "sharp.png", a)
    save_png(tmp_path / "grey.png", _camera())
    save_png(tmp_path / "grey_rgb.png", np.repeat(_camera(), 3, axis=2))
    file_rows = evaluate_pairs(
        [(tmp_path / "restored.png", tmp_path / "sharp.png"), (tmp_path / "grey.png", tmp_path / "grey_rgb.png")],
        metrics=("ssim",),
        progress=False,
    )
    q = np.round(pairs[0][0] * 255) / 255
    assert file_rows[0] == {"ssim": pytest.approx(ssim(q, np.round(a * 255) / 255), abs=1e-6)}
    assert file_rows[1]["ssim"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="pair 0"):
        evaluate_pairs([(a, a[:50])], progress=False)


# --- face identity distance ----------------------------------------------------------------------------

def _grace_hopper() -> np.ndarray:
    import matplotlib.cbook as cbook
    from PIL import Image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def test_face_identity_distance() -> None:
    astro = data.astronaut().astype(np.float32) / 255.0
    grace = _grace_hopper()
    box = face_mod.face_box(astro)
    assert box is not None
    left, top, right, bottom = box
    assert 150 < (left + right) / 2 < 290 and 50 < (top + bottom) / 2 < 190  # Eileen Collins, not the badge
    da = face_mod.face_descriptor(astro)
    assert da is not None and da.shape == (128,)
    assert face_mod.identity_distance(astro, astro.copy()) == pytest.approx(0.0, abs=1e-6)
    assert face_mod.identity_distance(astro, grace) > face_mod.SAME_PERSON_THRESHOLD
    assert face_mod.identity_distance(da, astro) == pytest.approx(0.0, abs=1e-6)  # descriptors accepted

    # A heavily blurred face is not detected, but still gets a descriptor at the sharp image's box.
    blurred = gaussian_filter(astro, sigma=(6, 6, 0))
    assert face_mod.face_descriptor(blurred) is None
    assert math.isnan(face_mod.identity_distance(blurred, astro))
    d_blur = face_mod.identity_distance(blurred, astro, box=box)
    d_mild = face_mod.identity_distance(gaussian_filter(astro, sigma=(1, 1, 0)), astro, box=box)
    assert 0.0 < d_mild < d_blur
    assert face_mod.face_descriptor(np.full((120, 120, 3), 0.5)) is None


def test_face_models_missing_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(face_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(face_mod.FaceModelsNotAvailableError, match=r"pip install \"udeblur\[face\]\""):
        face_mod.model_dir()

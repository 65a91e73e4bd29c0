"""The bundled text model: present, small, checked by SHA-256, used by default, and it really deblurs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from udeblur.cli import main as cli
from udeblur.data.blur import camera_shake_kernel, convolve
from udeblur.inference.deblurrer import load_pretrained
from udeblur.inference.pretrained import BUNDLED, DEFAULT, model_path
from udeblur.metrics.image_quality import psnr
from udeblur.model_files import CheckpointError, sha256_of


def test_bundled_file_is_small_and_matches_its_checksum():
    path = model_path()
    assert path.stat().st_size <= 25 * 2**20
    assert sha256_of(path) == BUNDLED[DEFAULT].sha256


def test_a_tampered_copy_is_refused(tmp_path, monkeypatch, capsys):
    copy = tmp_path / "udeblur" / "pretrained" / BUNDLED[DEFAULT].filename
    copy.parent.mkdir(parents=True)
    data = bytearray(model_path().read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in the weights
    copy.write_bytes(bytes(data))
    monkeypatch.setattr("udeblur.inference.pretrained.model_path", lambda name=DEFAULT: copy)
    with pytest.raises(CheckpointError, match="SHA-256 mismatch"):
        load_pretrained(device="cpu")
    assert cli.main(["export", "-o", str(tmp_path / "m.onnx")]) == 2  # nor exported
    assert "SHA-256 mismatch" in capsys.readouterr().err and not (tmp_path / "m.onnx").exists()


def test_unknown_name_is_a_clear_error():
    with pytest.raises(LookupError, match="bundled"):
        model_path("faces-v9")


def test_it_sharpens_a_real_page_blurred_by_camera_shake():
    """scikit-image's `page` (a real scan), blurred by a 9 px camera-shake kernel: the model must move it closer
    to the sharp page than the blurred copy is (the bundled model before issue 6's blur prior failed this:
    21.29 -> 18.90 dB)."""
    from skimage import data

    sharp = data.page().astype(np.float32)[..., None] / 255.0
    blurred = np.clip(convolve(sharp, camera_shake_kernel(9, np.random.default_rng(1))), 0, 1)
    out = load_pretrained(device="cpu").deblur_pixels(blurred)
    assert out.shape == blurred.shape
    assert psnr(out, sharp) > psnr(blurred, sharp)


def test_deblur_cli_uses_the_bundled_model_by_default(tmp_path, capsys):
    img = (np.random.default_rng(0).random((40, 56)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "page.png")
    assert cli.main(["deblur", str(tmp_path / "page.png"), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    with Image.open(tmp_path / "out" / "page.png") as out:
        assert out.size == (56, 40)


def test_demo_with_the_bundled_model(tmp_path, capsys):
    rc = cli.main(["demo", "--config", "tiny", "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "udeblur (bundled model)" in out and "blurred input" in out
    assert (tmp_path / "index.html").exists() and not (tmp_path / "run").exists()
    assert "Traceback" not in capsys.readouterr().err


def test_the_bundled_model_keeps_the_page_tone_with_its_anchor(tmp_path):
    """Shipped with tone_anchor 16 (what its figures were measured with): `udeblur deblur` without --model uses it,
    `--tone-anchor 0` gives the network's raw output, and the anchor takes out the raw output's brightening."""
    from skimage import data

    from udeblur.inference.pretrained import resolve_model

    assert BUNDLED[DEFAULT].tone_anchor == 16.0 and resolve_model(None).tone_anchor == 16.0
    assert resolve_model(tmp_path / "user.safetensors").tone_anchor == 0.0  # a user's file: off unless asked
    sharp = data.page()[:128, :192].astype(np.float32)[..., None] / 255.0
    blurred = np.clip(convolve(sharp, camera_shake_kernel(9, np.random.default_rng(1))), 0, 1)
    Image.fromarray((blurred[..., 0] * 255).round().astype(np.uint8)).save(tmp_path / "page.png")
    for name, extra in (("default", []), ("raw", ["--tone-anchor", "0"])):
        assert cli.main(["deblur", str(tmp_path / "page.png"), "-o", str(tmp_path / name), "--quiet", *extra]) == 0
    default, raw = (np.asarray(Image.open(tmp_path / n / "page.png"), np.float32) / 255.0 for n in ("default", "raw"))
    page = np.asarray(Image.open(tmp_path / "page.png"), np.float32) / 255.0
    expected = load_pretrained(device="cpu").deblur_pixels(page[..., None])[..., 0]
    np.testing.assert_allclose(default, expected, atol=1 / 255 + 1e-6)
    assert np.abs(default - raw).max() > 0.01
    assert abs(default.mean() - page.mean()) < abs(raw.mean() - page.mean())

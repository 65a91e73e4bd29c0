"""Image reading/writing across modes, and clear errors for bad files."""

import numpy as np
import pytest
from PIL import Image

from udeblur.imageio import ImageReadError, list_images, load_pixels, read_image, save_png, to_channels


def test_modes_decode_to_float_pixels(tmp_path):
    rgb = (np.arange(5 * 7 * 3) % 256).astype(np.uint8).reshape(5, 7, 3)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "pal.png")
    Image.fromarray((np.arange(35).reshape(5, 7) * 1000).astype(np.uint16)).save(tmp_path / "g16.png")
    d = read_image(tmp_path / "rgb.png")
    assert d.pixels.shape == (5, 7, 3) and d.pixels.dtype == np.float32
    assert np.allclose(d.pixels * 255, rgb)
    assert read_image(tmp_path / "gray.png").pixels.shape == (5, 7, 1)
    assert read_image(tmp_path / "rgba.png").alpha is None  # opaque alpha carries nothing
    assert read_image(tmp_path / "pal.png").pixels.shape == (5, 7, 3)
    g16 = read_image(tmp_path / "g16.png")
    assert g16.bits == 16 and g16.pixels.max() == pytest.approx(34000 / 65535)


def test_png_round_trip_8_and_16_bit(tmp_path):
    x = np.random.default_rng(0).random((9, 11, 3)).astype(np.float32)
    save_png(tmp_path / "a.png", x)
    assert np.abs(read_image(tmp_path / "a.png").pixels - x).max() <= 0.5 / 255 + 1e-6
    g = x[..., :1]
    save_png(tmp_path / "b.png", g, bits=16)
    back = read_image(tmp_path / "b.png")
    assert back.bits == 16 and np.abs(back.pixels - g).max() <= 0.5 / 65535 + 1e-7
    alpha = np.linspace(0, 1, 99, dtype=np.float32).reshape(9, 11)
    save_png(tmp_path / "c.png", x, alpha=alpha)
    assert Image.open(tmp_path / "c.png").mode == "RGBA"


def test_bad_files_name_the_file(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match="junk.png"):
        read_image(tmp_path / "junk.png")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 7).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.png.*(truncated|corrupt)"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


def test_list_images_sorted_recursive_and_skips_hidden(tmp_path):
    for rel in ["b.png", "a.JPG", "sub/c.png", ".hidden.png", "notes.txt", ".git/x.png"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    names = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert names == ["a.JPG", "b.png", "sub/c.png"]
    assert [p.name for p in list_images(tmp_path, recursive=False)] == ["a.JPG", "b.png"]


def test_channel_conversion_and_alpha_flattening(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 0  # fully transparent -> white background
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    assert np.allclose(load_pixels(tmp_path / "t.png"), 1.0)
    gray = to_channels(np.full((2, 2, 3), 0.5, np.float32), 1)
    assert gray.shape == (2, 2, 1) and np.allclose(gray, 0.5)


def test_written_files_get_normal_permissions_not_mkstemps_0600(tmp_path):
    import os

    from udeblur.imageio import save_png

    save_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.float32))
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary file left

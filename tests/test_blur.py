"""Blur synthesis: kernels, convolution, noise, JPEG, degrade and blur_folder."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from udeblur.data.blur import (
    BlurConfig,
    add_noise,
    blur_folder,
    camera_shake_kernel,
    convolve,
    defocus_kernel,
    degrade,
    gaussian_kernel,
    jpeg_recompress,
    linear_motion_kernel,
    random_kernel,
    sample_kernel,
)
from udeblur.imageio import load_pixels, read_image


def spread(kernel: np.ndarray) -> float:
    """RMS distance of the kernel's mass from its centre of mass."""
    yy, xx = np.mgrid[: kernel.shape[0], : kernel.shape[1]]
    cy, cx = (kernel * yy).sum(), (kernel * xx).sum()
    return float(np.sqrt((kernel * ((yy - cy) ** 2 + (xx - cx) ** 2)).sum()))


def centre_of_mass(kernel: np.ndarray) -> tuple[float, float]:
    yy, xx = np.mgrid[: kernel.shape[0], : kernel.shape[1]]
    return float((kernel * yy).sum()), float((kernel * xx).sum())


def all_kinds(size: int, seed: int = 0) -> dict[str, np.ndarray]:
    return {
        "shake": camera_shake_kernel(size, np.random.default_rng(seed), length=0.8 * size),
        "linear": linear_motion_kernel(size, 0.7 * size, 30.0),
        "defocus": defocus_kernel(size, size / 3),
        "gaussian": gaussian_kernel(size, size / 8),
    }


@pytest.mark.parametrize("size", [1, 7, 15, 31, 45])
def test_kernels_normalised_nonnegative_requested_size(size):
    for kind, k in all_kinds(size).items():
        assert k.shape == (size, size), kind
        assert k.dtype == np.float32, kind
        assert (k >= 0).all(), kind
        assert abs(float(k.sum()) - 1.0) < 1e-5, kind


@pytest.mark.parametrize("bad", [0, 4, 30, -3])
def test_even_or_nonpositive_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="odd"):
        defocus_kernel(bad, 2.0)
    with pytest.raises(ValueError, match="odd"):
        camera_shake_kernel(bad, np.random.default_rng(0))


def test_symmetric_kernels_are_centred():
    for kind, k in all_kinds(31).items():
        cy, cx = centre_of_mass(k)
        assert abs(cy - 15) < 1e-3 and abs(cx - 15) < 1e-3, kind


def test_spread_grows_with_length_and_radius():
    def grows(values: list[float]) -> bool:
        return all(b > a * 1.3 for a, b in zip(values, values[1:], strict=False))

    assert grows([spread(linear_motion_kernel(31, n, 20.0)) for n in (4, 10, 20)])
    assert grows([spread(defocus_kernel(31, r)) for r in (2, 5, 10)])
    assert grows([spread(gaussian_kernel(31, s)) for s in (1, 2, 4)])
    for seed in range(5):
        # Same seed: the same trajectory shape, scaled to the requested path length.
        sp = [spread(camera_shake_kernel(31, np.random.default_rng(seed), anxiety=0.5, length=n))
              for n in (5, 10, 20)]
        assert grows(sp), (seed, sp)


def test_camera_shake_kernels_are_thin_centred_and_uneven():
    ratios = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        length = float(rng.uniform(12, 40))
        k = camera_shake_kernel(31, rng, exposure=float(rng.uniform(0.3, 1)), anxiety=float(rng.uniform(0, 1)),
                                length=length)
        cy, cx = centre_of_mass(k)
        assert abs(cy - 15) < 1e-3 and abs(cx - 15) < 1e-3, seed
        support = k > 0
        # A path one pixel wide: bilinear splatting touches at most ~3 pixels per pixel of length.
        assert support.sum() <= 3 * (length + 2), seed
        ys, xs = np.nonzero(support)
        ratios.append(support.sum() / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1)))
        # Intensity varies along the path (time spent at each place), unlike a uniform line.
        vals = k[k > 0.2 * k.max()]
        assert vals.std() / vals.mean() > 0.15, seed
    assert np.median(ratios) < 0.5  # few non-zero pixels relative to the bounding box


def test_camera_shake_parameters_validated():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="exposure"):
        camera_shake_kernel(15, rng, exposure=0)
    with pytest.raises(ValueError, match="anxiety"):
        camera_shake_kernel(15, rng, anxiety=2)


def test_random_kernel_reproducible_odd_and_in_range():
    cfg = BlurConfig(min_kernel=8, max_kernel=30)  # even bounds round inwards to 9..29
    sizes = set()
    for seed in range(30):
        k1 = random_kernel(np.random.default_rng(seed), cfg)
        k2 = random_kernel(np.random.default_rng(seed), cfg)
        np.testing.assert_array_equal(k1, k2)
        assert k1.dtype == np.float32 and k1.shape[0] == k1.shape[1] and k1.shape[0] % 2 == 1
        assert 9 <= k1.shape[0] <= 29
        assert abs(float(k1.sum()) - 1) < 1e-5 and (k1 >= 0).all()
        sizes.add(k1.shape[0])
    assert len(sizes) > 5
    a = random_kernel(np.random.default_rng(1), BlurConfig(kinds={"shake": 1.0}, min_kernel=25))
    b = random_kernel(np.random.default_rng(2), BlurConfig(kinds={"shake": 1.0}, min_kernel=25))
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_kind_mixture_is_respected():
    cfg = BlurConfig(kinds={"shake": 0.5, "defocus": 0.5, "linear": 0.0})
    rng = np.random.default_rng(0)
    kinds = [sample_kernel(rng, cfg)[1]["kind"] for _ in range(200)]
    assert set(kinds) == {"shake", "defocus"}
    assert 60 < kinds.count("shake") < 140


def test_blur_config_validation():
    with pytest.raises(ValueError, match="unknown kind"):
        BlurConfig(kinds={"motion": 1.0})
    with pytest.raises(ValueError, match="min_kernel"):
        BlurConfig(min_kernel=9, max_kernel=5)
    with pytest.raises(ValueError, match="jpeg_quality"):
        BlurConfig(jpeg_quality=(50, 120))


@pytest.mark.parametrize("shape", [(40, 56, 3), (33, 20, 1), (40, 56), (5, 7, 3), (1, 9, 1)])
def test_convolve_keeps_size_and_delta_is_identity(shape):
    img = np.random.default_rng(0).random(shape, dtype=np.float32)
    out = convolve(img, gaussian_kernel(15, 2.0))
    assert out.shape == img.shape and out.dtype == np.float32
    delta = np.zeros((31, 31), np.float32)
    delta[15, 15] = 1
    np.testing.assert_allclose(convolve(img, delta), img, atol=1e-5)


def test_convolve_keeps_a_flat_image_flat():
    img = np.full((24, 30, 3), 0.7, np.float32)
    np.testing.assert_allclose(convolve(img, defocus_kernel(21, 8)), 0.7, atol=1e-5)


def test_linear_motion_on_vertical_edge_gives_expected_ramp():
    edge = np.zeros((16, 64, 1), np.float32)
    edge[:, 32:] = 1.0  # step between columns 31 and 32
    for length in (6.0, 12.0, 20.0):
        row = convolve(edge, linear_motion_kernel(31, length, 0.0))[8, :, 0]
        ramp = np.flatnonzero((row > 0.02) & (row < 0.98))
        assert abs(len(ramp) - length) <= 1.5, (length, len(ramp))
        assert abs(np.interp(0.5, row, np.arange(64)) - 31.5) < 0.3  # centred on the edge
    # Motion along the edge leaves it sharp.
    row = convolve(edge, linear_motion_kernel(31, 20.0, 90.0))[8, :, 0]
    assert np.count_nonzero((row > 0.02) & (row < 0.98)) == 0


def test_linear_motion_angle_direction():
    k = linear_motion_kernel(21, 14, 45.0)  # counter-clockwise on screen: up and to the right
    assert k[6, 14] > 0 and k[14, 6] > 0 and k[6, 6] == 0 and k[14, 14] == 0


def test_add_noise_levels_and_poisson():
    flat = np.full((128, 128, 3), 0.5, np.float32)
    rng = np.random.default_rng(0)
    noisy = add_noise(flat, rng, BlurConfig(noise_std=(0.05, 0.05)))
    assert abs(float(noisy.std()) - 0.05) < 0.003
    noisy = add_noise(flat, rng, BlurConfig(noise_std=(0.0, 0.0), poisson_peak=(100.0, 100.0)))
    assert abs(float(noisy.std()) - np.sqrt(0.5 / 100)) < 0.004
    clean = add_noise(flat, rng, BlurConfig(noise_std=(0.0, 0.0)))
    np.testing.assert_array_equal(clean, flat)
    dark = add_noise(np.zeros((64, 64, 1), np.float32), rng, BlurConfig(noise_std=(0.1, 0.1)))
    assert dark.min() >= 0 and dark.max() <= 1


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_recompress_keeps_shape_and_content(channels):
    img = np.repeat(np.linspace(0, 1, 64, dtype=np.float32)[None, :, None], 48, axis=0)
    img = np.repeat(img, channels, axis=2)
    out = jpeg_recompress(img, 90)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.abs(out - img).mean() < 0.02


def test_degrade_reproducible_and_in_range():
    img = np.random.default_rng(0).random((48, 40, 3), dtype=np.float32)
    cfg = BlurConfig(noise_std=(0.01, 0.03), poisson_peak=(500.0, 5000.0), jpeg_quality=(60, 95))
    a, ka = degrade(img, np.random.default_rng(7), cfg)
    b, kb = degrade(img, np.random.default_rng(7), cfg)
    c, _ = degrade(img, np.random.default_rng(8), cfg)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ka, kb)
    assert not np.array_equal(a, c)
    assert a.shape == img.shape and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1


def test_degrade_without_noise_is_the_convolution():
    img = np.random.default_rng(0).random((40, 40, 1), dtype=np.float32)
    cfg = BlurConfig(noise_std=(0.0, 0.0))
    out, k = degrade(img, np.random.default_rng(3), cfg)
    np.testing.assert_allclose(out, np.clip(convolve(img, k), 0, 1), atol=1e-6)


def test_blur_folder(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((30, 40, 3)) * 255).astype(np.uint8)).save(src / "a.jpg")
    Image.fromarray((rng.random((20, 24)) * 65535).astype(np.uint16)).save(src / "sub" / "gray16.png")
    rgba = np.concatenate([(rng.random((16, 16, 3)) * 255), np.full((16, 16, 1), 200)], axis=2)
    Image.fromarray(rgba.astype(np.uint8), "RGBA").save(src / "b.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n = blur_folder(src, dst, BlurConfig(), seed=3, save_kernels=True)
    assert n == 3
    messages = [str(w.message) for w in caught]
    assert any("broken.png" in m for m in messages)
    assert any("skipped 1" in m for m in messages)
    assert load_pixels(dst / "a.png").shape == (30, 40, 3)
    gray = read_image(dst / "sub" / "gray16.png")
    assert gray.pixels.shape == (20, 24, 1) and gray.bits == 16
    assert read_image(dst / "b.png").alpha is not None
    k = np.load(dst / "kernels" / "sub" / "gray16.npy")
    assert abs(float(k.sum()) - 1) < 1e-5
    # Same seed: same output; seeds follow the file's relative path, not its position in the listing.
    again = tmp_path / "again"
    (src / "broken.png").unlink()
    assert blur_folder(src, again, BlurConfig(), seed=3) == 3
    assert (again / "a.png").read_bytes() == (dst / "a.png").read_bytes()
    other = tmp_path / "other"
    blur_folder(src, other, BlurConfig(), seed=4)
    assert (other / "a.png").read_bytes() != (dst / "a.png").read_bytes()


def test_blur_folder_bad_source(tmp_path):
    with pytest.raises(ValueError, match="missing: no such folder"):  # DatasetError
        blur_folder(tmp_path / "missing", tmp_path / "out", BlurConfig(), seed=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        blur_folder(tmp_path / "empty", tmp_path / "out", BlurConfig(), seed=0)


def test_blur_folder_output_inside_source_is_not_read_back(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(src / "a.png")
    assert blur_folder(src, src / "blurred", BlurConfig(), seed=0) == 1
    assert blur_folder(src, src / "blurred", BlurConfig(), seed=0) == 1
    assert not (src / "blurred" / "blurred").exists()

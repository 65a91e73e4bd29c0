"""Deblurrer and `udeblur deblur`: any size and mode in, same size out, deterministic, tiled without seams."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from udeblur.archs.blocks import LayerNorm2d
from udeblur.config import ExperimentConfig, load_config
from udeblur.imageio import ImageReadError
from udeblur.inference import DeblurBatchError, Deblurrer, plan_outputs
from udeblur.inference.tiling import axis_tiles
from udeblur.model import Translator
from udeblur.model_files import CheckpointError, export_deblur_net, save_checkpoint

SIZES = [(37, 53), (1, 1), (5, 3), (130, 257)]  # (height, width)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # These tensors are tiny: a second OpenMP thread only adds spin-waiting (ruinous on a busy 2-core box).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_cfg():
    # A larger init std than training's 0.02 so the random network's output visibly depends on its input.
    return dataclasses.replace(load_config("tiny").model, init_std=0.1)


@pytest.fixture(scope="module")
def translator(model_cfg):
    torch.manual_seed(0)
    return Translator(model_cfg).eval()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, translator, model_cfg) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    export_deblur_net(translator.deblur_net(), model_cfg, path)
    return path


@pytest.fixture(scope="module")
def deblurrer(model_file) -> Deblurrer:
    return Deblurrer.from_checkpoint(model_file, device="cpu")


def smooth_image(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Float32 H x W x C in [0, 1]: smooth structure plus a little noise, different in each quadrant."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / 40.0
    base = [np.sin(3 * xx + yy), np.cos(2 * yy - xx), np.sin(xx * yy)]
    img = np.stack(base[:channels], -1) * 0.3 + 0.5 + rng.normal(0, 0.04, (h, w, channels))
    img[: h // 2, : w // 2] *= 0.5  # non-stationary content: tiles see different statistics
    return np.clip(img, 0, 1).astype(np.float32)


def write_modes(folder: Path, h: int, w: int) -> dict[str, tuple[Path, Image.Image]]:
    """One file per mode: stem -> (path, the PIL image written)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(h * 1000 + w)
    rgb8 = (smooth_image(h, w) * 255).round().astype(np.uint8)
    alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
    alpha.flat[0] = 0  # fully transparent and fully opaque pixels included
    alpha.flat[-1] = 255
    rgba = Image.fromarray(np.dstack([rgb8, alpha]), "RGBA")
    gray16 = Image.fromarray((smooth_image(h, w, 1)[..., 0] * 65535).round().astype(np.uint16))
    images = {
        "gray": ("gray.png", Image.fromarray(rgb8[..., 0], "L")),
        "rgb": ("rgb.jpg", Image.fromarray(rgb8, "RGB")),
        "rgba": ("rgba.png", rgba),
        "palette": ("palette.gif", Image.fromarray(rgb8, "RGB").convert("P")),
        "gray16": ("gray16.png", gray16),
    }
    out = {}
    for stem, (name, img) in images.items():
        img.save(folder / name)
        out[stem] = (folder / name, img)
    return out


# ---------------------------------------------------------------------------------------------- sizes and modes


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_files_of_every_mode_come_back_at_exactly_their_size(tmp_path, deblurrer, size):
    h, w = size
    sources = write_modes(tmp_path / "in", h, w)
    written = deblurrer.deblur_paths([tmp_path / "in"], tmp_path / "out", progress=False)
    assert sorted(p.name for p in written) == sorted(f"{stem}.png" for stem in sources)
    expected_mode = {"gray": "L", "rgb": "RGB", "rgba": "RGBA", "palette": "RGB", "gray16": "I;16"}
    for stem, (_, src) in sources.items():
        with Image.open(tmp_path / "out" / f"{stem}.png") as out:
            out.load()
        assert out.size == (w, h), stem
        assert out.mode == expected_mode[stem], stem
        if stem == "rgba":
            assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(src.getchannel("A")))
        if stem == "gray16":
            values = np.asarray(out)
            assert values.dtype == np.uint16
            if h * w > 100:  # really 16-bit: not just 8-bit values scaled by 257
                assert np.any(values % 257 != 0)


@pytest.mark.parametrize(
    "shape, dtype",
    [((37, 53), np.uint8), ((37, 53, 1), np.uint8), ((37, 53, 3), np.uint8), ((37, 53, 4), np.uint8),
     ((37, 53, 2), np.uint8), ((37, 53), np.uint16), ((37, 53, 3), np.float64), ((1, 1, 3), np.float32)],
)
def test_arrays_come_back_with_their_shape_dtype_and_alpha(deblurrer, shape, dtype):
    rng = np.random.default_rng(1)
    if np.issubdtype(dtype, np.floating):
        arr = rng.random(shape).astype(dtype)
    else:
        arr = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    out = deblurrer(arr)
    assert isinstance(out, np.ndarray)
    assert out.shape == arr.shape and out.dtype == arr.dtype
    if len(shape) == 3 and shape[2] in (2, 4):
        assert np.array_equal(out[..., -1], arr[..., -1])  # alpha untouched, bit-exact
    if np.issubdtype(dtype, np.floating):
        assert 0.0 <= out.min() and out.max() <= 1.0


def test_pil_and_path_inputs_give_pil_images_of_the_same_size(tmp_path, deblurrer):
    img = Image.fromarray((smooth_image(37, 53) * 255).astype(np.uint8))
    img.save(tmp_path / "x.png")
    for source in (img, tmp_path / "x.png", str(tmp_path / "x.png")):
        out = deblurrer(source)
        assert isinstance(out, Image.Image) and out.size == (53, 37) and out.mode == "RGB"
    # an RGBA image whose alpha is fully opaque still comes back RGBA
    out = deblurrer(img.convert("RGBA"))
    assert out.mode == "RGBA" and np.asarray(out.getchannel("A")).min() == 255
    with pytest.raises(TypeError):
        deblurrer(42)


def test_gray_model_converts_rgb_to_gray(tmp_path):
    cfg = dataclasses.replace(load_config("tiny").model, channels=1)
    torch.manual_seed(0)
    d = Deblurrer(Translator(cfg).deblur_net(), cfg, device="cpu")
    out = d(smooth_image(21, 30))
    assert out.shape == (21, 30, 1)
    assert d(smooth_image(21, 30, 1)[..., 0]).shape == (21, 30)


# ---------------------------------------------------------------------------------------------- determinism


def test_same_input_gives_bit_identical_output(model_file):
    img = smooth_image(100, 140)
    a = Deblurrer.from_checkpoint(model_file, device="cpu")
    b = Deblurrer.from_checkpoint(model_file, device="cpu")
    assert np.array_equal(a(img), a(img))
    assert np.array_equal(a(img), b(img))
    tiled = Deblurrer.from_checkpoint(model_file, device="cpu", tile=64, overlap=16)
    assert np.array_equal(tiled(img), tiled(img))


def test_untiled_pass_is_exactly_the_network_on_the_image(deblurrer, translator):
    img = smooth_image(64, 96)  # already a multiple of 4: no padding
    with torch.inference_mode():
        x = torch.from_numpy(img.transpose(2, 0, 1))[None] * 2 - 1
        ref = ((translator.deblur_net()(x) + 1) / 2).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(deblurrer(img), ref, atol=1e-6)


# ---------------------------------------------------------------------------------------------- tiling


def _without_norms(net: nn.Module) -> nn.Module:
    """A copy with InstanceNorm/LayerNorm removed: what is left of a tiled/untiled difference is the tiling's."""
    net = copy.deepcopy(net)
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, (nn.InstanceNorm2d, LayerNorm2d)):
                setattr(module, name, nn.Identity())
    return net


def _seam_ratio(img: np.ndarray, cols: list[int]) -> float:
    """Largest step between columns c-1 and c over ``cols``, relative to the median step over the image."""
    step = np.abs(np.diff(img, axis=1)).mean(axis=(0, 2))  # step[c - 1]: between columns c - 1 and c
    return float(max(step[c - 1] for c in cols) / np.median(step))


def test_tiled_matches_untiled_and_has_no_seams(translator, model_cfg):
    img = smooth_image(100, 140)
    net = translator.deblur_net()
    whole = Deblurrer(net, model_cfg, device="cpu", tile=1024)(img)
    tiled = Deblurrer(net, model_cfg, device="cpu", tile=64, overlap=16)(img)
    exact = Deblurrer(net, model_cfg, device="cpu", tile=64, overlap=16, norm="image")(img)

    # The tiling itself (alignment, padding, blend, shared blur code), isolated by removing the normalisation
    # layers: nearly exact.
    bare = _without_norms(net)
    bare_diff = np.abs(
        Deblurrer(bare, model_cfg, device="cpu", tile=1024)(img)
        - Deblurrer(bare, model_cfg, device="cpu", tile=64, overlap=16)(img)
    )
    # norm="tile": each tile normalises with its own statistics (the documented limitation); 64-px tiles of a
    # 100x140 image with quadrants of different contrast are the hard case. norm="image" removes it.
    diff = np.abs(whole - tiled)
    diff_exact = np.abs(whole - exact)
    print(f"\ntiled vs untiled, mean abs diff: norm=tile {diff.mean():.4f}, norm=image {diff_exact.mean():.4f} "
          f"(output std {whole.std():.4f}); without norm layers {bare_diff.mean():.5f}")
    assert bare_diff.mean() < 0.005
    assert diff.mean() < 0.75 * whole.std()
    assert diff_exact.mean() < 0.01 and diff_exact.mean() < 0.2 * diff.mean()

    # No seam: at the blend centres the step between neighbouring columns is no bigger than elsewhere.
    centres = [span.own[0] for span in axis_tiles(140, 64, 16)[1:]]  # owned parts split overlaps at the centre
    print(f"step at blend centres / median step: {_seam_ratio(tiled, centres):.2f}")
    assert _seam_ratio(tiled, centres) < 1.5


class _PerTileMeanNet(nn.Module):
    """Stand-in network whose output depends strongly on per-tile statistics: the worst case for seams."""

    min_size = 8
    size_multiple = 4

    def blur_code(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], 4)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        return (x - 2 * x.mean(dim=(1, 2, 3), keepdim=True)).clamp(-1, 1)


def test_blending_hides_the_seam_that_a_hard_cut_shows(model_cfg):
    img = smooth_image(100, 140)
    ratios = {}
    for overlap in (16, 0):
        out = Deblurrer(_PerTileMeanNet(), model_cfg, device="cpu", tile=64, overlap=overlap)(img)
        borders = [span.own[0] for span in axis_tiles(140, 64, overlap)[1:]]
        ratios[overlap] = _seam_ratio(out, borders)
    print(f"\nper-tile-mean network, step at tile borders / median step: blended {ratios[16]:.2f}, "
          f"hard cut {ratios[0]:.2f}")
    assert ratios[0] > 3  # the test can see a seam...
    assert ratios[16] < 1.5  # ...and the cross-fade removes it


def test_image_statistics_make_big_tiles_exact(translator, model_cfg):
    img = smooth_image(200, 280)
    net = translator.deblur_net()
    whole = Deblurrer(net, model_cfg, device="cpu", tile=1024)(img)
    exact = Deblurrer(net, model_cfg, device="cpu", tile=128, overlap=48, norm="image", batch=2)(img)
    print(f"\nnorm=image, 128-px tiles on 200x280: mean abs diff {np.abs(whole - exact).mean():.2e}")
    assert np.abs(whole - exact).mean() < 1e-3


def test_tiling_bounds_what_the_network_sees(translator, model_cfg):
    seen: list[tuple[int, ...]] = []
    net = translator.deblur_net()
    handle = net.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape)))
    try:
        out = Deblurrer(net, model_cfg, device="cpu", tile=64, overlap=16, batch=3)(smooth_image(150, 230))
    finally:
        handle.remove()
    assert out.shape == (150, 230, 3)
    assert seen and all(s[2] <= 64 and s[3] <= 64 for s in seen)
    assert max(s[0] for s in seen) == 3  # tiles batched


def test_blur_code_of_a_tiled_image_is_close_to_the_whole_image_code(deblurrer, model_file):
    x = torch.from_numpy(smooth_image(128, 192).transpose(2, 0, 1))[None] * 2 - 1
    small_tiles = Deblurrer.from_checkpoint(model_file, device="cpu", tile=64, overlap=16)
    with torch.inference_mode():
        whole = deblurrer._blur_code(x)
        pieces = small_tiles._blur_code(x)
    assert torch.allclose(whole, pieces, atol=0.05 * whole.abs().max().item())


def test_tile_layout_covers_with_weights_summing_to_one():
    for length, tile, overlap in [(140, 64, 16), (1028, 1024, 64), (4000, 512, 128), (200, 64, 0), (68, 64, 32)]:
        total = np.zeros(length)
        owned = np.zeros(length, dtype=int)
        for span in axis_tiles(length, tile, overlap):
            assert span.start % 4 == 0 and span.start + len(span.weight) <= length
            assert span.own[0] % 4 == 0 and span.start <= span.own[0] < span.own[1] <= span.start + tile
            total[span.start : span.start + len(span.weight)] += span.weight
            owned[span.own[0] : span.own[1]] += 1
        np.testing.assert_allclose(total, 1.0, atol=1e-12)
        assert (owned == 1).all()  # owned parts partition the axis


# ---------------------------------------------------------------------------------------------- checkpoints


def test_a_full_training_checkpoint_gives_the_same_output(tmp_path, translator, model_cfg, deblurrer):
    cfg = ExperimentConfig(model=model_cfg)
    save_checkpoint(tmp_path / "state.pt", {"config": cfg.to_dict(), "translator": translator.state_dict()})
    from_pt = Deblurrer.from_checkpoint(tmp_path / "state.pt", device="cpu")
    img = smooth_image(37, 53)
    assert np.array_equal(from_pt(img), deblurrer(img))


def test_damaged_model_files_are_named_in_the_error(tmp_path, model_file):
    data = model_file.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.safetensors.*truncated or corrupt"):
        Deblurrer.from_checkpoint(truncated)
    wrong_sum = tmp_path / "model.safetensors"
    wrong_sum.write_bytes(data)
    Path(str(wrong_sum) + ".sha256").write_text("0" * 64 + "  model.safetensors\n")
    with pytest.raises(CheckpointError, match="model.safetensors.*SHA-256 mismatch"):
        Deblurrer.from_checkpoint(wrong_sum)
    with pytest.raises(CheckpointError, match="missing.safetensors"):
        Deblurrer.from_checkpoint(tmp_path / "missing.safetensors")


def test_bad_options_are_rejected(translator, model_cfg):
    net = translator.deblur_net()
    with pytest.raises(ValueError, match="tile"):
        Deblurrer(net, model_cfg, device="cpu", tile=4)
    with pytest.raises(ValueError, match="overlap"):
        Deblurrer(net, model_cfg, device="cpu", tile=64, overlap=40)
    with pytest.raises(ValueError, match="device"):
        Deblurrer(net, model_cfg, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            Deblurrer(net, model_cfg, device="cuda")


# ---------------------------------------------------------------------------------------------- bad inputs, names


def test_unreadable_files_are_reported_skipped_and_counted(tmp_path, deblurrer):
    folder = tmp_path / "in"
    write_modes(folder, 20, 30)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    good = (folder / "rgba.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    reported: list[Path] = []
    with pytest.raises(DeblurBatchError) as info:
        deblurrer.deblur_paths([folder], tmp_path / "out", progress=False, on_error=lambda p, _: reported.append(p))
    err = info.value
    assert sorted(p.name for p, _ in err.failed) == ["corrupt.png", "truncated.png"] == sorted(p.name for p in reported)
    assert "2 of 7" in str(err) and "corrupt.png" in str(err) and "truncated.png" in str(err)
    assert len(err.written) == 5 and all(p.exists() for p in err.written)  # nothing else lost
    with pytest.raises(ImageReadError, match="corrupt.png"):
        deblurrer(folder / "corrupt.png")


def test_missing_paths_and_empty_folders_fail_before_any_work(tmp_path, deblurrer):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageReadError, match="empty.*no image files"):
        deblurrer.deblur_paths([tmp_path / "empty"], tmp_path / "out", progress=False)
    with pytest.raises(ImageReadError, match="nowhere.png.*no such file"):
        deblurrer.deblur_paths([tmp_path / "nowhere.png"], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_output_names_keep_the_tree_and_resolve_clashes(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for name in ("a.jpg", "a.png", "b.tif", "sub/a.png", "sub/c.JPG"):
        (src / name).touch()
    (tmp_path / "x.bmp").touch()
    plan = plan_outputs([src, tmp_path / "x.bmp"], tmp_path / "out")
    got = {s.relative_to(tmp_path).as_posix(): d.relative_to(tmp_path / "out").as_posix() for s, d in plan}
    assert got == {
        "in/a.jpg": "a.jpg.png",  # clashes with a.png: keeps its extension in the name
        "in/a.png": "a.png",
        "in/b.tif": "b.png",
        "in/sub/a.png": "sub/a.png",
        "in/sub/c.JPG": "sub/c.png",
        "x.bmp": "x.png",
    }
    # two inputs of one name from different folders keep the folder that tells them apart
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.bmp").touch()
    plan = plan_outputs([tmp_path / "x.bmp", tmp_path / "other" / "x.bmp"], tmp_path / "o")
    assert [d.relative_to(tmp_path / "o").as_posix() for _, d in plan] == [f"{tmp_path.name}/x.png", "other/x.png"]


def test_an_output_folder_inside_the_input_is_not_read_back(tmp_path, deblurrer):
    write_modes(tmp_path / "in", 12, 16)
    first = deblurrer.deblur_paths([tmp_path / "in"], tmp_path / "in" / "out", progress=False)
    second = deblurrer.deblur_paths([tmp_path / "in"], tmp_path / "in" / "out", progress=False)
    assert sorted(first) == sorted(second) and len(first) == 5


# ---------------------------------------------------------------------------------------------- command line


@pytest.fixture()
def cli(monkeypatch):
    from udeblur.cli import main as cli_main

    # only this command: the others are built (and tested) separately
    monkeypatch.setattr(cli_main, "COMMANDS", {"deblur": "deblur_cmd"})
    return cli_main.main


def test_cli_deblurs_files_and_folders(tmp_path, cli, model_file, capsys):
    write_modes(tmp_path / "in", 37, 53)
    single = tmp_path / "single.png"
    Image.fromarray((smooth_image(5, 3) * 255).astype(np.uint8)).save(single)
    rc = cli(["deblur", str(tmp_path / "in"), str(single), "-o", str(tmp_path / "out"), "--model", str(model_file),
              "--device", "cpu", "--tile", "32", "--overlap", "8", "--quiet"])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["gray.png", "rgb.png", "rgba.png", "palette.png", "gray16.png", "single.png"]
    )
    with Image.open(tmp_path / "out" / "single.png") as out:
        assert out.size == (3, 5)
    assert "wrote 6 image(s)" in capsys.readouterr().out


def test_cli_errors_exit_2_with_one_clear_line(tmp_path, cli, model_file, capsys, monkeypatch):
    from udeblur.inference import pretrained

    write_modes(tmp_path / "in", 8, 8)
    out = str(tmp_path / "out")

    monkeypatch.setattr(pretrained, "bundled_model", lambda name=pretrained.DEFAULT: None)
    assert cli(["deblur", str(tmp_path / "in"), "-o", out]) == 2
    assert "--model" in capsys.readouterr().err

    assert cli(["deblur", str(tmp_path / "nope.jpg"), "-o", out, "--model", str(model_file)]) == 2
    assert "nope.jpg: no such file" in capsys.readouterr().err

    bad_model = tmp_path / "bad.safetensors"
    bad_model.write_bytes(model_file.read_bytes()[:100])
    assert cli(["deblur", str(tmp_path / "in"), "-o", out, "--model", str(bad_model)]) == 2
    err = capsys.readouterr().err
    assert "bad.safetensors" in err and "Traceback" not in err

    (tmp_path / "in" / "broken.png").write_bytes(b"not an image at all")
    assert cli(["deblur", str(tmp_path / "in"), "-o", out, "--model", str(model_file), "--device", "cpu",
                "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "broken.png" in err and "1 of 6" in err
    assert len(list((tmp_path / "out").iterdir())) == 5  # the readable ones were written

    assert cli(["deblur", str(tmp_path / "in"), "-o", out, "--model", str(model_file), "--tile", "64",
                "--overlap", "60"]) == 2
    assert "overlap" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- batched folders


def test_batched_overlapped_folder_equals_one_by_one(tmp_path, model_file):
    """Same-size images share forward passes, reads/writes run in threads; every output equals the serial one,
    order and error handling included (a corrupt file and a tiled image sit between batchable ones)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(7):
        size = (40, 44) if i != 3 else (70, 90)  # #3 breaks the run of same-size images and is tiled (tile 64)
        Image.fromarray((smooth_image(*size, seed=i) * 255).round().astype(np.uint8)).save(folder / f"{i}.png")
    (folder / "4b.png").write_bytes(b"not an image")
    serial = Deblurrer.from_checkpoint(model_file, device="cpu", tile=64, overlap=16)
    batched = Deblurrer.from_checkpoint(model_file, device="cpu", tile=64, overlap=16, batch=3, io_workers=3)
    outputs = {}
    for name, d in (("serial", serial), ("batched", batched)):
        with pytest.raises(DeblurBatchError) as info:
            d.deblur_paths([folder], tmp_path / name, progress=False, on_error=lambda *_: None)
        assert [p.name for p, _ in info.value.failed] == ["4b.png"]
        outputs[name] = info.value.written
    assert [p.name for p in outputs["batched"]] == [p.name for p in outputs["serial"]] == [f"{i}.png" for i in range(7)]
    for a, b in zip(outputs["serial"], outputs["batched"], strict=True):
        pa, pb = np.asarray(Image.open(a), np.int16), np.asarray(Image.open(b), np.int16)
        assert pa.shape == pb.shape
        assert np.abs(pa - pb).max() <= 1  # batched convolutions may round differently by one 8-bit level


def test_batch_of_pixels_equals_single_images(deblurrer):
    imgs = [smooth_image(36, 52, seed=s) for s in range(3)]
    batch = deblurrer.deblur_pixels_batch(imgs)
    for img, out in zip(imgs, batch, strict=True):
        np.testing.assert_allclose(out, deblurrer.deblur_pixels(img), atol=1e-5)
    with pytest.raises(ValueError, match="one shape"):
        deblurrer.deblur_pixels_batch([imgs[0], smooth_image(40, 52)])


def test_bf16_inference_is_close_to_fp32_and_fp16_needs_cuda(model_file, deblurrer):
    img = smooth_image(48, 64)
    low = Deblurrer.from_checkpoint(model_file, device="cpu", precision="bf16").deblur_pixels(img)
    ref = deblurrer.deblur_pixels(img)
    assert np.abs(low - ref).mean() < 0.02  # bf16 keeps 8 bits of mantissa: ~0.4% per op
    assert Deblurrer.from_checkpoint(model_file, device="cpu").precision == "fp32"  # auto on the CPU
    with pytest.raises(ValueError, match="CUDA"):
        Deblurrer.from_checkpoint(model_file, device="cpu", precision="fp16")


def test_tone_anchor_takes_out_a_tone_drift_and_keeps_the_detail(model_file, monkeypatch):
    """A network that brightens by 0.1 and adds a fine checkerboard: the anchor (sigma 16 px) must remove the
    brightening (blur keeps local means) and keep the checkerboard (detail finer than sigma is the network's)."""
    h, w = 96, 120
    yy, xx = np.mgrid[0:h, 0:w]
    detail = np.where((yy + xx) % 2 == 0, 0.05, -0.05).astype(np.float32)[..., None]
    blurred = (0.3 + 0.3 * smooth_image(h, w)).astype(np.float32)  # in [0.3, 0.6]: nothing clips
    plain = Deblurrer.from_checkpoint(model_file, device="cpu")
    anchored = Deblurrer.from_checkpoint(model_file, device="cpu", tone_anchor=16)
    for d in (plain, anchored):
        # in the network's [-1, 1] scale: +0.2 is +0.1 on [0, 1], the checkerboard's 0.05 is 0.1
        monkeypatch.setattr(d, "_run", lambda x: x + 0.2 + torch.from_numpy(2 * detail.transpose(2, 0, 1)))
    np.testing.assert_allclose(plain.deblur_pixels(blurred), blurred + 0.1 + detail, atol=1e-5)
    out = anchored.deblur_pixels(blurred)
    assert abs(float(out.mean() - blurred.mean())) < 1e-3  # the drift of 0.1 is gone
    np.testing.assert_allclose(out, blurred + detail, atol=2e-3)  # the checkerboard survives whole
    assert plain.tone_anchor == 0.0  # off unless asked for: a --model file's output is the network's


def test_tone_anchor_must_be_a_non_negative_sigma(model_file, cli, tmp_path, capsys):
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="tone_anchor"):
            Deblurrer.from_checkpoint(model_file, device="cpu", tone_anchor=bad)
    write_modes(tmp_path / "in", 8, 8)
    args = ["deblur", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(model_file)]
    assert cli([*args, "--tone-anchor", "-2"]) == 2
    assert "tone_anchor" in capsys.readouterr().err

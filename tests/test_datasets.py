"""Unpaired/paired datasets, domain folder discovery, the step sampler and the training loader."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from udeblur.config import load_config
from udeblur.data.datasets import (
    BadImageWarning,
    DatasetError,
    PairedDataset,
    UnpairedDataset,
    UnpairedStepSampler,
    find_domain_folders,
    make_train_loader,
)
from udeblur.imageio import list_images


def _img(rng: np.random.Generator, h: int, w: int, c: int = 3) -> np.ndarray:
    """A smooth random uint8 image (real structure, so crops at different places differ)."""
    small = rng.integers(0, 256, size=(max(2, h // 8), max(2, w // 8), c), dtype=np.uint8)
    img = Image.fromarray(small[..., 0] if c == 1 else small).resize((w, h), Image.Resampling.BILINEAR)
    arr = np.asarray(img)
    return arr + rng.integers(0, 8, size=arr.shape, dtype=np.uint8)  # fine detail


def _write(path: Path, arr: np.ndarray, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def _domain(folder: Path, n: int, seed: int, size: tuple[int, int] = (40, 52), ext: str = ".png") -> list[Path]:
    rng = np.random.default_rng(seed)
    return [_write(folder / f"{i:03d}{ext}", _img(rng, *size)) for i in range(n)]


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    r = tmp_path / "data"
    _domain(r / "train" / "sharp", 6, 0)
    _domain(r / "train" / "blurred", 4, 1, ext=".jpg")
    return r


# ------------------------------------------------------------------------------------------ folders


@pytest.mark.parametrize("layout", [("train/sharp", "train/blurred"), ("sharp", "blurred"), ("trainA", "trainB")])
def test_find_domain_folders_layouts(tmp_path: Path, layout: tuple[str, str]) -> None:
    _domain(tmp_path / layout[0], 1, 0)
    _domain(tmp_path / layout[1], 1, 1)
    f = find_domain_folders(tmp_path)
    assert (f.sharp, f.blurred) == (tmp_path / layout[0], tmp_path / layout[1])
    assert f.test_sharp is None and f.test_blurred is None


@pytest.mark.parametrize("test_layout", [("test/sharp", "test/blurred"), ("testA", "testB")])
def test_find_domain_folders_test_split(root: Path, test_layout: tuple[str, str]) -> None:
    _domain(root / test_layout[0], 2, 3)
    _domain(root / test_layout[1], 2, 4)
    f = find_domain_folders(root)
    assert (f.test_sharp, f.test_blurred) == (root / test_layout[0], root / test_layout[1])


def test_missing_and_empty_folders_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=str(tmp_path / "nope")):
        find_domain_folders(tmp_path / "nope")
    (tmp_path / "other").mkdir()
    with pytest.raises(DatasetError, match="trainA/ \\+ trainB/") as info:
        find_domain_folders(tmp_path)
    assert "other/" in str(info.value)  # says what IS there
    (tmp_path / "sharp").mkdir()
    with pytest.raises(DatasetError, match="blurred"):  # half a layout
        find_domain_folders(tmp_path)
    (tmp_path / "blurred").mkdir()
    (tmp_path / "sharp" / "notes.txt").write_text("not an image")
    _domain(tmp_path / "blurred", 1, 0)
    with pytest.raises(DatasetError, match=f"{tmp_path / 'sharp'}: .*no image files"):
        find_domain_folders(tmp_path)


def test_make_train_loader_errors(tmp_path: Path) -> None:
    cfg = load_config("tiny")
    cfg.data.root = None
    with pytest.raises(DatasetError, match="no data.root given"):
        make_train_loader(cfg)
    cfg.data.root = str(tmp_path / "missing")
    with pytest.raises(DatasetError, match="missing"):
        make_train_loader(cfg)


# ------------------------------------------------------------------------------------------ dataset


def test_unpaired_items_shape_range_and_channels(root: Path) -> None:
    for channels in (1, 3):
        ds = UnpairedDataset(list_images(root / "train/sharp"), list_images(root / "train/blurred"),
                             crop_size=32, load_size=36, channels=channels)
        item = ds[(5, 3, 123)]
        assert set(item) == {"sharp", "blurred"}
        for key in ("sharp", "blurred"):
            t = item[key]
            assert t.dtype == torch.float32 and t.shape == (channels, 32, 32)
            assert -1.0 <= float(t.min()) and float(t.max()) <= 1.0
            assert float(t.max() - t.min()) > 0.1  # real content, not a constant


def test_same_seed_same_crop_different_seed_different(root: Path) -> None:
    ds = UnpairedDataset(list_images(root / "train/sharp"), list_images(root / "train/blurred"), crop_size=24)
    a, b = ds[(0, 0, 7)], ds[(0, 0, 7)]
    assert torch.equal(a["sharp"], b["sharp"]) and torch.equal(a["blurred"], b["blurred"])
    others = [ds[(0, 0, s)]["sharp"] for s in range(8, 14)]
    assert all(not torch.equal(a["sharp"], o) for o in others)
    # independent of global RNG state
    np.random.seed(1)
    torch.manual_seed(1)
    assert torch.equal(ds[(0, 0, 7)]["sharp"], a["sharp"])


def test_flip_and_no_resize_crop_is_a_window_of_the_image(tmp_path: Path) -> None:
    arr = _img(np.random.default_rng(0), 30, 40)
    path = _write(tmp_path / "a.png", arr)
    ds = UnpairedDataset([path], [path], crop_size=16, flip=False)
    crop = ((ds[(0, 0, 3)]["sharp"].numpy().transpose(1, 2, 0) + 1) / 2 * 255).round().astype(np.uint8)
    hits = [(y, x) for y in range(15) for x in range(25) if np.array_equal(arr[y:y + 16, x:x + 16], crop)]
    assert len(hits) == 1
    ds_flip = UnpairedDataset([path], [path], crop_size=16, flip=True)
    flipped = [s for s in range(40) if not torch.equal(ds_flip[(0, 0, s)]["sharp"], ds[(0, 0, s)]["sharp"])]
    assert 5 < len(flipped) < 35  # about half the seeds flip


def test_small_images_are_reflection_padded(tmp_path: Path) -> None:
    path = _write(tmp_path / "tiny.png", _img(np.random.default_rng(0), 10, 7))
    line = _write(tmp_path / "line.png", _img(np.random.default_rng(1), 1, 5))
    ds = UnpairedDataset([path], [line], crop_size=16)
    item = ds[(0, 0, 1)]
    assert item["sharp"].shape == (3, 16, 16) and item["blurred"].shape == (3, 16, 16)


def test_grayscale_rgba_16bit_and_palette_inputs_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    gray = _write(tmp_path / "g.png", _img(rng, 20, 20, 1))
    rgba = _write(tmp_path / "rgba.png", np.dstack([_img(rng, 20, 20), np.full((20, 20), 128, np.uint8)]))
    deep = tmp_path / "d16.png"
    Image.fromarray((rng.integers(0, 65535, (20, 20))).astype(np.uint16)).save(deep)
    pal = tmp_path / "p.gif"
    Image.fromarray(_img(rng, 20, 20)).convert("P").save(pal)
    files = [gray, rgba, deep, pal]
    for channels in (1, 3):
        ds = UnpairedDataset(files, files, crop_size=16, channels=channels)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # none of these is "bad"
            for i in range(len(files)):
                t = ds[(i, i, i)]["sharp"]
                assert t.shape == (channels, 16, 16) and -1 <= float(t.min()) <= float(t.max()) <= 1
        assert ds.bad_files == []


def test_corrupt_and_truncated_files_are_skipped_and_counted(tmp_path: Path) -> None:
    good = _domain(tmp_path / "s", 4, 0)
    corrupt = tmp_path / "s" / "corrupt.png"
    corrupt.write_bytes(b"this is not a png")
    truncated = tmp_path / "s" / "truncated.jpg"
    _write(truncated, _img(np.random.default_rng(2), 64, 64), "JPEG")
    truncated.write_bytes(truncated.read_bytes()[:300])
    files = [*good, corrupt, truncated]
    ds = UnpairedDataset(files, good, crop_size=16)
    with pytest.warns(BadImageWarning, match="corrupt.png"):
        a = ds[(4, 0, 11)]
    with pytest.warns(BadImageWarning, match="truncated.jpg"):
        ds[(5, 0, 12)]
    assert sorted(Path(p).name for p in ds.bad_files) == ["corrupt.png", "truncated.jpg"]
    assert a["sharp"].shape == (3, 16, 16)
    # the substitute is deterministic, and a known-bad file is not read (or warned about) again
    fresh = UnpairedDataset(files, good, crop_size=16)
    with pytest.warns(BadImageWarning):
        assert torch.equal(fresh[(4, 0, 11)]["sharp"], a["sharp"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds[(4, 1, 11)]
    assert len(ds.bad_files) == 2


def test_mostly_broken_folder_raises(tmp_path: Path) -> None:
    bad = []
    for i in range(40):
        p = tmp_path / f"bad{i:02d}.png"
        p.write_bytes(b"garbage")
        bad.append(p)
    good = _domain(tmp_path / "g", 1, 0)
    ds = UnpairedDataset(bad + good, good, crop_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadImageWarning)
        with pytest.raises(DatasetError, match="image reads failed"):
            for k in range(40):
                ds[(k, 0, k)]
    all_bad = UnpairedDataset(bad[:3], good, crop_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadImageWarning)
        with pytest.raises(DatasetError, match="none of the 3 sharp images"):
            all_bad[(0, 0, 0)]


def test_empty_file_list_is_an_error() -> None:
    with pytest.raises(DatasetError, match="no sharp"):
        UnpairedDataset([], ["x.png"], crop_size=8)


# ------------------------------------------------------------------------------------------ sampler


def _take(sampler: UnpairedStepSampler, n: int) -> list:
    it = iter(sampler)
    return [next(it) for _ in range(n)]


def test_sampler_is_deterministic_and_resumes_exactly() -> None:
    a = _take(UnpairedStepSampler(7, 5, batch_size=2, seed=3), 20)
    assert a == _take(UnpairedStepSampler(7, 5, batch_size=2, seed=3), 20)
    assert a != _take(UnpairedStepSampler(7, 5, batch_size=2, seed=4), 20)
    assert _take(UnpairedStepSampler(7, 5, batch_size=2, seed=3, start_step=13), 7) == a[13:]
    for batch in a:
        assert len(batch) == 2
        assert all(0 <= s < 7 and 0 <= b < 5 and a_ >= 0 for s, b, a_ in batch)
    assert len({k[2] for batch in a for k in batch}) == 40  # fresh augmentation every sample


def test_sampler_epochs_cover_both_domains_independently() -> None:
    sampler = UnpairedStepSampler(10, 6, batch_size=2, seed=0)
    assert sampler.steps_per_epoch == 5
    epoch = [k for batch in _take(sampler, 5) for k in batch]
    assert sorted(k[0] for k in epoch) == list(range(10))  # each sharp image once per epoch
    blurred = [k[1] for k in epoch]
    assert set(blurred) == set(range(6)) and len(blurred) == 10  # smaller domain: chained permutations
    big = UnpairedStepSampler(200, 200, batch_size=4, seed=1)
    pairs = [k[:2] for batch in _take(big, 50) for k in batch]
    assert sum(s == b for s, b in pairs) < 10  # not paired up by index


def test_sampler_rank_slices_union_equals_single_process_batch() -> None:
    world = 3
    single = _take(UnpairedStepSampler(50, 40, batch_size=2 * world, seed=9, start_step=4), 12)
    ranks = [_take(UnpairedStepSampler(50, 40, batch_size=2, seed=9, start_step=4, rank=r, world_size=world), 12)
             for r in range(world)]
    for t in range(12):
        assert [k for r in range(world) for k in ranks[r][t]] == single[t]


def test_sampler_negative_seed_and_bad_args() -> None:
    assert _take(UnpairedStepSampler(3, 3, 1, seed=-5), 2)
    with pytest.raises(ValueError):
        UnpairedStepSampler(3, 3, 1, seed=0, rank=2, world_size=2)
    with pytest.raises(DatasetError):
        UnpairedStepSampler(0, 3, 1, seed=0)


# ----------------------------------------------------------------------------------------- paired


def _pairs(root: Path, names: list[str], sizes: dict[str, tuple[int, int]] | None = None) -> None:
    rng = np.random.default_rng(0)
    for name in names:
        h, w = (sizes or {}).get(name, (20, 28))
        _write(root / "test" / "sharp" / f"{name}.png", _img(rng, h, w))
        _write(root / "test" / "blurred" / f"{name}.jpg", _img(rng, h, w))


def test_paired_dataset_matches_by_name(tmp_path: Path) -> None:
    _pairs(tmp_path, ["a", "b", "sub/c"])
    for source in (tmp_path, tmp_path / "test", (tmp_path / "test/sharp", tmp_path / "test/blurred")):
        ds = PairedDataset(source)
        assert len(ds) == 3 and ds.names == ["a", "b", "sub/c"]
        item = ds[2]
        assert item["name"] == "sub/c" and item["sharp"].shape == item["blurred"].shape == (3, 20, 28)
        assert -1 <= float(item["blurred"].min()) <= float(item["blurred"].max()) <= 1
    assert PairedDataset(tmp_path, channels=1)[0]["sharp"].shape == (1, 20, 28)


def test_paired_dataset_reports_mismatches(tmp_path: Path) -> None:
    _pairs(tmp_path, ["a", "b"])
    _write(tmp_path / "test/sharp/only_sharp.png", _img(np.random.default_rng(1), 8, 8))
    _write(tmp_path / "test/blurred/only_blurred.png", _img(np.random.default_rng(1), 8, 8))
    with pytest.raises(DatasetError, match="only_sharp") as info:
        PairedDataset(tmp_path)
    assert "only_blurred" in str(info.value)


def test_paired_dataset_size_mismatch(tmp_path: Path) -> None:
    _pairs(tmp_path, ["a"])
    _write(tmp_path / "test/blurred/a.jpg", _img(np.random.default_rng(1), 21, 28))
    with pytest.raises(DatasetError, match="differs in size"):
        PairedDataset(tmp_path)[0]


def test_paired_dataset_missing_split(root: Path) -> None:
    with pytest.raises(DatasetError, match="no paired test folders"):
        PairedDataset(root)


# ------------------------------------------------------------------------------------------- loader


def _loader_cfg(root: Path, workers: int, channels: int = 3):
    return load_config("tiny", overrides=[f"data.root={root}", "data.crop_size=16", "data.load_size=20",
                                          f"data.num_workers={workers}", "train.batch_size=3", "train.seed=5",
                                          f"model.channels={channels}", "train.device=cpu"])


def test_train_loader_batches_do_not_depend_on_workers_and_resume(root: Path) -> None:
    (root / "train/blurred/broken.png").write_bytes(b"nope")
    batches = {}
    for workers in (0, 2):
        loader, ds = make_train_loader(_loader_cfg(root, workers))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BadImageWarning)
            it = iter(loader)
            batches[workers] = [next(it) for _ in range(6)]
            del it
        assert [Path(p).name for p in ds.bad_files] == ["broken.png"]  # gathered from the workers too
    for b0, b2 in zip(batches[0], batches[2], strict=True):
        assert set(b0) == {"sharp", "blurred"}
        assert b0["sharp"].shape == (3, 3, 16, 16)
        assert torch.equal(b0["sharp"], b2["sharp"]) and torch.equal(b0["blurred"], b2["blurred"])
    resumed, _ = make_train_loader(_loader_cfg(root, 0), start_step=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadImageWarning)
        first = next(iter(resumed))
    assert torch.equal(first["sharp"], batches[0][4]["sharp"])


def test_train_loader_grayscale(root: Path) -> None:
    loader, ds = make_train_loader(_loader_cfg(root, 0, channels=1))
    batch = next(iter(loader))
    assert batch["sharp"].shape == (3, 1, 16, 16) and ds.channels == 1


def test_train_loader_leaves_global_rng_alone(root: Path) -> None:
    torch.manual_seed(0)
    before = torch.get_rng_state()
    loader, _ = make_train_loader(_loader_cfg(root, 1))
    it = iter(loader)
    next(it)
    del it
    assert torch.equal(torch.get_rng_state(), before)


def test_own_blurred_photos_replace_the_blurred_set(tmp_path):
    from udeblur.training.trainer import Trainer

    photos = tmp_path / "my_photos"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(np.full((40, 48, 3), 60 * i, np.uint8)).save(photos / f"p{i}.png")
    cfg = load_config("tiny", ["loss.perceptual=0", "train.total_steps=2", f"data.blurred={photos}"])
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    dataset = trainer._data().dataset
    assert sorted(Path(p).name for p in dataset.files["blurred"]) == ["p0.png", "p1.png", "p2.png"]
    assert all("my_photos" not in str(p) for p in dataset.files["sharp"])  # the built-in sharp set stays
    trainer.fit()
    bad = load_config("tiny", ["loss.perceptual=0", f"data.blurred={tmp_path / 'nowhere'}"])
    with pytest.raises(DatasetError, match="nowhere"):
        Trainer(bad, tmp_path / "run2", progress=False)._data()

"""Dataset preparation (CelebA, CFP, any folder) on small fixtures that mimic each layout."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from udeblur.data.blur import BlurConfig
from udeblur.data.datasets import DatasetError, PairedDataset, find_domain_folders
from udeblur.data.prepare import prepare_celeba, prepare_cfp, prepare_folder
from udeblur.imageio import list_images, read_image

# small kernels keep the fixtures fast; the blur itself is tested with blur.py
BLUR = BlurConfig(min_kernel=3, max_kernel=7)


def _img(rng: np.random.Generator, h: int, w: int, c: int = 3) -> np.ndarray:
    small = rng.integers(0, 256, size=(max(2, h // 6), max(2, w // 6), c), dtype=np.uint8)
    img = Image.fromarray(small[..., 0] if c == 1 else small).resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(img)


def _write(path: Path, arr: np.ndarray, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)


def _celeba(src: Path, n: int = 30, partition: bool = False, identities: bool = False) -> list[str]:
    rng = np.random.default_rng(0)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for name in names:
        _write(src / "img_align_celeba" / name, _img(rng, 26, 22), "JPEG")
    if partition:  # last third is the official test partition
        (src / "list_eval_partition.txt").write_text(
            "".join(f"{name} {2 if i >= 2 * n // 3 else i % 2}\n" for i, name in enumerate(names)))
    if identities:
        (src / "Anno").mkdir()
        (src / "Anno" / "identity_CelebA.txt").write_text("".join(f"{name} {i // 3}\n" for i, name in enumerate(names)))
    return names


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


def _sources(manifest: dict, role: str) -> set[str]:
    return {src for _, src in manifest["files"][role]}


def _check_layout(out: Path, manifest: dict) -> None:
    folders = find_domain_folders(out)
    assert folders.sharp == out / "train/sharp" and folders.test_sharp == out / "test/sharp"
    assert len(list_images(out / "train/sharp")) == manifest["counts"]["train_sharp"]
    assert len(list_images(out / "train/blurred")) == manifest["counts"]["train_blurred"]
    pairs = PairedDataset(out)
    assert len(pairs) == manifest["counts"]["test"] > 0
    for i in range(len(pairs)):
        item = pairs[i]  # raises on a size mismatch
        assert item["sharp"].shape == item["blurred"].shape
        assert not np.array_equal(item["sharp"].numpy(), item["blurred"].numpy())
        kernel = np.load(out / "test/kernels" / f"{item['name']}.npy")
        assert kernel.ndim == 2 and abs(float(kernel.sum()) - 1.0) < 1e-4
    s, b, t = (_sources(manifest, r) for r in ("train_sharp", "train_blurred", "test"))
    assert not (s & b) and not (s & t) and not (b & t)  # different source images
    assert json.loads((out / "manifest.json").read_text())["counts"] == manifest["counts"]


def test_celeba_split_is_deterministic_and_disjoint(tmp_path: Path) -> None:
    src = tmp_path / "celeba"
    _celeba(src)
    kw = dict(n_sharp=10, n_blurred=10, n_test=4, blur=BLUR, workers=1, progress=False)
    m1 = prepare_celeba(src, tmp_path / "a", seed=1, **kw)
    assert m1["counts"] == {"train_sharp": 10, "train_blurred": 10, "test": 4}
    _check_layout(tmp_path / "a", m1)
    m2 = prepare_celeba(src, tmp_path / "b", seed=1, **kw)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    m3 = prepare_celeba(src, tmp_path / "c", seed=2, **kw)
    assert m3["files"] != m1["files"]
    assert m2["digest"] == m1["digest"] != m3["digest"]


def test_celeba_scales_counts_down_and_says_so(tmp_path: Path) -> None:
    src = tmp_path / "celeba" / "img_align_celeba"  # jpgs given directly
    _celeba(tmp_path / "celeba", n=20)
    with pytest.warns(UserWarning, match="scaled"):
        m = prepare_celeba(src, tmp_path / "out", blur=BLUR, workers=1, progress=False)
    assert sum(m["counts"].values()) <= 20
    assert m["counts"]["train_sharp"] + m["counts"]["train_blurred"] >= 18 and m["counts"]["test"] >= 1
    assert any("scaled" in note for note in m["notes"])


def test_celeba_partition_and_identities(tmp_path: Path) -> None:
    src = tmp_path / "celeba"
    names = _celeba(src, n=30, partition=True, identities=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = prepare_celeba(src, tmp_path / "out", n_sharp=6, n_blurred=6, n_test=4, blur=BLUR, workers=1,
                           progress=False)
    test_partition = set(names[20:])
    assert _sources(m, "test") <= test_partition and m["counts"]["test"] == 4
    ident = {name: i // 3 for i, name in enumerate(names)}
    ids = {role: {ident[s] for s in _sources(m, role)} for role in ("train_sharp", "train_blurred", "test")}
    assert not (ids["train_sharp"] & ids["train_blurred"]) and not (ids["test"] & ids["train_sharp"])
    assert not ids["test"] & ids["train_blurred"]
    _check_layout(tmp_path / "out", m)
    # strict: training only from partitions 0/1 (20 images), counts scaled down
    with pytest.warns(UserWarning, match="scaled"):
        strict = prepare_celeba(src, tmp_path / "strict", n_sharp=15, n_blurred=15, n_test=4, blur=BLUR,
                                workers=1, progress=False, strict_partition=True)
    train = _sources(strict, "train_sharp") | _sources(strict, "train_blurred")
    assert train and not train & test_partition


def test_cfp_split_by_subject(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = tmp_path / "cfp" / "Data" / "Images"
    for subject in range(1, 11):
        for view, count in (("frontal", 3), ("profile", 2)):
            for k in range(1, count + 1):
                _write(images / f"{subject:03d}" / view / f"{k:02d}.jpg", _img(rng, 24, 20), "JPEG")
    with pytest.warns(UserWarning, match="10 subjects"):
        m = prepare_cfp(tmp_path / "cfp", tmp_path / "out", seed=3, n_test_subjects=250, blur=BLUR, workers=1,
                        progress=False)
    subj = {role: {s.split("/")[0] for s in _sources(m, role)} for role in ("train_sharp", "train_blurred", "test")}
    assert len(subj["test"]) == 5 and len(subj["train_sharp"]) + len(subj["train_blurred"]) == 5
    assert not (subj["train_sharp"] & subj["train_blurred"]) and not (subj["test"] & subj["train_sharp"])
    assert not subj["test"] & subj["train_blurred"]
    assert m["counts"]["test"] == 25  # all 5 images of each test subject
    assert (tmp_path / "out/test/sharp/001").is_dir() or (tmp_path / "out/train/sharp/001").is_dir() or \
        (tmp_path / "out/train/blurred/001").is_dir()
    _check_layout(tmp_path / "out", m)


def test_folder_keeps_modes_and_groups(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    src = tmp_path / "photos"
    for person in ("ann", "bob", "cid", "dan"):
        for k in range(3):
            _write(src / person / f"{k}.png", _img(rng, 18, 18, 1))  # grayscale domain
    deep = (rng.integers(0, 65535, (18, 18))).astype(np.uint16)
    Image.fromarray(deep).save(src / "ann" / "deep16.png")
    rgba = np.dstack([_img(rng, 18, 18), np.full((18, 18), 200, np.uint8)])
    _write(src / "bob" / "alpha.png", rgba)
    (src / "bob" / "a.png").write_bytes((src / "bob" / "0.png").read_bytes())
    _write(src / "bob" / "a.jpg", _img(rng, 18, 18), "JPEG")  # same stem as a.png
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = prepare_folder(src, tmp_path / "out", n_test=3, group_by_subfolder=True, channels=1, blur=BLUR,
                           workers=1, progress=False)
    groups = {role: {s.split("/")[0] for s in _sources(m, role)} for role in ("train_sharp", "train_blurred", "test")}
    assert not (groups["train_sharp"] & groups["train_blurred"]) and not (groups["test"] & groups["train_sharp"])
    outs = [name for role in m["files"] for name, _ in m["files"][role]]
    assert len(outs) == len(set(outs))  # a.png / a.jpg do not overwrite each other
    for path in list_images(tmp_path / "out"):
        assert read_image(path).pixels.shape[2] == 1
    _check_layout(tmp_path / "out", m)


def test_folder_corrupt_sources_are_skipped_and_counted(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    for k in range(10):
        _write(src / f"{k:02d}.png", _img(rng, 16, 16))
    (src / "05.png").write_bytes(b"broken")
    jpg = src / "trunc.jpg"
    _write(jpg, _img(rng, 64, 64), "JPEG")
    jpg.write_bytes(jpg.read_bytes()[:200])
    with pytest.warns(UserWarning) as record:
        m = prepare_folder(src, tmp_path / "out", n_test=2, blur=BLUR, workers=1, progress=False)
    text = " ".join(str(w.message) for w in record)
    assert "05.png" in text and "trunc.jpg" in text and "skipped 2 unreadable" in text
    assert sorted(Path(b["file"]).name for b in m["skipped_unreadable"]) == ["05.png", "trunc.jpg"]
    assert sum(m["counts"].values()) == 9


def test_interrupted_prepare_resumes_to_identical_files(tmp_path: Path) -> None:
    src = tmp_path / "celeba"
    _celeba(src, n=24)
    kw = dict(seed=5, n_sharp=8, n_blurred=8, n_test=4, blur=BLUR, progress=False)
    out = tmp_path / "out"
    first = prepare_celeba(src, out, workers=1, **kw)
    full = _tree(out)
    # simulate an interruption: no manifest yet, some outputs of every kind missing
    (out / "manifest.json").unlink()
    gone = [r for r in full if not r.startswith(".")][::3]  # the plan file stays, as after a crash
    assert {r.rsplit("/", 1)[0] for r in gone} == {"train/sharp", "train/blurred", "test/sharp", "test/blurred",
                                                   "test/kernels"}
    for rel in gone:
        (out / rel).unlink()
    again = prepare_celeba(src, out, workers=2, **kw)  # also: worker processes give the same bytes
    assert _tree(out) == full
    with pytest.warns(UserWarning, match="did not finish"):  # training on it would warn meanwhile
        (out / "manifest.json").unlink()
        find_domain_folders(out)
    assert again["files"] == first["files"] and again["run"]["skipped"] > 0 and again["run"]["made"] > 0
    # the same folder with another seed is refused instead of mixing two splits
    with pytest.raises(DatasetError, match="seed"):
        prepare_celeba(src, out, workers=1, **{**kw, "seed": 6})


def test_prepare_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a CFP folder"):
        prepare_cfp(tmp_path, tmp_path / "out", progress=False)
    with pytest.raises(DatasetError, match="no such folder"):
        prepare_folder(tmp_path / "missing", tmp_path / "out", progress=False)
    src = tmp_path / "src"
    for k in range(4):
        _write(src / f"{k}.png", _img(np.random.default_rng(k), 8, 8))
    with pytest.raises(DatasetError, match="inside the source"):
        prepare_folder(src, src / "out", progress=False)
    (tmp_path / "used" / "train").mkdir(parents=True)
    (tmp_path / "used" / "train" / "x.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="not empty"):
        prepare_folder(src, tmp_path / "used", blur=BLUR, workers=1, progress=False)


def test_size_resizes_shorter_side_before_blurring(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for k in range(6):
        _write(tmp_path / "src" / f"{k}.png", _img(rng, 30, 45))
    m = prepare_folder(tmp_path / "src", tmp_path / "out", size=12, n_test=2, blur=BLUR, workers=1,
                       progress=False)
    assert m["size"] == 12
    for path in list_images(tmp_path / "out"):
        assert read_image(path).size == (12, 18)

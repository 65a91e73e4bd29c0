"""The built-in text-document domain: rendering, unpairedness, aligned test pairs, caching."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from udeblur.config import ConfigError
from udeblur.data.blur import BlurConfig, convolve
from udeblur.data.fonts import CHARSET, HEIGHT_PROBE, available_fonts, load_font, size_for_height
from udeblur.data.text import TextDomainConfig, make_text_domain, render_text_crop
from udeblur.data.text.vocab import all_words
from udeblur.imageio import list_images, load_pixels

QUIET = BlurConfig(kinds={"shake": 0.6, "defocus": 0.4}, max_kernel=9, min_kernel=3,
                   noise_std=(0.0, 0.0))


def tiny(**kw) -> TextDomainConfig:
    base = dict(size=48, train_count=20, test_count=6, text_height=(8, 16), blur=QUIET, seed=1)
    base.update(kw)
    return TextDomainConfig(**base)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def domain(tmp_path_factory) -> Path:
    return make_text_domain(tmp_path_factory.mktemp("text") / "dom", tiny(), workers=2, progress=False)


def test_render_text_crop_shape_text_and_seed():
    cfg = TextDomainConfig(size=96)
    a, text_a = render_text_crop(np.random.default_rng(0), cfg)
    b, text_b = render_text_crop(np.random.default_rng(0), cfg)
    c, _ = render_text_crop(np.random.default_rng(1), cfg)
    assert a.shape == (96, 96, 3) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    assert text_a == text_b and not np.array_equal(a, c)
    assert text_a.strip() and set(text_a) <= set(CHARSET + "\n")
    gray, _ = render_text_crop(np.random.default_rng(0), replace(cfg, channels=1))
    assert gray.shape == (96, 96, 1)


def test_crops_look_like_dark_text_on_light_paper():
    for seed in range(6):
        crop, text = render_text_crop(np.random.default_rng(seed), TextDomainConfig())
        luma = crop.mean(axis=2)
        paper = np.median(luma)
        assert paper > 0.6, seed  # mostly paper
        if text:
            assert luma.min() < paper - 0.3, seed  # with ink on it


@pytest.mark.parametrize("height", [8, 20, 40])
def test_font_size_gives_requested_text_height_for_every_font(height):
    for font in available_fonts():
        size = size_for_height(font.path, height)
        _, top, _, bottom = load_font(font.path, size).getbbox(HEIGHT_PROBE, anchor="ls")
        assert abs((bottom - top) - height) <= 1, (font.name, size, bottom - top)


@pytest.mark.parametrize("height", [12, 30])
def test_rendered_lines_have_the_configured_height(height):
    """Ink bands of straight lines measured on the pixels: none taller than the text height (+ a little
    for brackets and accents), and the tallest reach it."""
    cfg = TextDomainConfig(size=128, text_height=(height, height), line_spacing=(1.5, 1.5), max_rotation=0.0)
    tallest = []
    for seed in range(8):
        crop, _ = render_text_crop(np.random.default_rng(seed), cfg)
        luma = crop.mean(axis=2)
        inked = (luma < np.median(luma) - 0.25).any(axis=1)
        runs, run = [], 0
        for row in inked:
            run = run + 1 if row else 0
            runs.append(run)
        # Bands cut by the crop border say nothing about height.
        edges = np.flatnonzero(np.diff(np.concatenate([[0], inked.astype(int), [0]])))
        starts, ends = edges[::2], edges[1::2]
        full = [e - s for s, e in zip(starts, ends, strict=True) if s > 0 and e < len(inked)]
        if full:
            assert max(full) <= height + 3, (seed, full)
            tallest.append(max(full))
    assert tallest and max(tallest) >= height - 2


def test_visible_text_comes_from_the_recorded_lines(domain):
    for split in ("train/sharp.jsonl", "train/blurred.jsonl", "test/text.jsonl"):
        for rec in read_jsonl(domain / split):
            for frag in filter(None, rec["text"].split("\n")):
                assert any(frag in line for line in rec["lines"]), (split, rec["file"], frag)


def test_layout_counts_and_meta(domain):
    cfg = tiny()
    for sub, n in (("train/sharp", 20), ("train/blurred", 20), ("test/sharp", 6), ("test/blurred", 6)):
        imgs = list_images(domain / sub)
        assert len(imgs) == n, sub
        assert load_pixels(imgs[0]).shape == (48, 48, 3)
    sharp_names = [p.name for p in list_images(domain / "test/sharp")]
    assert sharp_names == [p.name for p in list_images(domain / "test/blurred")]
    kernels = sorted((domain / "test/kernels").glob("*.npy"))
    assert [k.stem for k in kernels] == [Path(n).stem for n in sharp_names]
    records = read_jsonl(domain / "test/text.jsonl")
    assert [r["file"] for r in records] == sharp_names
    assert all(cfg.text_height[0] <= r["text_height"] <= cfg.text_height[1] for r in records)
    meta = json.loads((domain / "meta.json").read_text())
    assert meta["config"]["seed"] == 1 and meta["counts"] == {"train_sharp": 20, "train_blurred": 20, "test": 6}
    assert meta["config"]["blur"]["max_kernel"] == 9 and meta["version"] >= 1


def test_sharp_and_blurred_training_text_is_disjoint(domain):
    sharp = read_jsonl(domain / "train/sharp.jsonl")
    blurred = read_jsonl(domain / "train/blurred.jsonl")
    test = read_jsonl(domain / "test/text.jsonl")

    def lines(recs):
        return {line for r in recs for line in r["lines"]}

    assert lines(sharp) and lines(blurred)
    assert not lines(sharp) & lines(blurred)
    assert not lines(test) & (lines(sharp) | lines(blurred))
    assert not {frag for r in sharp for frag in r["text"].split("\n") if len(frag) > 12} & {
        frag for r in blurred for frag in r["text"].split("\n") if len(frag) > 12}
    # Beyond the most frequent words, no word occurs on both sides.
    head = set(all_words()[0][:100])

    def words(recs):
        return {w.lower() for r in recs for line in r["lines"] for w in re.findall(r"[A-Za-z']+", line)} - head

    assert not words(sharp) & words(blurred)
    assert len(words(sharp)) > 20 and len(words(blurred)) > 20  # not vacuous


def test_test_pairs_align_pixel_for_pixel(domain):
    for rec in read_jsonl(domain / "test/text.jsonl"):
        sharp = load_pixels(domain / "test/sharp" / rec["file"])
        blurred = load_pixels(domain / "test/blurred" / rec["file"])
        kernel = np.load(domain / "test" / rec["kernel"])
        assert abs(float(kernel.sum()) - 1) < 1e-5 and kernel.shape[0] <= 9
        r = kernel.shape[0] // 2
        expect = convolve(sharp, kernel)
        # Away from the border (where the blur saw the page beyond the crop) it is the same blur; with
        # noise off only the 8-bit rounding of the blurred PNG differs.
        inner = (slice(r, -r or None), slice(r, -r or None))
        assert np.abs(expect[inner] - blurred[inner]).max() <= 0.6 / 255, rec["file"]
        # Shifting by one pixel must be clearly worse: the pair is aligned, not merely similar.
        shifted = np.abs(np.roll(expect, 1, axis=1)[inner] - blurred[inner]).mean()
        assert shifted > 5 * np.abs(expect[inner] - blurred[inner]).mean() + 1e-4


def test_noise_is_added_to_blurred_crops(tmp_path):
    noisy = replace(QUIET, noise_std=(0.02, 0.02))
    root = make_text_domain(tmp_path / "n", tiny(train_count=0, test_count=3, blur=noisy), workers=1,
                            progress=False)
    for rec in read_jsonl(root / "test/text.jsonl"):
        sharp = load_pixels(root / "test/sharp" / rec["file"])
        blurred = load_pixels(root / "test/blurred" / rec["file"])
        diff = (convolve(sharp, np.load(root / "test" / rec["kernel"])) - blurred)[5:-5, 5:-5]
        assert 0.012 < diff.std() < 0.03


def test_idempotent_reproducible_and_independent_of_workers(domain, tmp_path):
    before = files(domain)
    stamp = (domain / "train/sharp/000000.png").stat().st_mtime_ns
    assert make_text_domain(domain, tiny(), workers=2, progress=False) == domain
    assert (domain / "train/sharp/000000.png").stat().st_mtime_ns == stamp  # reused, not rewritten
    one = make_text_domain(tmp_path / "one", tiny(), workers=1, progress=False)
    assert files(one) == before
    other = make_text_domain(tmp_path / "other", tiny(seed=2), workers=1, progress=False)
    assert files(other)["train/sharp/000000.png"] != before["train/sharp/000000.png"]


def test_changed_output_is_regenerated_but_one_without_meta_is_not_ours(tmp_path):
    cfg = tiny(train_count=6, test_count=2)
    root = make_text_domain(tmp_path / "d", cfg, workers=1, progress=False)
    before = files(root)
    # output is built in a temp folder and renamed, so a folder without meta.json was not written by us
    (root / "meta.json").rename(tmp_path / "meta.json")
    with pytest.raises(ValueError, match="does not look like a generated text domain"):
        make_text_domain(root, cfg, workers=1, progress=False)
    (tmp_path / "meta.json").rename(root / "meta.json")
    assert make_text_domain(root, cfg, workers=1, progress=False) == root and files(root) == before
    smaller = replace(cfg, train_count=3)
    make_text_domain(root, smaller, workers=1, progress=False)
    assert len(list_images(root / "train/sharp")) == 3
    assert json.loads((root / "meta.json").read_text())["config"]["train_count"] == 3
    assert not list(tmp_path.glob(".d.partial*"))


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "holiday.png")
    with pytest.raises(ValueError, match="holiday.png"):  # DatasetError
        make_text_domain(tmp_path / "photos", tiny(), workers=1, progress=False)
    assert (tmp_path / "photos" / "holiday.png").exists()


def test_grayscale_domain(tmp_path):
    root = make_text_domain(tmp_path / "g", tiny(channels=1, train_count=3, test_count=1), workers=1,
                            progress=False)
    img = Image.open(root / "train/blurred/000000.png")
    assert img.mode == "L" and img.size == (48, 48)


def test_config_validation():
    with pytest.raises(ValueError, match="channels"):
        TextDomainConfig(channels=2)
    with pytest.raises(ValueError, match="text_height"):
        TextDomainConfig(text_height=(20, 10))
    cfg = TextDomainConfig(blur={"kinds": {"defocus": 1.0}, "max_kernel": 11})  # as read back from JSON
    assert isinstance(cfg.blur, BlurConfig) and cfg.blur.max_kernel == 11


def test_make_text_domain_never_replaces_a_users_dataset(tmp_path):
    from udeblur.data.datasets import DatasetError
    from udeblur.data.text import TextDomainConfig, make_text_domain

    mine = tmp_path / "mine"
    (mine / "train" / "sharp").mkdir(parents=True)
    (mine / "train" / "sharp" / "photo.png").write_bytes(b"precious")
    with pytest.raises(DatasetError, match="does not look like a generated text domain"):
        make_text_domain(mine, TextDomainConfig(train_count=2, test_count=1), workers=1, progress=False)
    assert (mine / "train" / "sharp" / "photo.png").read_bytes() == b"precious"


def test_builtin_folder_changes_with_the_installed_fonts(monkeypatch, tmp_path):
    """Installing a font package must give a new cache folder, never regenerate the one a training is reading."""
    from udeblur.config import load_config
    from udeblur.data import builtin, text

    made: list = []
    monkeypatch.setattr(text, "make_text_domain", lambda out, cfg, progress=True: made.append(out) or out)
    cfg = load_config("tiny")
    first = builtin.builtin_text_root(cfg, progress=False)
    assert builtin.builtin_text_root(cfg, progress=False) == first  # stable
    real_meta = text.domain_meta
    monkeypatch.setattr(text, "domain_meta", lambda c: {**real_meta(c), "fonts": [*real_meta(c)["fonts"], "NewFont"]})
    assert builtin.builtin_text_root(cfg, progress=False) != first


def test_a_registered_domain_is_made_once_into_its_own_cache_folder(monkeypatch, tmp_path):
    """The registry of built-in domains: a module named by one register_domain line, imported on use."""
    import sys
    import types

    from udeblur.config import load_config
    from udeblur.data import builtin

    made: list[Path] = []

    def make(out: Path, cfg: dict, progress: bool = True) -> Path:
        made.append(out)
        return out

    toy = types.ModuleType("toy_domain")
    toy.builtin_domain = lambda: builtin.BuiltinDomain(
        config=lambda cfg: {"count": cfg.data.builtin_count}, meta=dict, read_meta=lambda out: None, make=make,
        without_training=lambda c: {**c, "count": 0})
    monkeypatch.setitem(sys.modules, "toy_domain", toy)
    monkeypatch.setenv("UDEBLUR_CACHE", str(tmp_path))
    builtin.register_domain("toy", "toy_domain")
    try:
        assert {"text", "toy"} <= set(builtin.domain_names())
        cfg = load_config("tiny")
        full = builtin.builtin_root(cfg, "toy", progress=False)
        alone = builtin.builtin_root(cfg, "toy", progress=False, test_only=True)
        assert full.parent == tmp_path and full.name.startswith("toy-") and alone.name.startswith("toy-")
        assert made == [full, alone] and alone != full
        # a config selects it by name, as a YAML file would
        assert builtin.resolve_data_root(load_config("tiny", ["data.builtin=toy"]), progress=False) == full
    finally:
        builtin.unregister_domain("toy")
    with pytest.raises(KeyError, match="toy"):
        builtin.get_domain("toy")
    with pytest.raises(ConfigError, match="data.builtin: unknown built-in domain 'toy'; registered: text"):
        builtin.resolve_data_root(load_config("tiny", ["data.builtin=toy"]))


def test_a_split_with_another_seed_shares_no_test_crop(tmp_path, domain):
    """The validation split that chose the bundled model's recipe (`udeblur synth text --seed 100 --train-count 0`)
    must not repeat the test split of the default seed: neither its text nor its pixels."""
    other = make_text_domain(tmp_path / "val", tiny(seed=100, train_count=0), workers=1, progress=False)
    assert not list_images(other / "train" / "sharp")
    ours = {r["text"] for r in read_jsonl(domain / "test" / "text.jsonl")}
    theirs = {r["text"] for r in read_jsonl(other / "test" / "text.jsonl")}
    assert len(theirs) == 6 and not ours & theirs
    ours_px = {load_pixels(p, 3).tobytes() for p in list_images(domain / "test" / "sharp")}
    assert not ours_px & {load_pixels(p, 3).tobytes() for p in list_images(other / "test" / "sharp")}


def test_documents_appearance_has_readable_contrast_and_varied_paper():
    from udeblur.data.text.paper import document_colours

    rng = np.random.default_rng(0)
    luma = np.array([0.299, 0.587, 0.114])
    pairs = [document_colours(rng) for _ in range(2000)]
    contrast = np.array([abs(float((p - i) @ luma)) for p, i in pairs])
    paper = np.array([float(p @ luma) for p, _ in pairs])
    chroma = np.array([float(p.max() - p.min()) for p, _ in pairs])
    assert contrast.min() >= 0.3 - 1e-6  # every page stays readable
    assert 0.05 < (paper < 0.5).mean() < 0.3  # light print on dark paper: present, not dominant
    assert (chroma > 0.08).mean() > 0.1  # coloured paper
    assert (paper > 0.75).mean() > 0.4  # most pages are still light paper


def test_documents_domain_is_a_separate_cache_entry(tmp_path):
    from udeblur.data.text import documents_blur
    from udeblur.data.text.domain import config_json

    plain = TextDomainConfig(train_count=4, test_count=2, size=32)
    assert "appearance" not in config_json(plain)  # domains made before the key keep their folder
    docs = TextDomainConfig(train_count=4, test_count=2, size=32, appearance="documents", blur=documents_blur())
    assert config_json(docs)["appearance"] == "documents"
    out = make_text_domain(tmp_path / "docs", docs, workers=1, progress=False)
    assert len(list_images(out / "train" / "blurred")) == 4
    with pytest.raises(ValueError, match="appearance"):
        TextDomainConfig(appearance="glossy")

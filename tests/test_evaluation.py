"""Evaluation harness, supervised reference, ablations end to end, compare (resumable), CLI."""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from udeblur.cli.main import main
from udeblur.config import load_config
from udeblur.data.builtin import resolve_data_root
from udeblur.evaluation.baselines import baseline_method, model_method
from udeblur.evaluation.compare import load_compare_config, run_compare
from udeblur.evaluation.evaluate import MethodSpec, evaluate, load_test_items
from udeblur.evaluation.variants import BUILTIN_VARIANTS
from udeblur.methods.supervised import PairedCropSampler, SupervisedMethod, domain_blur_config
from udeblur.training.trainer import EXPORT_NAME, Trainer

# tiny networks, no VGG, a couple of steps: these tests check plumbing, not quality
FAST = ["loss.perceptual=0", "train.total_steps=2", "train.log_every=1", "train.sample_every=1000",
        "train.checkpoint_every=1000", "train.tensorboard=false"]


@pytest.fixture(scope="module")
def data_root():
    return resolve_data_root(load_config("tiny"), progress=False)


def _html_images_exist(page: Path) -> list[str]:
    srcs = re.findall(r"<img src='([^']+)'", page.read_text())
    assert srcs
    for src in srcs:
        assert (page.parent / src).is_file(), src
    return srcs


def test_test_items_carry_kernels_and_text(data_root):
    items = load_test_items(data_root, limit=3)
    assert len(items) == 3
    assert all(it.kernel is not None and abs(float(it.kernel.sum()) - 1) < 1e-4 for it in items)
    assert all(isinstance(it.text, str) for it in items)
    assert items[0].blurred.shape == items[0].sharp.shape


@pytest.mark.parametrize("name", [n for n, v in BUILTIN_VARIANTS.items() if v.kind == "unpaired"])
def test_each_unpaired_variant_trains_and_deblurs(name, tmp_path, data_root):
    cfg = load_config("tiny", [*FAST, *BUILTIN_VARIANTS[name].overrides])
    Trainer(cfg, tmp_path, progress=False, data_root=data_root).fit()
    method = model_method(tmp_path / EXPORT_NAME, device="cpu")
    item = load_test_items(data_root, limit=1)[0]
    out = method(item)
    assert out.shape == item.blurred.shape and np.isfinite(out).all()


def test_supervised_pairs_and_training(tmp_path, data_root):
    blur, source = domain_blur_config(data_root)
    assert source.endswith("meta.json")
    cfg = load_config("tiny", [*FAST, "train.method=supervised"])
    trainer = Trainer(cfg, tmp_path, progress=False, data_root=data_root)
    assert isinstance(trainer.method, SupervisedMethod)
    trainer.method.make_data(data_root, 0)
    sampler = trainer.method.sampler
    s, b = sampler.batch(0, 2)
    assert s.shape == b.shape == (2, 3, 32, 32)
    s2, _ = sampler.batch(0, 2)
    assert (s == s2).all()  # a step's pairs are a pure function of (seed, step)
    assert (sampler.batch(0, 1, start=1)[0] == s[1:]).all()  # a rank's share is its slice of the global batch
    trainer.fit()
    assert trainer.step == 2
    assert (tmp_path / "paired_data.txt").is_file()
    # resumable (the main trainer's rule: only the budget and the like may change), exports the Deblurrer's format
    again = Trainer(load_config("tiny", [*FAST, "train.method=supervised", "train.total_steps=3"]), tmp_path,
                    resume=True, progress=False, data_root=data_root)
    assert again.step == 2
    again.fit()
    assert again.step == 3
    item = load_test_items(data_root, limit=1)[0]
    assert model_method(tmp_path / EXPORT_NAME, device="cpu")(item).shape == item.sharp.shape
    assert isinstance(sampler, PairedCropSampler)


def test_supervised_l2_variant_trains_with_mean_squared_error(tmp_path, data_root):
    import torch.nn.functional as F

    logs = {}
    for name in ("supervised", "supervised_l2"):
        cfg = load_config("tiny", [*FAST, *BUILTIN_VARIANTS[name].overrides, "train.method=supervised"])
        trainer = Trainer(cfg, tmp_path / name, progress=False, data_root=data_root)
        batch = next(iter(trainer.method.make_data(data_root, 0).batches))
        with torch.no_grad():
            out = trainer.method.net(batch["blurred"])  # the weights before the step, which its loss is computed with
        s = batch["sharp"]
        logs[name] = (trainer.train_step(batch), F.l1_loss(out, s).item(), F.mse_loss(out, s).item())
    (l1_logs, l1, _), (l2_logs, _, mse) = logs["supervised"], logs["supervised_l2"]
    assert "l2" not in l1_logs and l1_logs["l1"] == pytest.approx(l1, rel=1e-4)
    assert "l1" not in l2_logs and l2_logs["l2"] == pytest.approx(mse, rel=1e-4)
    assert l2_logs["total"] == pytest.approx(10 * mse, rel=1e-4)
    # on the text preset (perceptual 0.1) the MSE variant drops the perceptual term, and the L1 reference keeps
    # its L1 even when a compare config's shared overrides switch the unpaired prior cycle to L2
    shared = ["loss.prior_cycle_norm=l2"]
    text_l2 = load_config("text", [*shared, *BUILTIN_VARIANTS["supervised_l2"].overrides]).loss
    text_l1 = load_config("text", [*shared, *BUILTIN_VARIANTS["supervised"].overrides]).loss
    assert (text_l2.prior_cycle_norm, text_l2.perceptual) == ("l2", 0.0)
    assert (text_l1.prior_cycle_norm, text_l1.perceptual) == ("l1", 0.1)


def test_eval_writes_report_with_existing_images(tmp_path, data_root):
    specs = [MethodSpec(n, baseline_method(n), n) for n in ("blurred", "oracle_wiener", "blind_l0")]
    res = evaluate(specs, data_root, tmp_path, limit=2, grid_rows=2, progress=False)
    for key in ("csv", "summary", "table", "report"):
        assert res.files[key].is_file()
    srcs = _html_images_exist(res.report)
    assert "grid.png" in srcs and "metrics.png" in srcs
    rows = list(csv.DictReader(open(res.files["csv"])))
    assert len(rows) == 6 and {"psnr", "ssim", "feat_dist"} <= set(rows[0])
    summary = json.loads(res.files["summary"].read_text())
    m = summary["methods"]
    assert m["oracle_wiener"]["psnr"]["mean"] > m["blurred"]["psnr"]["mean"]
    assert m["blurred"]["feat_dist"]["mean"] > 0
    # gains are paired against the blurred input: the oracle's PSNR gain is the difference of the means here
    gain = summary["vs_blurred"]["oracle_wiener"]["psnr"]
    assert set(summary["vs_blurred"]) == {"oracle_wiener", "blind_l0"} and gain["n"] == 2
    assert abs(gain["mean"] - (m["oracle_wiener"]["psnr"]["mean"] - m["blurred"]["psnr"]["mean"])) < 1e-9
    assert "Gain over the blurred input" in res.files["table"].read_text()
    # the built-in text crops know their page: the same gains with pages resampled, as many pages as labels
    pages = {item.page for item in load_test_items(data_root, limit=2)}
    by_page = summary["vs_blurred_pages"]["oracle_wiener"]["psnr"]
    assert None not in pages and by_page["groups"] == len(pages) and by_page["mean"] == pytest.approx(gain["mean"])
    assert "whole pages resampled" in res.files["table"].read_text()


def test_page_gains_resample_whole_pages():
    from udeblur.evaluation.statistics import gains_over_reference

    # two pages: one gains 1 on each of its 3 crops, the other loses 1 on its crop; crops are not independent
    rows = [{"method": m, "image": f"c{i}", "psnr": v} for i, (a, b) in enumerate([(1, 0), (1, 0), (1, 0), (0, 1)])
            for m, v in (("model", a), ("blurred", b))]
    pages = {"c0": "p", "c1": "p", "c2": "p", "c3": "q"}
    crops = gains_over_reference(rows, {"psnr": True})["model"]["psnr"]
    paged = gains_over_reference(rows, {"psnr": True}, groups=pages)["model"]["psnr"]
    assert crops["mean"] == paged["mean"] == 0.5 and paged["groups"] == 2 and "groups" not in crops
    assert paged["low"] < crops["low"]  # with only two pages the interval must widen to a page losing


def test_eval_cli_with_model_run_curves_and_ocr(tmp_path, data_root):
    run = tmp_path / "run"
    Trainer(load_config("tiny", FAST), run, progress=False, data_root=data_root).fit()
    out = tmp_path / "eval"
    rc = main(["eval", "--model", f"tiny={run / EXPORT_NAME}", "--run", f"tiny={run}", "--baseline", "blurred",
               "--data", str(data_root), "-o", str(out), "--limit", "1", "--ocr", "--quiet",
               "--no-feature-distance"])
    assert rc == 0
    assert "curves.png" in _html_images_exist(out / "index.html")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ocr_reference"].startswith("true text")
    assert "sharp" in summary["methods"] and "ocr_char_acc" in summary["methods"]["blurred"]


def test_compare_trains_evaluates_and_skips_finished(tmp_path, data_root):
    cfg_path = tmp_path / "cmp.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "name": "t", "base": "tiny", "overrides": FAST[:1] + FAST[2:], "steps": 2, "data": str(data_root),
        "eval": {"limit": 2, "grid_rows": 2, "feature_distance": False},
        "variants": ["ours", "supervised", "blurred", {"name": "ours_c5", "overrides": ["loss.cycle=5"]}],
    }))
    cfg = load_compare_config(cfg_path)
    report = run_compare(cfg, tmp_path / "out", progress=False)
    _html_images_exist(report)
    for name in ("ours", "supervised", "ours_c5"):
        assert (tmp_path / "out" / "runs" / name / "finished.json").is_file()
    mtime = (tmp_path / "out" / "runs" / "ours" / EXPORT_NAME).stat().st_mtime_ns
    run_compare(load_compare_config(cfg_path), tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "runs" / "ours" / EXPORT_NAME).stat().st_mtime_ns == mtime  # skipped


def test_compare_resumes_an_interrupted_variant(tmp_path, data_root):
    cfg = load_compare_config(Path(__file__).parents[1] / "src/udeblur/configs/compare_tiny.yaml")
    cfg.data = str(data_root)
    cfg.variants = [BUILTIN_VARIANTS["ours"]]
    run_dir = tmp_path / "runs" / "ours"
    Trainer(cfg.experiment(cfg.variants[0]), run_dir, progress=False, data_root=data_root).fit(max_steps=1)
    # as if saved before loss.prior_cycle_norm existed: the missing key takes its default, so it still resumes
    from udeblur.model_files import load_checkpoint, save_checkpoint

    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    del state["config"]["loss"]["prior_cycle_norm"]
    save_checkpoint(run_dir / "checkpoints" / "last.pt", state)
    run_compare(cfg, tmp_path, progress=False, train_only=True)
    assert json.loads((run_dir / "finished.json").read_text())["steps"] == cfg.steps
    from udeblur.training.run_logger import read_log

    assert read_log(run_dir)[-1]["step"] == cfg.steps


def test_shipped_compare_configs_load():
    root = Path(__file__).parents[1]
    shipped = sorted([*(root / "src/udeblur/configs").glob("compare_*.yaml"),
                      *(root / "experiments/compare").glob("compare_*.yaml")])
    assert len(shipped) >= 7
    for path in shipped:  # every trained variant's overrides are validated on load
        cfg = load_compare_config(path)
        assert cfg.variants and cfg.steps > 0, path.name
    text = load_compare_config(root / "experiments/compare/compare_text.yaml")
    trained = {v.name for v in text.variants if v.trained}
    assert {"ours", "cyclegan", "supervised", "no_kl", "no_perceptual", "no_blur_encoder", "no_shared_content",
            "no_cycle", "no_random_z"} <= trained
    additions = load_compare_config(root / "experiments/compare/compare_text_additions.yaml")
    assert {"text", "no_prior_cycle", "no_prior", "no_reblur", "no_kernel", "no_global_skip"} <= {
        v.name for v in additions.variants if v.trained
    }
    # the README's CycleGAN reference must stay plain CycleGAN whatever the `text` preset it is based on adds
    reference = load_compare_config(root / "experiments/compare/compare_text_reference.yaml")
    cyclegan = reference.experiment(next(v for v in reference.variants if v.name == "cyclegan"))
    assert cyclegan.loss.adv == 1.0 and not cyclegan.model.blur_encoder and not cyclegan.model.global_skip
    assert cyclegan.loss.kernel_prior == cyclegan.loss.prior_cycle == cyclegan.loss.reblur == 0


def test_compare_list_and_bad_config(tmp_path, capsys):
    assert main(["compare", "--list"]) == 0
    assert "no_random_z" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: tiny\nsteps: 2\nvariants: [ours, nonsense]\n")
    assert main(["compare", str(bad), "-o", str(tmp_path / "o")]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_paired_gain_is_image_by_image_and_its_interval_can_exclude_zero():
    from udeblur.evaluation.statistics import clearly_better, paired_gain

    rng = np.random.default_rng(0)
    ref = rng.normal(17.0, 3.0, 32)  # a wide spread between images, as PSNR over blur strengths has
    small = paired_gain(list(ref + 0.2 + rng.normal(0, 0.05, 32)), list(ref))
    # the gain (0.2) is far below the between-image spread (~3 / sqrt(32) = 0.5), yet clearly positive paired
    assert 0.15 < small["mean"] < 0.25 and 0 < small["low"] < small["mean"] < small["high"]
    assert small["better"] == 32 and small["worse"] == 0 and clearly_better(small)
    assert paired_gain(list(ref + 0.2 + rng.normal(0, 0.05, 32)), list(ref))["low"] > 0
    mixed = paired_gain(list(ref + rng.normal(0, 1.0, 32)), list(ref))
    assert mixed["low"] < 0 < mixed["high"] and not clearly_better(mixed)
    assert paired_gain(list(ref + 1), list(ref)) == paired_gain(list(ref + 1), list(ref))  # seeded
    # lower is better (a distance): a drop is the better side
    dist = paired_gain(list(ref - 1), list(ref), higher_is_better=False)
    assert dist["better"] == 32 and clearly_better(dist)
    assert not clearly_better(paired_gain(list(ref + 1), list(ref), higher_is_better=False))
    # non-finite values (an OCR that read nothing, a PSNR of inf) drop out of the pairs
    assert paired_gain([1.0, float("inf"), 2.0], [0.0, 1.0, float("nan")])["n"] == 1
    with pytest.raises(ValueError, match="against"):
        paired_gain([1.0], [1.0, 2.0])


def test_gains_over_reference_pairs_rows_by_image():
    from udeblur.evaluation.statistics import gains_over_reference

    rows = [{"method": "blurred", "image": f"{i}", "psnr": 10.0 + i} for i in range(4)]
    rows += [{"method": "ours", "image": f"{i}", "psnr": 11.0 + i} for i in (3, 1, 0)]  # other order, one missing
    rows += [{"method": "sharp", "image": "0", "ocr_char_acc": 1.0}]
    gains = gains_over_reference(rows, {"psnr": True})
    assert set(gains) == {"ours"} and gains["ours"]["psnr"]["n"] == 3 and gains["ours"]["psnr"]["mean"] == 1.0
    assert gains_over_reference([r for r in rows if r["method"] != "blurred"], {"psnr": True}) == {}


def test_paired_gain_with_groups_resamples_whole_groups():
    from udeblur.evaluation.statistics import paired_gain

    # two pages of 16 crops: one page gains 1.0 on every crop, the other loses 0.9. Crop by crop the gain looks
    # clear; with only two independent pages it cannot be.
    values = [1.0] * 16 + [-0.9] * 16
    reference = [0.0] * 32
    pages = ["a"] * 16 + ["b"] * 16
    by_crop = paired_gain(values, reference)
    by_page = paired_gain(values, reference, groups=pages)
    assert by_page["mean"] == by_crop["mean"]
    assert by_page["groups"] == 2 and "groups" not in by_crop
    assert by_crop["low"] < 0.05 < by_crop["high"] < 0.6
    assert by_page["low"] == -0.9 and by_page["high"] == 1.0  # all of one page, or all of the other, is drawn
    # non-finite pairs leave their group; a label per value is required
    assert paired_gain([1.0, float("nan")], [0.0, 0.0], groups=["a", "b"])["groups"] == 1
    with pytest.raises(ValueError, match="group labels"):
        paired_gain([1.0, 2.0], [0.0, 0.0], groups=["a"])


def test_read_text_records_keys_by_name_without_suffix(tmp_path):
    from udeblur.evaluation.evaluate import read_text_records

    assert read_text_records(tmp_path) == {}
    (tmp_path / "text.jsonl").write_text('{"file": "000001.png", "text": "ab", "font": "F", "text_height": 9}\n\n',
                                         encoding="utf-8")
    assert read_text_records(tmp_path) == {"000001": {"file": "000001.png", "text": "ab", "font": "F",
                                                      "text_height": 9}}

"""Run deblurring methods over one paired test set and measure them all the same way.

Metrics per image (restored vs sharp, RGB in [0, 1], no border crop, the restored image rounded to 8 bits as a
saved PNG would be):
    * ``psnr`` (dB), ``ssim``: :mod:`udeblur.metrics.image_quality` (Wang et al. Gaussian SSIM).
    * ``feat_dist``: L2 distance of ImageNet VGG-16 pool5 features (the Keras/Caffe VGG-16 of
      :mod:`udeblur.archs.vgg`, features divided by their RMS on natural images). The paper used VGG-19 pool5 for
      text; its weights are not available offline here. Lower is better; NaN for images under 32 px.
    * with ``ocr=True``: ``ocr_char_acc``, ``ocr_word_acc``, ``ocr_char_acc_nospace`` from RapidOCR
      (:mod:`udeblur.metrics.ocr`) against the TRUE text (``test/text.jsonl``) when present, else against the
      OCR of the sharp image. The sharp image itself is scored too (method ``sharp``): the OCR engine's ceiling.
      The true text lists only fully visible characters, so even the sharp image rarely scores 1.

Outputs (``out``): ``per_image.csv`` (one row per image and method), ``summary.json`` (means, standard errors,
counts, settings), ``table.md``, and the HTML report of :mod:`udeblur.evaluation.report`.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.datasets import find_test_folders
from ..imageio import load_pixels
from .baselines import Method, TestItem
from .statistics import clearly_better, gains_over_reference

__all__ = ["EvalResult", "MethodSpec", "evaluate", "load_test_items", "read_text_records", "METRICS"]

# metric -> (label, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "psnr": ("PSNR (dB)", True),
    "ssim": ("SSIM", True),
    "feat_dist": ("VGG-16 pool5 feature distance", False),
    "ocr_char_acc": ("OCR character accuracy", True),
    "ocr_word_acc": ("OCR word accuracy", True),
    "ocr_char_acc_nospace": ("OCR char. accuracy (no spaces)", True),
}


@dataclass
class MethodSpec:
    """A method to evaluate: its key (file-safe), label, callable and optional training run folder."""

    key: str
    method: Method
    label: str = ""
    run_dir: Path | None = None
    note: str = ""

    @property
    def title(self) -> str:
        return self.label or self.key


@dataclass
class EvalResult:
    out: Path
    rows: list[dict[str, Any]]  # per image and method
    summary: dict[str, Any]
    report: Path
    files: dict[str, Path] = field(default_factory=dict)


def read_text_records(test_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``<test_dir>/text.jsonl`` by image name without suffix (the names of ``per_image.csv``); {} without one.

    The built-in text domain writes ``file``, ``text`` (the visible truth), ``lines``, ``font`` and ``text_height``.
    """
    jsonl = Path(test_dir) / "text.jsonl"
    if not jsonl.exists():
        return {}
    records = {}
    for line in jsonl.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            records[Path(rec["file"]).with_suffix("").as_posix()] = rec
    return records


def load_test_items(data: str | os.PathLike, limit: int | None = None, channels: int = 3) -> list[TestItem]:
    """Paired test images of a data root or test folder, with true kernels/text where the data has them.

    Kernels: ``<test>/kernels/<name>.npy``; text: ``<test>/text.jsonl`` (``file``, ``text``), with ``<test>`` the
    folder holding ``sharp/`` and ``blurred/``. Pairs are matched by file name without suffix.
    """
    from ..data.datasets import PairedDataset

    sharp_dir, blurred_dir = find_test_folders(data)
    ds = PairedDataset((sharp_dir, blurred_dir), channels=channels)
    test_dir = sharp_dir.parent
    texts = {name: rec.get("text", "") for name, rec in read_text_records(test_dir).items()}
    names = ds.names if limit is None else ds.names[: max(0, int(limit))]
    items = []
    for name, (sp, bp) in zip(names, ds.pairs, strict=False):
        kpath = test_dir / "kernels" / f"{name}.npy"
        kernel = np.load(kpath) if kpath.exists() else None
        sharp, blurred = load_pixels(sp, channels), load_pixels(bp, channels)
        if sharp.shape != blurred.shape:
            raise ValueError(f"test pair {name!r}: sizes differ ({sp} vs {bp})")
        items.append(TestItem(name, blurred, sharp, kernel, texts.get(name)))
    if not items:
        raise ValueError(f"{data}: no test images (limit={limit})")
    return items


def _quantise(img: np.ndarray) -> np.ndarray:
    # metrics on what a saved 8-bit PNG holds, so numbers match files on disk (and the blurred input's)
    return (np.round(np.clip(img, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None] * 2.0 - 1.0


def _stats(values: Sequence[float]) -> dict[str, float]:
    arr = np.array([v for v in values if v is not None and not math.isnan(v) and not math.isinf(v)], dtype=float)
    if arr.size == 0:
        return {"mean": float("nan"), "sem": float("nan"), "n": 0}
    sem = float(arr.std(ddof=1) / math.sqrt(arr.size)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "sem": sem, "n": int(arr.size)}


def evaluate(
    methods: Sequence[MethodSpec],
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    ocr: bool = False,
    limit: int | None = None,
    grid_rows: int = 6,
    feature_distance: bool = True,
    progress: bool = True,
    title: str = "udeblur evaluation",
    notes: Sequence[str] = (),
    save_images: bool = False,
) -> EvalResult:
    """Evaluate ``methods`` on the paired test set ``data`` and write CSV, JSON, markdown table and HTML to ``out``.

    A method that fails on an image (e.g. an oracle without a kernel) is reported and skipped for the whole
    method, not silently mixed with others. ``save_images`` also writes every output PNG under
    ``out/images/<method>/``.
    """
    from ..imageio import save_png
    from ..metrics.image_quality import psnr, ssim

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = load_test_items(data, limit)
    keys = [m.key for m in methods]
    if len(set(keys)) != len(keys):
        raise ValueError(f"method keys must be unique, got {keys}")
    feat_net = None
    if feature_distance:
        from ..archs.vgg import load_perceptual_net

        feat_net = load_perceptual_net("vgg16", "pool5")
    show = sorted(set(np.linspace(0, len(items) - 1, min(grid_rows, len(items))).round().astype(int).tolist()))
    samples: dict[str, dict[int, np.ndarray]] = {"blurred input": {}, "sharp": {}}
    for i in show:
        samples["blurred input"][i] = items[i].blurred
        samples["sharp"][i] = items[i].sharp

    sharp_ocr: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    if ocr:
        from ..metrics.ocr import character_accuracy, ocr_text, word_accuracy

        # each sharp image is read once: it is the reference where the true text is unknown, and scored
        # against the true text (the OCR ceiling) where it is known
        for item in tqdm(items, desc="OCR sharp", unit="img", disable=not progress):
            read = sharp_ocr[item.name] = ocr_text(item.sharp)
            if item.text is not None:
                rows.append({"method": "sharp", "image": item.name, "ocr_char_acc": character_accuracy(read, item.text),
                             "ocr_word_acc": word_accuracy(read, item.text),
                             "ocr_char_acc_nospace": character_accuracy(read, item.text, ignore_spaces=True),
                             "ocr_reference": "truth", "ocr_text": read})

    for spec in methods:
        method_rows = []
        samples[spec.title] = {}
        try:
            for idx, item in enumerate(tqdm(items, desc=spec.key, unit="img", disable=not progress)):
                restored = np.asarray(spec.method(item), dtype=np.float32)
                if restored.ndim == 2:
                    restored = restored[..., None]
                if restored.shape != item.sharp.shape:
                    raise ValueError(f"{spec.key} returned shape {restored.shape} for {item.name}, "
                                     f"expected {item.sharp.shape}")
                restored = _quantise(restored)
                row: dict[str, Any] = {"method": spec.key, "image": item.name,
                                       "psnr": psnr(restored, item.sharp), "ssim": ssim(restored, item.sharp)}
                if feat_net is not None:
                    if min(restored.shape[:2]) >= 32:
                        from ..losses.perceptual import feature_distance as fd

                        row["feat_dist"] = float(fd(feat_net, _to_tensor(restored), _to_tensor(item.sharp),
                                                    "pool5")[0])
                    else:
                        row["feat_dist"] = float("nan")
                if ocr:
                    from ..metrics.ocr import ocr_scores

                    sc = ocr_scores(restored, item.text, reference_text=sharp_ocr[item.name])
                    row.update({"ocr_char_acc": sc.character_accuracy, "ocr_word_acc": sc.word_accuracy,
                                "ocr_char_acc_nospace": sc.character_accuracy_ignoring_spaces,
                                "ocr_reference": sc.reference, "ocr_text": sc.text})
                if idx in show:
                    samples[spec.title][idx] = restored
                if save_images:
                    save_png(out / "images" / spec.key / f"{item.name}.png", restored)
                method_rows.append(row)
        except (ValueError, KeyError) as exc:
            skipped[spec.key] = str(exc)
            del samples[spec.title]
            tqdm.write(f"skipping {spec.key}: {exc}")
            continue
        rows.extend(method_rows)

    summary = _summarise(rows, methods, skipped, items, data, ocr)
    files = _write_tables(out, rows, summary)
    from .report import write_eval_report

    ordered = {"blurred input": samples.pop("blurred input")}
    sharp = samples.pop("sharp")
    ordered.update(samples)
    ordered["sharp"] = sharp
    report = write_eval_report(out, summary, ordered, [items[i].name for i in show],
                               {m.title: m.run_dir for m in methods if m.run_dir is not None}, title,
                               markdown_table(summary), notes)
    files["report"] = report
    return EvalResult(out, rows, summary, report, files)


def _summarise(rows: list[dict[str, Any]], methods: Sequence[MethodSpec], skipped: Mapping[str, str],
               items: Sequence[TestItem], data: str | os.PathLike, ocr: bool) -> dict[str, Any]:
    order = ["sharp"] + [m.key for m in methods] if ocr else [m.key for m in methods]
    labels = {m.key: m.title for m in methods}
    labels["sharp"] = "sharp (OCR ceiling)"
    per_method: dict[str, Any] = {}
    for key in order:
        mrows = [r for r in rows if r["method"] == key]
        if not mrows:
            continue
        per_method[key] = {"label": labels[key],
                           **{m: _stats([r[m] for r in mrows if m in r]) for m in METRICS
                              if any(m in r for r in mrows)}}
    n_text = sum(item.text is not None for item in items)
    return {
        "data": str(data),
        "images": len(items),
        "with_true_kernel": sum(item.kernel is not None for item in items),
        "ocr": ocr,
        "ocr_reference": ("true text (test/text.jsonl)" if n_text == len(items) else
                          "OCR of the sharp image" if n_text == 0 else "true text where known, else sharp OCR"),
        "feature_net": "ImageNet VGG-16 (Keras/Caffe weights) pool5, features / RMS on natural images",
        "metrics": {k: {"label": v[0], "higher_is_better": v[1]} for k, v in METRICS.items()},
        "methods": per_method,
        # per-image differences against the blurred input with a paired-bootstrap 95% interval (statistics.py)
        "vs_blurred": gains_over_reference(rows, {m: up for m, (_, up) in METRICS.items()
                                                  if m != "ocr_char_acc_nospace"}),
        "skipped": dict(skipped),
    }


def _fmt(stat: dict[str, float] | None, digits: int) -> str:
    if not stat or stat["n"] == 0:
        return "-"
    return f"{stat['mean']:.{digits}f} ± {stat['sem']:.{digits}f}"


def markdown_table(summary: dict[str, Any]) -> str:
    present = [m for m in METRICS if any(m in v for v in summary["methods"].values())]
    digits = {"psnr": 2, "ssim": 3, "feat_dist": 2}
    lines = _table_head(present)
    for v in summary["methods"].values():
        lines.append(f"| {v['label']} | " + " | ".join(_fmt(v.get(m), digits.get(m, 3)) for m in present) + " |")
    gains = summary.get("vs_blurred") or {}
    if gains:
        shown = [m for m in present if any(m in g for g in gains.values())]
        lines += ["", "Gain over the blurred input, image by image (mean [95% paired-bootstrap interval], images "
                  "better/worse; **bold**: the whole interval is on the better side):", "", *_table_head(shown)]
        for key, g in gains.items():
            label = summary["methods"].get(key, {}).get("label", key)
            lines.append(f"| {label} | " + " | ".join(_fmt_gain(g.get(m), digits.get(m, 3)) for m in shown) + " |")
    return "\n".join(lines) + "\n"


def _table_head(metrics: Sequence[str]) -> list[str]:
    head = "| method | " + " | ".join(METRICS[m][0] + (" ↑" if METRICS[m][1] else " ↓") for m in metrics) + " |"
    return [head, "|" + "---|" * (len(metrics) + 1)]


def _fmt_gain(gain: dict[str, Any] | None, digits: int) -> str:
    if not gain or gain["n"] == 0:
        return "-"
    text = (f"{gain['mean']:+.{digits}f} [{gain['low']:+.{digits}f}, {gain['high']:+.{digits}f}], "
            f"{gain['better']}/{gain['worse']}")
    return f"**{text}**" if clearly_better(gain) else text


def _write_tables(out: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Path]:
    cols = ["method", "image", *[m for m in METRICS if any(m in r for r in rows)], "ocr_reference", "ocr_text"]
    cols = [c for c in cols if any(c in r for r in rows) or c in ("method", "image")]
    csv_path = out / "per_image.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    json_path = out / "summary.json"
    json_path.write_text(json.dumps(summary, indent=2, allow_nan=True) + "\n")
    md_path = out / "table.md"
    md_path.write_text(markdown_table(summary))
    return {"csv": csv_path, "summary": json_path, "table": md_path}

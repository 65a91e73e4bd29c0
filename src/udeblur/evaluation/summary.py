"""The summary of an evaluation: means and standard errors per method, gains over the blurred input, and the
files that hold them (``per_image.csv``, ``summary.json``, ``table.md``)."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .scores import METRICS
from .statistics import clearly_better, gains_over_reference
from .test_set import TestItem

__all__ = ["markdown_table", "stats", "summarise", "write_tables"]


def stats(values: Sequence[float]) -> dict[str, float]:
    arr = np.array([v for v in values if v is not None and not math.isnan(v) and not math.isinf(v)], dtype=float)
    if arr.size == 0:
        return {"mean": float("nan"), "sem": float("nan"), "n": 0}
    sem = float(arr.std(ddof=1) / math.sqrt(arr.size)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "sem": sem, "n": int(arr.size)}


def summarise(rows: list[dict[str, Any]], titles: Mapping[str, str], skipped: Mapping[str, str],
              items: Sequence[TestItem], data: str | os.PathLike, ocr: bool, face: bool = False) -> dict[str, Any]:
    """Means, standard errors and gains over the blurred input of ``rows``; ``titles``: method key -> title, in
    the order the methods were given."""
    order = ["sharp", *titles] if ocr else list(titles)
    labels = {**titles, "sharp": "sharp (OCR ceiling)"}
    per_method: dict[str, Any] = {}
    for key in order:
        mrows = [r for r in rows if r["method"] == key]
        if not mrows:
            continue
        per_method[key] = {"label": labels[key],
                           **{m: stats([r[m] for r in mrows if m in r]) for m in METRICS
                              if any(m in r for r in mrows)}}
    n_text = sum(item.text is not None for item in items)
    gain_metrics = {m: up for m, (_, up) in METRICS.items() if m != "ocr_char_acc_nospace"}
    pages = {item.name: item.page for item in items}
    by_page = ({"vs_blurred_pages": gains_over_reference(rows, gain_metrics, groups=pages)}
               if all(p is not None for p in pages.values()) else {})
    return {
        "data": str(data),
        "images": len(items),
        "with_true_kernel": sum(item.kernel is not None for item in items),
        "ocr": ocr,
        "ocr_reference": ("true text (test/text.jsonl)" if n_text == len(items) else
                          "OCR of the sharp image" if n_text == 0 else "true text where known, else sharp OCR"),
        "feature_net": "ImageNet VGG-16 (Keras/Caffe weights) pool5, features / RMS on natural images",
        **({"face_net": "dlib 128-D face descriptor at the sharp image's face box"} if face else {}),
        "metrics": {k: {"label": v[0], "higher_is_better": v[1]} for k, v in METRICS.items()},
        "methods": per_method,
        # per-image differences against the blurred input with a paired-bootstrap 95% interval (statistics.py)
        "vs_blurred": gains_over_reference(rows, gain_metrics),
        # the same with whole pages resampled (text data): crops of a page are alike, so this interval is honest
        **by_page,
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
        lines += _gain_rows(summary, gains, shown, digits)
    by_page = summary.get("vs_blurred_pages") or {}
    if by_page:
        n_pages = max((g["groups"] for gm in by_page.values() for g in gm.values() if "groups" in g), default=0)
        lines += ["", f"The same gains with whole pages resampled ({n_pages} pages; the crops of a page share its "
                  "font, size, ink and paper, so this is the interval to trust):", "", *_table_head(shown)]
        lines += _gain_rows(summary, by_page, shown, digits)
    return "\n".join(lines) + "\n"


def _gain_rows(summary: dict[str, Any], gains: dict[str, Any], shown: Sequence[str],
               digits: dict[str, int]) -> list[str]:
    return [f"| {summary['methods'].get(key, {}).get('label', key)} | "
            + " | ".join(_fmt_gain(g.get(m), digits.get(m, 3)) for m in shown) + " |" for key, g in gains.items()]


def _table_head(metrics: Sequence[str]) -> list[str]:
    head = "| method | " + " | ".join(METRICS[m][0] + (" ↑" if METRICS[m][1] else " ↓") for m in metrics) + " |"
    return [head, "|" + "---|" * (len(metrics) + 1)]


def _fmt_gain(gain: dict[str, Any] | None, digits: int) -> str:
    if not gain or gain["n"] == 0:
        return "-"
    text = (f"{gain['mean']:+.{digits}f} [{gain['low']:+.{digits}f}, {gain['high']:+.{digits}f}], "
            f"{gain['better']}/{gain['worse']}")
    return f"**{text}**" if clearly_better(gain) else text


def write_tables(out: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Path]:
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

"""Run deblurring methods over one paired test set and measure them all the same way.

The metrics are :mod:`udeblur.evaluation.scores`'s, the means and gains :mod:`udeblur.evaluation.summary`'s.
Outputs (``out``): ``per_image.csv`` (one row per image and method), ``summary.json`` (means, standard errors,
counts, settings), ``table.md``, and the HTML report of :mod:`udeblur.evaluation.report_page`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .baselines import Method
from .scores import METRICS, Scorer, quantise
from .summary import markdown_table, summarise, write_tables
from .test_set import TestItem, load_test_items, read_text_records

__all__ = ["EvalResult", "MethodSpec", "evaluate", "load_test_items", "markdown_table", "read_text_records",
           "METRICS"]


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


def evaluate(
    methods: Sequence[MethodSpec],
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    ocr: bool = False,
    limit: int | None = None,
    grid_rows: int = 6,
    feature_distance: bool = True,
    face: bool = False,
    progress: bool = True,
    title: str = "udeblur evaluation",
    notes: Sequence[str] = (),
    save_images: bool = False,
) -> EvalResult:
    """Evaluate ``methods`` on the paired test set ``data`` and write CSV, JSON, markdown table and HTML to ``out``.

    A method that fails on an image (e.g. an oracle without a kernel) is reported and skipped for the whole
    method, not silently mixed with others. ``face``: also the face identity distance (face data). ``save_images``
    also writes every output PNG under ``out/images/<method>/``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = load_test_items(data, limit)
    keys = [m.key for m in methods]
    if len(set(keys)) != len(keys):
        raise ValueError(f"method keys must be unique, got {keys}")
    scorer = Scorer(items, feature_distance=feature_distance, ocr=ocr, face=face, progress=progress)
    show = sorted(set(np.linspace(0, len(items) - 1, min(grid_rows, len(items))).round().astype(int).tolist()))
    samples: dict[str, dict[int, np.ndarray]] = {"blurred input": {i: items[i].blurred for i in show}}
    rows: list[dict[str, Any]] = list(scorer.sharp_rows)
    skipped: dict[str, str] = {}
    for spec in methods:
        try:
            method_rows, samples[spec.title] = _run_method(spec, items, scorer, show, out if save_images else None,
                                                           progress)
        except (ValueError, KeyError) as exc:
            skipped[spec.key] = str(exc)
            tqdm.write(f"skipping {spec.key}: {exc}")
            continue
        rows.extend(method_rows)
    samples["sharp"] = {i: items[i].sharp for i in show}

    summary = summarise(rows, {m.key: m.title for m in methods}, skipped, items, data, ocr, face)
    files = write_tables(out, rows, summary)
    from .report_page import write_eval_report

    report = write_eval_report(out, summary, samples, [items[i].name for i in show],
                               {m.title: m.run_dir for m in methods if m.run_dir is not None}, title,
                               markdown_table(summary), notes)
    files["report"] = report
    return EvalResult(out, rows, summary, report, files)


def _run_method(spec: MethodSpec, items: Sequence[TestItem], scorer: Scorer, show: Sequence[int],
                image_dir: Path | None, progress: bool) -> tuple[list[dict[str, Any]], dict[int, np.ndarray]]:
    """One method over every item: its score rows and the outputs of the items ``show``n in the grid."""
    from ..imageio import save_png

    rows, shown = [], {}
    for idx, item in enumerate(tqdm(items, desc=spec.key, unit="img", disable=not progress)):
        restored = np.asarray(spec.method(item), dtype=np.float32)
        if restored.ndim == 2:
            restored = restored[..., None]
        if restored.shape != item.sharp.shape:
            raise ValueError(f"{spec.key} returned shape {restored.shape} for {item.name}, "
                             f"expected {item.sharp.shape}")
        restored = quantise(restored)
        row = scorer.score(spec.key, item, restored)
        if idx in show:
            shown[idx] = restored
        if image_dir is not None:
            save_png(image_dir / "images" / spec.key / f"{item.name}.png", restored)
        rows.append(row)
    return rows, shown

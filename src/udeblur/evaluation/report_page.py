"""The evaluation report: comparison grid, metric bar charts, training curves, one HTML page.

Plots use matplotlib's Agg backend (no display needed) and are written as PNGs beside ``index.html``; the
page references them by relative path, so the folder can be moved or published as is.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..losses.terms import CURVE_KEYS

__all__ = ["bar_charts", "comparison_grid", "training_curves", "write_eval_report"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def comparison_grid(columns: Mapping[str, Mapping[int, np.ndarray]], row_names: Sequence[str], path: Path) -> Path:
    """Rows = test images, columns = blurred | each method | sharp, with column titles."""
    plt = _plt()
    titles = list(columns)
    indices = sorted(next(iter(columns.values())).keys())
    n_rows, n_cols = len(indices), len(titles)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.6 * n_cols, 1.6 * n_rows + 0.4), squeeze=False)
    for r, idx in enumerate(indices):
        for c, title in enumerate(titles):
            ax = axes[r][c]
            img = columns[title].get(idx)
            if img is not None:
                ax.imshow(np.clip(img if img.shape[2] == 3 else img[..., 0], 0, 1), cmap="gray", vmin=0, vmax=1,
                          interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("\n".join(textwrap.wrap(title, 22)), fontsize=7)
            if c == 0 and r < len(row_names):
                ax.set_ylabel(row_names[r], fontsize=6)
    fig.tight_layout(pad=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def bar_charts(summary: dict[str, Any], path: Path) -> Path:
    """One bar chart per metric (mean ± standard error over the test images)."""
    plt = _plt()
    methods = summary["methods"]
    metrics = [m for m, info in summary["metrics"].items() if any(m in v for v in methods.values())]
    n = len(metrics)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 0.32 * len(methods) * rows + 1.5 * rows),
                             squeeze=False)
    for i, metric in enumerate(metrics):
        ax = axes[i // cols][i % cols]
        names = [v["label"] for v in methods.values() if metric in v and v[metric]["n"]]
        means = [v[metric]["mean"] for v in methods.values() if metric in v and v[metric]["n"]]
        sems = [v[metric]["sem"] for v in methods.values() if metric in v and v[metric]["n"]]
        y = np.arange(len(names))
        ax.barh(y, means, xerr=sems, color="#4c72b0", alpha=0.85)
        ax.set_yticks(y)
        ax.set_yticklabels(names, fontsize=7)
        ax.invert_yaxis()
        info = summary["metrics"][metric]
        ax.set_title(f"{info['label']} ({'higher' if info['higher_is_better'] else 'lower'} is better)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        finite = [m for m in means if np.isfinite(m)]
        if metric == "psnr" and finite:
            ax.set_xlim(min(finite) - 2, max(finite) + 1)  # PSNR differences are small relative to its value
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def training_curves(run_dirs: Mapping[str, Path], path: Path) -> Path | None:
    """Loss curves from each run's ``log.jsonl``, one panel per logged loss, one line per run."""
    from ..training.run_logger import read_log

    logs = {name: read_log(Path(d)) for name, d in run_dirs.items()}
    logs = {k: v for k, v in logs.items() if v}
    if not logs:
        return None
    keys = [k for k in CURVE_KEYS if any(k in r for recs in logs.values() for r in recs)]
    if not keys:
        return None
    plt = _plt()
    cols = min(4, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    for i, key in enumerate(keys):
        ax = axes[i // cols][i % cols]
        for name, recs in logs.items():
            pts = [(r["step"], r[key]) for r in recs if r.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=name, linewidth=1)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=7)
    for j in range(len(keys), rows * cols):
        axes[j // cols][j % cols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=7)
        fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(labels) // 4), 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_eval_report(
    out: Path,
    summary: dict[str, Any],
    columns: Mapping[str, Mapping[int, np.ndarray]],
    row_names: Sequence[str],
    run_dirs: Mapping[str, Path],
    title: str,
    table_markdown: str,
    notes: Sequence[str] = (),
) -> Path:
    """grid.png, metrics.png, curves.png (when runs are given) and index.html in ``out``."""
    from ..html_page import write_html

    out = Path(out)
    images: list[tuple[str, str]] = []
    comparison_grid(columns, row_names, out / "grid.png")
    images.append((" | ".join(columns), "grid.png"))
    bar_charts(summary, out / "metrics.png")
    images.append(("mean ± standard error over the test images", "metrics.png"))
    if training_curves(run_dirs, out / "curves.png") is not None:
        images.append(("training curves (log.jsonl)", "curves.png"))
    table = []
    for v in summary["methods"].values():
        row: dict[str, object] = {"method": v["label"]}
        for m, info in summary["metrics"].items():
            if m in v and v[m]["n"]:
                row[info["label"]] = v[m]["mean"]
                row[f"± ({m})"] = v[m]["sem"]
        row["images"] = max((v[m]["n"] for m in summary["metrics"] if m in v), default=0)
        table.append(row)
    page_notes = [
        f"Test set: {summary['data']} ({summary['images']} paired images; true kernels for "
        f"{summary['with_true_kernel']}). Metrics on RGB in [0, 1] after rounding outputs to 8 bits; "
        f"feature distance: {summary['feature_net']}.",
    ]
    if summary["ocr"]:
        page_notes.append(f"OCR (RapidOCR) scored against the {summary['ocr_reference']}; the 'sharp' row is the "
                          "sharp image's own score, the ceiling the OCR engine allows (the true text lists only "
                          "fully visible characters).")
    for key, why in summary["skipped"].items():
        page_notes.append(f"Skipped {key}: {why}")
    page_notes += list(notes)
    page = write_html(out / "index.html", title, table, images, page_notes)
    # the markdown table (for READMEs) under the page's table
    text = page.read_text()
    md = table_markdown.replace("&", "&amp;").replace("<", "&lt;")
    page.write_text(text.replace("</body>", f"<h2>Markdown</h2><pre>{md}</pre></body>"))
    return page

"""Paired gains over the blurred input with PAGES, not crops, resampled (model card, issue 6).

    python docs/measure_page_clusters.py DATA_ROOT EVAL_DIR METHOD

The built-in text domain cuts up to 9 crops from each rendered page, and the crops of a page share its font, text
size, ink and paper. They are not independent, so a bootstrap over crops (what ``udeblur eval`` reports) is too
narrow when a split holds few pages. This groups the crops of EVAL_DIR/per_image.csv by page (font and text size
from DATA_ROOT/test/text.jsonl stand in for a page id; two pages sharing both would merge, which no current split
has), resamples pages, and prints each metric's mean gain, its 95% interval and how many pages gain or lose on
average. With very few pages (the built-in test split has 4) no such interval is reliable: read the page counts.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

METRICS = ("psnr", "ssim", "ocr_char_acc")


def page_bootstrap(gains: dict[tuple, list[float]], resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean gain over all crops when whole pages are drawn with replacement."""
    pages = list(gains)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for i in range(resamples):
        drawn = rng.integers(0, len(pages), len(pages))
        means[i] = np.concatenate([gains[pages[j]] for j in drawn]).mean()
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path, help="data root whose test/text.jsonl names each crop's font and text size")
    ap.add_argument("eval_dir", type=Path, help="a folder written by udeblur eval (with -b blurred)")
    ap.add_argument("method", help="the method's name in that evaluation")
    args = ap.parse_args()
    page = {}
    for line in (args.data / "test" / "text.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            page[Path(rec["file"]).with_suffix("").as_posix()] = (rec["font"], rec["text_height"])
    rows: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    with open(args.eval_dir / "per_image.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows[row["method"]][row["image"]] = row
    for needed in (args.method, "blurred"):
        if needed not in rows:
            raise SystemExit(f"{args.eval_dir}: no rows for {needed!r} (methods: {', '.join(sorted(rows))})")
    print(f"{args.method}: {len(set(page[i] for i in rows[args.method]))} pages, {len(rows[args.method])} crops")
    for metric in METRICS:
        gains: dict[tuple, list[float]] = defaultdict(list)
        for image, row in rows[args.method].items():
            ref = rows["blurred"].get(image, {})
            if row.get(metric) and ref.get(metric):
                diff = float(row[metric]) - float(ref[metric])
                if math.isfinite(diff):
                    gains[page[image]].append(diff)
        if not gains:
            continue
        low, high = page_bootstrap(gains)
        mean = float(np.concatenate(list(gains.values())).mean())
        per_page = [float(np.mean(v)) for v in gains.values()]
        better, worse = sum(v > 0 for v in per_page), sum(v < 0 for v in per_page)
        print(f"  {metric:13s} {mean:+.3f} [{low:+.3f}, {high:+.3f}], pages better/worse {better}/{worse}")


if __name__ == "__main__":
    main()

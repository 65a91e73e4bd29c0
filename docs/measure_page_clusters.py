"""Paired gains over the blurred input with PAGES, not crops, resampled (model card, issue 6).

    python docs/measure_page_clusters.py DATA_ROOT EVAL_DIR METHOD

The built-in text domain cuts up to 9 crops from each rendered page, and the crops of a page share its font, text
size, ink and paper. They are not independent, so a bootstrap over crops (what ``udeblur eval`` reports) is too
narrow when a split holds few pages. This groups the crops of EVAL_DIR/per_image.csv by page (``page_of``: font,
text size and lines from DATA_ROOT/test/text.jsonl, as `udeblur eval`'s page intervals do), resamples pages, and
prints each metric's mean gain, its 95% interval and how many pages gain or lose on average. With very few pages
(the built-in test split has 4) no such interval is reliable: read the page counts.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from udeblur.evaluation.statistics import paired_gain
from udeblur.evaluation.test_set import page_of, read_text_records

METRICS = ("psnr", "ssim", "ocr_char_acc")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path, help="data root whose test/text.jsonl names each crop's font and text size")
    ap.add_argument("eval_dir", type=Path, help="a folder written by udeblur eval (with -b blurred)")
    ap.add_argument("method", help="the method's name in that evaluation")
    args = ap.parse_args()
    page = {name: page_of(rec) for name, rec in read_text_records(args.data / "test").items()}
    if not page:
        raise SystemExit(f"{args.data / 'test' / 'text.jsonl'}: not found or empty (DATA: a text data root)")
    rows: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    with open(args.eval_dir / "per_image.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows[row["method"]][row["image"]] = row
    for needed in (args.method, "blurred"):
        if needed not in rows:
            raise SystemExit(f"{args.eval_dir}: no rows for {needed!r} (methods: {', '.join(sorted(rows))})")
    print(f"{args.method}: {len(set(page[i] for i in rows[args.method]))} pages, {len(rows[args.method])} crops")
    for metric in METRICS:
        pairs = [(float(row[metric]), float(rows["blurred"][image][metric]), page[image])
                 for image, row in rows[args.method].items()
                 if row.get(metric) and rows["blurred"].get(image, {}).get(metric)]
        if not pairs:
            continue
        values, reference, pages = zip(*pairs, strict=True)
        gain = paired_gain(values, reference, groups=pages)
        per_page: dict[tuple, list[float]] = defaultdict(list)
        for a, b, p in pairs:
            if math.isfinite(a - b):
                per_page[p].append(a - b)
        means = [float(np.mean(v)) for v in per_page.values()]
        better, worse = sum(m > 0 for m in means), sum(m < 0 for m in means)
        print(f"  {metric:13s} {gain['mean']:+.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}], "
              f"pages better/worse {better}/{worse}")

if __name__ == "__main__":
    main()

"""Does the OCR metric's handling of lines cut by the crop border change who wins? (model card, issue 6)

    python docs/measure_ocr_border_lines.py DATA_ROOT EVAL_DIR [EVAL_DIR ...]

The truth text of a built-in text crop leaves out the lines whose x-height band the crop border cuts, but a sharp
enough image lets the OCR read part of them, and that extra line costs character accuracy. This re-scores the OCR
readings an ``udeblur eval --ocr`` run already saved (EVAL_DIR/per_image.csv, lines separated by newlines) with
those border lines treated as "don't care" (ICDAR benchmarks mark such regions beforehand; here the choice is
made after reading): the first and the last line read may each be left out, whichever of the four choices matches
the truth best. That is a little optimistic (it can also forgive a misread first or last line), and the same for
every method. Only readings scored against the true text (ocr_reference "truth") are used.
Prints each method's mean character accuracy both ways and its paired gain over the blurred input both ways.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from udeblur.evaluation.evaluate import read_text_records
from udeblur.evaluation.statistics import paired_gain
from udeblur.metrics.ocr import character_accuracy


def border_tolerant_accuracy(read: str, truth: str) -> float:
    """Character accuracy with the first and/or last line read left out when that matches the truth better."""
    lines = read.split("\n") if read else []
    best = character_accuracy(read, truth)
    if not truth.strip():
        return best  # nothing to match: leaving lines out would turn any short reading into a perfect one
    for top in (0, 1):
        for bottom in (0, 1):
            if top or bottom:
                best = max(best, character_accuracy("\n".join(lines[top : len(lines) - bottom]), truth))
    return best


def _fmt(gain: dict) -> str:
    return f"{gain['mean']:+.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path, help="data root whose test/text.jsonl holds the truth")
    ap.add_argument("evals", type=Path, nargs="+", help="folders written by udeblur eval --ocr")
    args = ap.parse_args()
    truth = {name: rec["text"] for name, rec in read_text_records(args.data / "test").items()}
    if not truth:
        raise SystemExit(f"{args.data / 'test' / 'text.jsonl'}: not found or empty (DATA: a text data root)")
    for folder in args.evals:
        scores: dict[str, dict[str, tuple[float, float]]] = {}
        with open(folder / "per_image.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row.get("ocr_char_acc") and row.get("ocr_reference") == "truth":
                    new = border_tolerant_accuracy(row["ocr_text"], truth[row["image"]])
                    scores.setdefault(row["method"], {})[row["image"]] = (float(row["ocr_char_acc"]), new)
        if "blurred" not in scores:
            raise SystemExit(f"{folder}: no 'blurred' rows to compare with (run udeblur eval with -b blurred)")
        ref = scores["blurred"]
        print(folder)
        for method, per_image in scores.items():
            names = sorted(per_image)
            old = [per_image[n][0] for n in names]
            new = [per_image[n][1] for n in names]
            mean_old, mean_new = sum(old) / len(old), sum(new) / len(new)
            text = f"  {method:16s} as scored {mean_old:.3f}, border lines not scored {mean_new:.3f}"
            if method not in ("blurred", "sharp"):
                gain_old = paired_gain(old, [ref[n][0] for n in names])
                gain_new = paired_gain(new, [ref[n][1] for n in names])
                text += f"  gain {_fmt(gain_old)} -> {_fmt(gain_new)}"
            print(text)


if __name__ == "__main__":
    main()

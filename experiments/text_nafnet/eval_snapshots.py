"""Validation curve of a run: PSNR/SSIM gain over the blurred input for every exported snapshot.

    python experiments/text_nafnet/eval_snapshots.py RUN_DIR VAL_ROOT [VAL_ROOT ...] [--tone-anchor 16]

RUN_DIR/snapshots/deblur_*.safetensors come from ``train.snapshot_every``. Each VAL_ROOT is a paired split made with
another seed than any test split (e.g. ``udeblur synth text -o val --train-count 0 --test-count 128 --seed 100``).
Writes RUN_DIR/validation_curve.csv (one row per snapshot and split) and prints it. Only validation splits belong
here: the held-out split is scored once, for the chosen model.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from udeblur.evaluation.evaluate import load_test_items
from udeblur.evaluation.statistics import paired_gain
from udeblur.inference.deblurrer import Deblurrer
from udeblur.metrics.image_quality import psnr, ssim


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("splits", type=Path, nargs="+")
    ap.add_argument("--tone-anchor", type=float, default=0.0, help="Deblurrer tone anchor sigma [0: off]")
    ap.add_argument("--every", type=int, default=1, help="score every N-th snapshot [1]")
    args = ap.parse_args()
    snaps = sorted((args.run / "snapshots").glob("deblur_*.safetensors"))[:: args.every]
    out = args.run / "validation_curve.csv"
    done = set()
    if out.exists():
        with out.open() as fh:
            done = {(r["step"], r["split"], r["tone_anchor"]) for r in csv.DictReader(fh)}
    splits = {path: load_test_items(path) for path in args.splits}
    fields = ["step", "split", "tone_anchor", "psnr", "psnr_gain", "psnr_low", "psnr_high", "ssim", "ssim_gain",
              "better"]
    new = not out.exists()
    with out.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fields)
        if new:
            writer.writeheader()
        for snap in snaps:
            step = str(int(snap.stem.split("_")[1]))
            deblur = None
            for path, items in splits.items():
                key = (step, str(path), str(args.tone_anchor))
                if key in done:
                    continue
                deblur = deblur or Deblurrer.from_checkpoint(snap, device="cpu", tone_anchor=args.tone_anchor,
                                                             engine="torch")  # no ONNX graph per snapshot
                # 8-bit, as the PNGs a user gets and as `udeblur eval` scores them
                outs = [np.round(np.clip(deblur(item.blurred), 0, 1) * 255) / 255 for item in items]
                p = [psnr(o, item.sharp) for o, item in zip(outs, items, strict=True)]
                p0 = [psnr(item.blurred, item.sharp) for item in items]
                s = [ssim(o, item.sharp) for o, item in zip(outs, items, strict=True)]
                s0 = [ssim(item.blurred, item.sharp) for item in items]
                g, gs = paired_gain(p, p0), paired_gain(s, s0)
                row = {"step": step, "split": str(path), "tone_anchor": args.tone_anchor,
                       "psnr": f"{sum(p) / len(p):.3f}", "psnr_gain": f"{g['mean']:+.3f}",
                       "psnr_low": f"{g['low']:+.3f}", "psnr_high": f"{g['high']:+.3f}",
                       "ssim": f"{sum(s) / len(s):.4f}", "ssim_gain": f"{gs['mean']:+.4f}",
                       "better": f"{g['better']}/{g['n']}"}
                writer.writerow(row)
                fh.flush()
                print(row, flush=True)


if __name__ == "__main__":
    main()

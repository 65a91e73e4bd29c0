"""Validation curve of a run: gains over the blurred input for every exported snapshot, through `udeblur eval`'s
harness (the same metrics, 8-bit outputs and paired intervals; intervals resample whole pages).

    python experiments/text_nafnet/eval_snapshots.py RUN_DIR VAL_ROOT [VAL_ROOT ...] [--tone-anchor 16] [--ocr]

RUN_DIR/snapshots/deblur_*.safetensors come from ``train.snapshot_every``. Each VAL_ROOT is a paired split made with
another seed than any test split (e.g. ``udeblur synth text -o val --train-count 0 --test-count 128 --seed 100``).
Appends to RUN_DIR/validation_curve.csv (one row per snapshot, split, tone anchor and OCR setting; rows already
there are skipped) and prints each row. Only validation splits belong here: the held-out split is scored once, for
the chosen model.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

from udeblur.evaluation.baselines import baseline_method, model_method
from udeblur.evaluation.evaluate import MethodSpec, evaluate

FIELDS = ["step", "split", "tone_anchor", "psnr", "psnr_gain", "psnr_low", "psnr_high", "ssim", "ssim_gain",
          "better", "pages", "ocr", "ocr_gain", "ocr_low", "ocr_high"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("splits", type=Path, nargs="+")
    ap.add_argument("--tone-anchor", type=float, default=0.0, help="Deblurrer tone anchor sigma [0: off]")
    ap.add_argument("--every", type=int, default=1, help="score every N-th snapshot [1]")
    ap.add_argument("--ocr", action="store_true", help="also OCR character accuracy (RapidOCR; ~1 min a split)")
    args = ap.parse_args()
    snaps = sorted((args.run / "snapshots").glob("deblur_*.safetensors"))[:: args.every]
    out = args.run / "validation_curve.csv"
    done = set()
    if out.exists():
        with out.open() as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames != FIELDS:
                raise SystemExit(f"{out}: written by an older version of this script (columns "
                                 f"{reader.fieldnames}); move it aside")
            done = {(r["step"], r["split"], r["tone_anchor"], bool(r["ocr"])) for r in reader}
    new = not out.exists()
    with out.open("a", newline="") as fh, tempfile.TemporaryDirectory() as tmp:
        writer = csv.DictWriter(fh, FIELDS)
        if new:
            writer.writeheader()
        for snap in snaps:
            step = str(int(snap.stem.split("_")[1]))
            for split in args.splits:
                if (step, str(split), str(args.tone_anchor), args.ocr) in done:
                    continue
                model = model_method(snap, device="cpu", tone_anchor=args.tone_anchor, engine="torch")
                specs = [MethodSpec("model", model), MethodSpec("blurred", baseline_method("blurred"))]
                summary = evaluate(specs, split, tmp, ocr=args.ocr, feature_distance=False, progress=False).summary
                mean = summary["methods"]["model"]
                gains = summary["vs_blurred_pages"]["model"]
                p, s = gains["psnr"], gains["ssim"]
                row = {"step": step, "split": str(split), "tone_anchor": args.tone_anchor,
                       "psnr": f"{mean['psnr']['mean']:.3f}", "psnr_gain": f"{p['mean']:+.3f}",
                       "psnr_low": f"{p['low']:+.3f}", "psnr_high": f"{p['high']:+.3f}",
                       "ssim": f"{mean['ssim']['mean']:.4f}", "ssim_gain": f"{s['mean']:+.4f}",
                       "better": f"{p['better']}/{p['n']}", "pages": p["groups"], "ocr": "", "ocr_gain": "",
                       "ocr_low": "", "ocr_high": ""}
                if args.ocr:
                    o = gains["ocr_char_acc"]
                    row.update(ocr=f"{mean['ocr_char_acc']['mean']:.3f}", ocr_gain=f"{o['mean']:+.3f}",
                               ocr_low=f"{o['low']:+.3f}", ocr_high=f"{o['high']:+.3f}")
                writer.writerow(row)
                fh.flush()
                print(row, flush=True)


if __name__ == "__main__":
    main()

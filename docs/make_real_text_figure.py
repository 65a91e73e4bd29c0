"""Check a model on real text that packages ship, and draw docs/text_model_real.jpg.

    python docs/make_real_text_figure.py [--tone-anchor SIGMA]                 # the bundled model -> docs/
    python docs/make_real_text_figure.py --model PATH --out FIG.jpg [--tone-anchor SIGMA]   # another model

scikit-image's `page` (a scanned book page, 191x384) and `text` (a photographed sign, 172x448) are blurred by
camera-shake kernels of 9, 15 and 21 px (Boracchi-Foi trajectories, seeds fixed) plus noise of std 0.01, then
deblurred (whole image, one pass). Prints PSNR/SSIM of blurred and deblurred against the real sharp image and
OCR character accuracy (RapidOCR) against the OCR of the sharp image; the figure shows blurred | deblurred | sharp.
The blur is synthetic; the text, fonts, paper and lighting are real.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="model file; default: the bundled one")
    ap.add_argument("--tone-anchor", type=float, default=None,
                    help="sigma in px; default: the model's own (16 for the bundled one, 0 for a --model file)")
    ap.add_argument("--out", help="figure path; default docs/text_model_real.jpg, for the bundled model only")
    ap.add_argument("--no-ocr", action="store_true")
    args = ap.parse_args()
    if args.model and not args.out:
        ap.error("--model needs --out: the default figure is the bundled model's, shown in the README")
    out_path = Path(args.out) if args.out else Path(__file__).with_name("text_model_real.jpg")

    from skimage import data

    from udeblur.data.blur import camera_shake_kernel, convolve
    from udeblur.imageio import save_png
    from udeblur.inference.pretrained import BUNDLED, DEFAULT, resolve_model
    from udeblur.metrics.image_quality import psnr, ssim
    from udeblur.visualize import image_grid

    model = resolve_model(args.model, args.tone_anchor)  # the same choice of file and anchor as `udeblur deblur`
    if model is None:
        raise SystemExit(f"the bundled model {BUNDLED[DEFAULT].filename} is not installed; pass --model")
    from udeblur.inference.deblurrer import Deblurrer

    deb = Deblurrer.from_resolved(model, device="cpu")
    ocr = None
    if not args.no_ocr:
        from udeblur.metrics.ocr import character_accuracy, ocr_text

        ocr = True
    rows, table = [], []
    for name in ("page", "text"):
        sharp = getattr(data, name)().astype(np.float32)[..., None] / 255.0
        truth = ocr_text(sharp) if ocr else None
        for size, seed in ((9, 1), (15, 2), (21, 3)):
            rng = np.random.default_rng(seed)
            blurred = convolve(sharp, camera_shake_kernel(size, rng))
            blurred = np.clip(blurred + rng.normal(0, 0.01, blurred.shape).astype(np.float32), 0, 1)
            out = deb.deblur_pixels(blurred)
            row = {"image": name, "kernel px": size}
            for label, img in (("blurred", blurred), ("udeblur", out)):
                row[f"PSNR {label}"] = psnr(img, sharp)
                row[f"SSIM {label}"] = ssim(img, sharp)
                if ocr:
                    row[f"OCR {label}"] = character_accuracy(ocr_text(img), truth)
            table.append(row)
            rows.append([np.repeat(x, 3, axis=2) for x in (blurred, out, sharp)])
    keys = list(table[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in table:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    mean = {k: float(np.mean([r[k] for r in table])) for k in keys[2:]}
    print("mean: " + ", ".join(f"{k} {v:.3f}" for k, v in mean.items()))
    width = max(r[0].shape[1] for r in rows)
    padded = [[np.pad(x, ((0, 0), (0, width - x.shape[1]), (0, 0)), constant_values=1.0) for x in r] for r in rows]
    grid = image_grid(padded, pad=4)
    if str(out_path).lower().endswith((".jpg", ".jpeg")):
        from PIL import Image

        Image.fromarray((grid * 255).round().astype(np.uint8)).save(out_path, quality=85)
    else:
        save_png(out_path, grid)
    print(f"wrote {out_path} (rows: page 9/15/21 px, text 9/15/21 px; columns: blurred | udeblur | sharp)")


if __name__ == "__main__":
    main()

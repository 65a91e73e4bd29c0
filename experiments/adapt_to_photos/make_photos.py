"""A user's blurred photos of text, for the fine-tuning check (README beside this file).

    python experiments/adapt_to_photos/make_photos.py OUT

Real text (scikit-image's `page`, a scanned book page, and `text`, a photographed sign), at 100 % and 150 %, blurred
by three camera-shake kernels of one "camera" (15 px, seeds the built-in data and the blur prior never use), plus
read noise and JPEG 90: 12 photos in OUT/test/blurred, their sharp originals in OUT/test/sharp (for scoring only;
training sees the blurred ones alone).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from udeblur.data.blur import camera_shake_kernel, convolve, jpeg_recompress
from udeblur.imageio import save_png

SEEDS = (9101, 9102, 9103)  # this camera's shakes


def main(out: Path) -> None:
    for folder in ("sharp", "blurred"):
        (out / "test" / folder).mkdir(parents=True, exist_ok=True)
    for name in ("page", "text"):
        image = Image.fromarray(getattr(data, name)())
        for scale in (1.0, 1.5):
            size = (round(image.width * scale), round(image.height * scale))
            sharp = np.asarray(image.resize(size, Image.LANCZOS), np.float32)[..., None] / 255.0
            for seed in SEEDS:
                rng = np.random.default_rng(seed)
                blurred = convolve(sharp, camera_shake_kernel(15, rng))
                blurred = np.clip(blurred + rng.normal(0, 0.01, blurred.shape).astype(np.float32), 0, 1)
                blurred = jpeg_recompress(blurred, 90)
                stem = f"{name}_{int(scale * 100)}_{seed}.png"
                save_png(out / "test" / "sharp" / stem, sharp)
                save_png(out / "test" / "blurred" / stem, blurred)
    print(f"wrote {out / 'test'}: 12 blurred photos and their sharp originals")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))

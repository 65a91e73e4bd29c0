"""Make the example images of `udeblur serve`: src/udeblur/web/examples/, a few blurred grayscale PNGs (< 200 KB).

    python docs/make_web_examples.py

Text crops rendered by the built-in text domain at the bundled model's training text size (seeded, not from the
test split), each blurred by a camera-shake kernel plus noise of std 0.01, and scikit-image's `text` photograph
(public domain, shipped as udeblur/assets/text_photo.png) blurred the same way at 9 px. Run offline, once; the
server only reads the files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from udeblur.data.blur import camera_shake_kernel, convolve
from udeblur.data.text import TextDomainConfig, render_text_crop
from udeblur.imageio import load_pixels

OUT = Path(__file__).resolve().parents[1] / "src" / "udeblur" / "web" / "examples"
ASSETS = Path(__file__).resolve().parents[1] / "src" / "udeblur" / "assets"


def blur(sharp: np.ndarray, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = convolve(sharp, camera_shake_kernel(size, rng))
    return np.clip(out + rng.normal(0, 0.01, out.shape).astype(np.float32), 0, 1)


def save(path: Path, pixels: np.ndarray) -> None:
    arr = np.round(pixels * 255).astype(np.uint8)
    Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(path, optimize=True)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (height, kernel) in enumerate(((18, 9), (26, 13), (34, 11))):
        cfg = TextDomainConfig(size=160, channels=1, text_height=(height, height), seed=1000 + i)
        sharp, _ = render_text_crop(np.random.default_rng(1000 + i), cfg)
        name = f"text-{height}px-shake{kernel}.png"
        save(OUT / name, blur(sharp, kernel, 2000 + i))
        entries.append({"file": name, "caption": f"printed text, {height} px lines, {kernel} px camera shake "
                                                 "(synthetic)"})
    photo = load_pixels(ASSETS / "text_photo.png", 1)
    save(OUT / "photo-sign-shake9.png", blur(photo, 9, 1))
    entries.append({"file": "photo-sign-shake9.png",
                    "caption": "a real photograph of handwriting (scikit-image's `text`), 9 px camera shake added"})
    (OUT / "examples.json").write_text(json.dumps(entries, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{len(entries)} examples, {total / 1024:.0f} KB in {OUT}")


if __name__ == "__main__":
    main()

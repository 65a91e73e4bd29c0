"""Draw docs/kernels.png: sample blur kernels and what they do to a text crop.

    python docs/make_kernel_figure.py [--out docs/kernels.png] [--seed 0]

Top: 24 kernels as `random_kernel` draws them for the built-in text domain (mostly camera shake, some
defocus, linear motion and Gaussian), each shown on its own scale with its size. Bottom: one sharp text
crop and the same crop blurred by a few of those kernels (no noise), as the blurred training set sees it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def make_kernel_figure(out: Path, seed: int = 0) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from udeblur.data.blur import convolve, sample_kernel
    from udeblur.data.text import TextDomainConfig, render_text_crop

    rng = np.random.default_rng(seed)
    cfg = TextDomainConfig()
    drawn = [sample_kernel(rng, cfg.blur) for _ in range(24)]
    crop, _ = render_text_crop(np.random.default_rng(seed + 1), TextDomainConfig(text_height=(14, 16)))
    shown = [i for i, (_, info) in enumerate(drawn) if info["kind"] == "shake"][:4]
    shown += [i for i, (_, info) in enumerate(drawn) if info["kind"] == "defocus"][:1]

    fig = plt.figure(figsize=(10, 6.6))
    # 24 columns: a kernel spans 3, an image 24 / (1 + len(shown)).
    grid = fig.add_gridspec(4, 24, height_ratios=[1, 1, 1, 1.9], hspace=0.35, wspace=0.3,
                            left=0.02, right=0.98, top=0.9, bottom=0.02)
    for i, (kernel, info) in enumerate(drawn):
        ax = fig.add_subplot(grid[i // 8, 3 * (i % 8) : 3 * (i % 8) + 3])
        ax.imshow(kernel, cmap="gray", interpolation="nearest")
        ax.set_title(f"#{i} {info['kind']} {info['size']}px", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    span = 24 // (1 + len(shown))
    images = [("sharp", crop)] + [(f"kernel #{i} ({drawn[i][1]['kind']})", convolve(crop, drawn[i][0]))
                                  for i in shown]
    for j, (title, img) in enumerate(images):
        ax = fig.add_subplot(grid[3, j * span : (j + 1) * span])
        ax.imshow(np.clip(img, 0, 1), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle("udeblur blur kernels (camera shake: Boracchi-Foi random trajectories) and their effect",
                 fontsize=11)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("kernels.png"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(make_kernel_figure(a.out, a.seed))

"""Can a 4000x3000 photo be deblurred on a 24 GiB machine, and are tile seams visible? Prints time, peak memory
and a seam score.

The ``paper`` model (random weights unless ``--model`` is given; memory and seams do not need trained weights)
deblurs a 4000x3000 RGB image made of text-like strokes and smooth shading, tiled (``--tile``, ``--overlap``).
Seam score: the mean absolute step between neighbouring output columns/rows AT the tile borders, divided by the
same mean everywhere else, computed on the network's change (output - input) so that image content cancels.
About 1 means no seam; a hard cut without blending scores far above 1 (printed beside it for reference).

    python benchmarks/bench_large_photo.py [--width 4000 --height 3000] [--tile 1024 --overlap 64] [--threads N]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import torch

from udeblur.config import load_config
from udeblur.inference import Deblurrer
from udeblur.inference.deblurrer import _axis_tiles
from udeblur.model import Translator


def peak_rss_gib() -> float:
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**30


def photo(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.55 + 0.25 * np.sin(xx / 300.0)[..., None] * np.cos(yy / 200.0)[..., None] * np.ones(3, np.float32)
    for _ in range(400):  # dark strokes
        y, x = rng.integers(0, h - 40), rng.integers(0, w - 300)
        img[y : y + rng.integers(3, 30), x : x + rng.integers(20, 300)] *= 0.3
    return np.clip(img + rng.normal(0, 0.02, img.shape).astype(np.float32), 0, 1).astype(np.float32)


def seam_score(change: np.ndarray, starts: list[int], axis: int) -> float:
    steps = np.abs(np.diff(change, axis=axis)).mean(axis=tuple(a for a in range(change.ndim) if a != axis))
    at = [s - 1 for s in starts if s > 0]  # the step between the last column before and the first of a tile
    mask = np.zeros(steps.shape[0], bool)
    mask[at] = True
    return float(steps[mask].mean() / steps[~mask].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--tile", type=int, default=1024)
    ap.add_argument("--overlap", type=int, default=64)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--model", help="a trained .safetensors instead of random weights")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    img = photo(args.height, args.width)
    if args.model:
        deb = Deblurrer.from_checkpoint(args.model, device=args.device, tile=args.tile, overlap=args.overlap)
    else:
        torch.manual_seed(0)
        cfg = load_config(args.preset).model
        deb = Deblurrer(Translator(cfg).deblur_net(), cfg, device=args.device, tile=args.tile, overlap=args.overlap)
    base = peak_rss_gib()
    start = time.perf_counter()
    out = deb.deblur_pixels(img)
    seconds = time.perf_counter() - start
    change = out - img
    rows = [s.start for s in _axis_tiles(-(-args.height // 4) * 4, deb.tile, deb.overlap)]
    cols = [s.start for s in _axis_tiles(-(-args.width // 4) * 4, deb.tile, deb.overlap)]
    print(f"image {args.width}x{args.height} ({args.width * args.height / 1e6:.1f} MP), preset {args.preset}, "
          f"tile {deb.tile}, overlap {deb.overlap}: {len(rows)}x{len(cols)} tiles, torch threads "
          f"{torch.get_num_threads()}")
    print(f"time {seconds:.1f} s ({args.width * args.height / 1e6 / seconds:.3f} MP/s); peak RSS {peak_rss_gib():.2f} "
          f"GiB (image arrays and model loaded: {base:.2f} GiB); output shape {out.shape}, finite "
          f"{bool(np.isfinite(out).all())}")
    print(f"seam score (1 = none): columns {seam_score(change, cols, 1):.3f}, rows {seam_score(change, rows, 0):.3f}")
    # Reference: what a hard cut looks like under the same score: run two tiles side by side without blending.
    h0, w0 = min(args.height, deb.tile), min(2 * deb.tile, args.width) // 8 * 4
    left, right = img[:h0, :w0], img[:h0, w0 : 2 * w0]
    hard = np.concatenate([deb.deblur_pixels(left), deb.deblur_pixels(right)], 1) - np.concatenate([left, right], 1)
    print(f"for reference, a hard cut between two separately deblurred halves scores {seam_score(hard, [w0], 1):.3f}")


if __name__ == "__main__":
    main()

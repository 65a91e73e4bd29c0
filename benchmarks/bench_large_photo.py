"""Can a 4000x3000 photo be deblurred on a 24 GiB machine, and are tile seams visible? Prints time, peak memory
and a seam score.

The ``paper`` model (random weights unless ``--model`` is given; memory and seams do not need trained weights)
deblurs a 4000x3000 RGB image made of text-like strokes and smooth shading, tiled (``--tile``, ``--overlap``).
Seams: on a crop that fits one whole-image pass, the error of the tiled result against the whole-image result
is checked for jumps at the tile borders (``seam_jump``), for the default cross-faded tiles and, for reference,
a hard cut (abutting tiles), with per-tile normalisation (the default ``norm="tile"``). Random weights use init
std 0.1 so the output depends visibly on the input (training's 0.02 gives a nearly constant image).

    python benchmarks/bench_large_photo.py [--width 4000 --height 3000] [--tile 1024 --overlap 64] [--threads N]
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import time

import numpy as np
import torch

from udeblur.config import load_config
from udeblur.inference import Deblurrer
from udeblur.inference.tiling import axis_tiles
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


def seam_jump(test: np.ndarray, ref: np.ndarray, starts: list[int]) -> float:
    """How much the error (test - ref) jumps across the tile borders, relative to its typical column-to-column
    change elsewhere: ~1 means no seam; a cut between tiles normalised differently shows as a large ratio."""
    err = (test - ref).mean(axis=2) if test.ndim == 3 else test - ref
    steps = np.concatenate([np.abs(np.diff(err, axis=1)).mean(0), np.abs(np.diff(err, axis=0)).mean(1)])
    n = err.shape[1] - 1
    at = [s - 1 for s in starts[1:]] + [n + s - 1 for s in starts[1:]]  # columns, then rows
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
        cfg = dataclasses.replace(load_config(args.preset).model, init_std=0.1)
        deb = Deblurrer(Translator(cfg).deblur_net(), cfg, device=args.device, tile=args.tile, overlap=args.overlap)
    base = peak_rss_gib()
    start = time.perf_counter()
    out = deb.deblur_pixels(img)
    seconds = time.perf_counter() - start
    rows = [s.start for s in axis_tiles(-(-args.height // 4) * 4, deb.tile, deb.overlap)]
    cols = [s.start for s in axis_tiles(-(-args.width // 4) * 4, deb.tile, deb.overlap)]
    print(f"image {args.width}x{args.height} ({args.width * args.height / 1e6:.1f} MP), preset {args.preset}, "
          f"tile {deb.tile}, overlap {deb.overlap}: {len(rows)}x{len(cols)} tiles, torch threads "
          f"{torch.get_num_threads()}")
    print(f"time {seconds:.1f} s ({args.width * args.height / 1e6 / seconds:.3f} MP/s); peak RSS {peak_rss_gib():.2f} "
          f"GiB (image arrays and model loaded: {base:.2f} GiB); output shape {out.shape}, finite "
          f"{bool(np.isfinite(out).all())}")
    # Seams: on a crop small enough for one whole-image pass, compare tiled outputs with the whole-image output
    # near the tile borders: blended tiles (the default) against a hard cut (abutting tiles, no overlap).
    side = min(args.height, args.width, 2 * deb.tile) // 4 * 4  # two tiles a side: a hard cut is then exact
    crop = img[:side, :side]
    net, cfg = deb.net, deb.model_cfg
    whole = Deblurrer(net, cfg, device=args.device, tile=side).deblur_pixels(crop)
    starts = [s.start for s in axis_tiles(side, deb.tile, deb.overlap)]
    blended = Deblurrer(net, cfg, device=args.device, tile=deb.tile, overlap=deb.overlap).deblur_pixels(crop)
    hard_starts = [s.start for s in axis_tiles(side, deb.tile, 0)]
    hard = Deblurrer(net, cfg, device=args.device, tile=deb.tile, overlap=0).deblur_pixels(crop)
    print(f"seams on a {side}x{side} crop vs one whole-image pass: error jump at tile borders / elsewhere "
          f"(1 = no seam): blended tiles {seam_jump(blended, whole, starts):.2f}, hard cut "
          f"{seam_jump(hard, whole, hard_starts):.2f}; mean |tiled - whole| {np.abs(blended - whole).mean():.4f}")

if __name__ == "__main__":
    main()

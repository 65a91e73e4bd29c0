"""How fast is deblurring, untiled and tiled, per preset? Prints megapixels/s and peak memory.

Weights are random (speed does not depend on them). Sizes are square sides in px; an image larger than
``--tile`` is tiled, once with ``norm="tile"`` (one pass) and, with ``--exact``, once with ``norm="image"``.
``--tone-anchor SIGMA`` also times each size with the tone anchor (what the bundled text model uses: 16).

    /work/venv/bin/python benchmarks/bench_inference.py [--presets small paper] [--sizes 256 512 1536]
        [--tile 512] [--overlap 64] [--device auto] [--threads N] [--exact] [--tone-anchor 16]
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
from udeblur.model import Translator, count_parameters


def peak_rss_mib() -> float:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def time_one(deblurrer: Deblurrer, img: np.ndarray, repeat: int) -> float:
    deblurrer(img[:64, :64])  # warm-up: kernel selection, allocator
    best = float("inf")
    for _ in range(repeat):
        if deblurrer.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        deblurrer(img)
        if deblurrer.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["small", "paper"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[256, 512, 1536])
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--overlap", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--exact", action="store_true", help="also time norm='image' on tiled sizes (slow)")
    ap.add_argument("--tone-anchor", type=float, default=0.0, help="also time with this tone anchor (sigma px)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, tile {args.tile}, overlap {args.overlap}")
    print(f"{'preset':8s} {'params':>8s} {'size':>11s} {'mode':>18s} {'seconds':>9s} {'MP/s':>8s} {'peak RSS':>10s}")
    for preset in args.presets:
        cfg = load_config(preset).model
        torch.manual_seed(0)
        net = Translator(cfg).deblur_net()
        params = f"{count_parameters(net) / 1e6:.2f}M"
        for side in args.sizes:
            img = rng.random((side, side, cfg.channels), dtype=np.float32)
            modes = [("tile", 0.0)] + ([("image", 0.0)] if args.exact and side > args.tile else [])
            modes += [("tile", args.tone_anchor)] if args.tone_anchor > 0 else []
            for norm, anchor in modes:
                d = Deblurrer(net, cfg, device=args.device, tile=args.tile, overlap=args.overlap, norm=norm,
                              tone_anchor=anchor)
                seconds = time_one(d, img, args.repeat)
                mode = "one pass" if side <= args.tile else f"tiled/{norm}"
                mode += f"+anchor{anchor:g}" if anchor else ""
                mp = side * side / 1e6
                print(f"{preset:8s} {params:>8s} {side:>5d}x{side:<5d} {mode:>18s} {seconds:9.3f} {mp / seconds:8.3f} "
                      f"{peak_rss_mib():8.0f}Mi")
                if d.device.type == "cuda":
                    print(f"{'':8s} peak CUDA memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
                    torch.cuda.reset_peak_memory_stats()


if __name__ == "__main__":
    main()

"""Seconds per training step with and without ``train.random_z_split`` (the authors' half-batch random-z branch).

    python benchmarks/bench_random_z_split.py                          # tiny + paper at batch 2, CPU, fp32
    python benchmarks/bench_random_z_split.py --presets paper --batch 4 --threads 4

Synthetic inputs (speed does not depend on content). A step is one D update, plus a G update every
``train.g_every`` steps (the presets' own), so an even number of timed steps covers whole D+G cycles.
A benchmark, not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import torch

from udeblur.config import load_config
from udeblur.training.trainer import Trainer


def seconds_per_step(preset: str, batch: int, split: bool, steps: int, device: str) -> float:
    cfg = load_config(preset, [f"train.batch_size={batch}", f"train.random_z_split={str(split).lower()}",
                               f"train.device={device}", "train.tensorboard=false"])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, tmp, progress=False)
        crop = cfg.data.crop_size
        g = torch.Generator().manual_seed(0)
        data = {k: torch.rand(batch, cfg.model.channels, crop, crop, generator=g) * 2 - 1 for k in ("sharp", "blurred")}
        for _ in range(2):  # warm-up: one D-only and one D+G iteration
            trainer.train_step(data)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(data)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["tiny", "paper"])
    ap.add_argument("--batch", type=int, default=2, help="train.batch_size (even)")
    ap.add_argument("--steps", type=int, default=6, help="timed training iterations (even: D and G steps)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads, "
          f"{args.device}, batch {args.batch}, fp32, {args.steps} timed steps")
    print("| preset | s/step, every image | s/step, random_z_split | ratio |")
    print("|---|---|---|---|")
    for preset in args.presets:
        full = seconds_per_step(preset, args.batch, False, args.steps, args.device)
        split = seconds_per_step(preset, args.batch, True, args.steps, args.device)
        print(f"| {preset} | {full:.3f} | {split:.3f} | {split / full:.2f} |")


if __name__ == "__main__":
    main()

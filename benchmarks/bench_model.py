"""Parameter counts, training iterations/s and deblurring megapixels/s for the presets (prints a table).

    python benchmarks/bench_model.py                       # paper + small, CPU, fp32
    python benchmarks/bench_model.py --presets small --amp bf16 --threads 2

Synthetic inputs (speed does not depend on content); the perceptual VGG-16 is included in training steps.
A benchmark, not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from udeblur.config import load_config
from udeblur.model import Discriminators, Translator, count_parameters
from udeblur.training.trainer import Trainer


def param_table(preset: str) -> list[tuple[str, int]]:
    cfg = load_config(preset).model
    t, d = Translator(cfg), Discriminators(cfg)
    return [
        ("E_S^c + E_B^c + shared", count_parameters(t.content)),
        ("E^b", count_parameters(t.blur)),
        ("G_S + G_B (+ shared)", count_parameters(t.gen)),
        ("one discriminator", count_parameters(d.sharp)),
        ("all four discriminators", count_parameters(d)),
        ("deblurring path", count_parameters(t.deblur_net())),
    ]


def bench_train(preset: str, amp: str, steps: int, tmp: str) -> float:
    cfg = load_config(preset, [f"train.amp={amp}", "train.device=cpu", "train.tensorboard=false"])
    trainer = Trainer(cfg, tmp, progress=False)
    crop, bs = cfg.data.crop_size, cfg.train.batch_size
    batch = {"sharp": torch.rand(bs, 3, crop, crop) * 2 - 1, "blurred": torch.rand(bs, 3, crop, crop) * 2 - 1}
    for _ in range(2):  # warm-up: one D-only and one D+G iteration
        trainer.train_step(batch)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(batch)
    return steps / (time.perf_counter() - start)


@torch.inference_mode()
def bench_deblur(preset: str, amp: str, size: int, reps: int) -> float:
    net = Translator(load_config(preset).model).deblur_net().eval()
    x = torch.rand(1, 3, size, size) * 2 - 1
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if amp == "bf16" else torch.autocast("cpu", enabled=False)
    with ctx:
        net(x)
        start = time.perf_counter()
        for _ in range(reps):
            net(x)
    return reps * size * size / 1e6 / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["paper", "small"])
    ap.add_argument("--amp", default="none", choices=["none", "bf16"])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--steps", type=int, default=6, help="timed training iterations (even: D and G steps)")
    ap.add_argument("--size", type=int, default=512, help="side of the deblurred test image")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads, "
          f"amp={args.amp}")
    for preset in args.presets:
        print(f"\n## {preset}: parameters")
        for name, n in param_table(preset):
            print(f"{name:28s} {n:>12,d}  ({n / 1e6:.2f} M)")
    print("\n| preset | train it/s | s/it | deblur MP/s |")
    print("|---|---|---|---|")
    import tempfile

    for preset in args.presets:
        with tempfile.TemporaryDirectory() as tmp:
            its = bench_train(preset, args.amp, args.steps, tmp)
        mps = bench_deblur(preset, args.amp, args.size, args.reps)
        print(f"| {preset} | {its:.3f} | {1 / its:.2f} | {mps:.3f} |")


if __name__ == "__main__":
    main()

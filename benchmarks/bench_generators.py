"""Choose a generator by measurement: training steps per CPU-second, and what a short supervised run learns.

For each candidate (a preset whose model.generator differs), prints:
  * the unpaired training step of that preset (the full objective, every term it has) in CPU-seconds per step;
  * the supervised reference (the same deblurring path trained on synthetic pairs, methods/supervised.py) run for
    the SAME CPU time (process time, not wall time) per candidate, then its PSNR gain over the blurred input on
    held-out paired crops.
Run on one thread so figures are per core:

    OMP_NUM_THREADS=1 python benchmarks/bench_generators.py --data VAL_ROOT --seconds 300

VAL_ROOT is a paired test set (``udeblur synth text -o VAL_ROOT --train-count 0 --test-count 128 --seed 100``);
the training data is the built-in text domain of each preset.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from udeblur.config import load_config, replace
from udeblur.data.builtin import resolve_data_root
from udeblur.evaluation.evaluate import load_test_items
from udeblur.evaluation.statistics import paired_gain
from udeblur.inference.deblurrer import Deblurrer
from udeblur.metrics.image_quality import psnr
from udeblur.model import Translator, count_parameters
from udeblur.training.trainer import Trainer

CANDIDATES = {"drit": "text", "nafnet": "text_nafnet"}


def unpaired_cpu_seconds_per_step(preset: str, steps: int, work: Path) -> float:
    cfg = load_config(preset, ["train.tensorboard=false", "train.sample_every=1000000",
                               "train.checkpoint_every=1000000"])
    trainer = Trainer(cfg, work / f"unpaired-{preset}", progress=False)
    root = resolve_data_root(cfg, progress=False)
    it = iter(trainer.method.make_data(root, trainer.step).batches)
    for _ in range(3):  # warm-up: allocator, oneDNN primitive caches
        trainer.train_step(next(it))
    start = time.process_time()
    for _ in range(steps):
        trainer.train_step(next(it))
    return (time.process_time() - start) / steps


def supervised_gain(preset: str, seconds: float, data: Path, work: Path, limit: int) -> tuple[int, dict]:
    cfg = load_config(preset, ["loss.perceptual=0", "train.lr=0.001", "train.lr_decay=none",
                               "train.total_steps=1000000"])
    root = resolve_data_root(cfg, progress=False)
    run = Trainer(replace(cfg, train={"tensorboard": False, "method": "supervised"}), work / f"supervised-{preset}",
                  progress=False, data_root=root)
    start = time.process_time()
    while time.process_time() - start < seconds:  # CPU time, so a busy machine does not shorten the budget
        run.fit(max_steps=50)
    deblur = Deblurrer(run.method.net.eval(), cfg.model, device="cpu")
    items = load_test_items(data, limit=limit)
    ours = [psnr(deblur(item.blurred), item.sharp) for item in items]
    base = [psnr(item.blurred, item.sharp) for item in items]
    return run.step, paired_gain(ours, base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="paired held-out crops (DATA/test/{sharp,blurred})")
    ap.add_argument("--seconds", type=float, default=300, help="CPU seconds of each supervised run [300]")
    ap.add_argument("--steps", type=int, default=10, help="timed unpaired steps per candidate [10]")
    ap.add_argument("--limit", type=int, default=128, help="held-out crops scored [128]")
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    work = Path(tempfile.mkdtemp(prefix="bench-generators-"))
    rows = []
    try:
        for name in args.candidates:
            preset = CANDIDATES[name]
            params = count_parameters(Translator(load_config(preset).model).deblur_net())
            cpu_step = unpaired_cpu_seconds_per_step(preset, args.steps, work)
            steps, gain = supervised_gain(preset, args.seconds, Path(args.data), work, args.limit)
            rows.append((name, preset, params, cpu_step, steps, gain))
            print(f"{name}: done", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n| generator | preset | deblurring-path params | unpaired step (CPU s) | unpaired steps per CPU-s "
          f"| supervised steps in {args.seconds:.0f} s | held-out PSNR gain [95%] |")
    print("|---|---|---|---|---|---|---|")
    for name, preset, params, cpu_step, steps, g in rows:
        print(f"| {name} | {preset} | {params:,} | {cpu_step:.2f} | {1 / cpu_step:.2f} | {steps:,} | "
              f"{g['mean']:+.2f} dB [{g['low']:+.2f}, {g['high']:+.2f}], better on {g['better']}/{g['n']} |")


if __name__ == "__main__":
    main()

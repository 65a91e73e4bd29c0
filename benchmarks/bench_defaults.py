"""fp32 eager against the defaults (precision auto + engine auto), in one run, on this machine's CPU.

    nice -n 10 python benchmarks/bench_defaults.py --threads 1                        # bundled model, 128/512/2048
    python benchmarks/bench_defaults.py --model paper --sizes 128 512 --train-preset paper   # the paper network

Prints the CPU's flags that decide bf16 (avx2, avx512_bf16, amx), the measured conv limit (a 256-channel 3x3
convolution, fp32 and bf16), what "auto" resolves to here, then:
* deblurring, ms per image (square, synthetic content: speed does not depend on it) for fp32 eager PyTorch and
  for the defaults, with useful GFLOP/s (the network's FLOPs at that size, counted by torch's FlopCounterMode,
  over the time; tiling overlap counts as overhead) and its share of the conv limit of the precision used;
* bf16 fidelity on the bundled model: PSNR against the sharp image of a real text photo blurred by 9-px motion,
  fp32 vs bf16 autocast (computed even where bf16 is emulated and slow);
* training images per second, ``train.amp=none`` vs ``train.amp=auto``, synthetic batches (perceptual off).
A benchmark, not a test: numbers depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import datetime
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def cpu_flags() -> str:
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    flags = set(next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []))
    model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "?")
    return f"{model}; " + " ".join(f"{f}:{'yes' if f in flags else 'no'}" for f in wanted)


def conv_limit(bf16: bool, side: int, budget_s: float = 3.0) -> float:
    """GFLOP/s of a 256 -> 256 channel 3x3 convolution (time-boxed: emulated bf16 takes seconds per call)."""
    flops = 2 * 256 * 256 * 9 * side * side
    x = torch.randn(1, 256, side, side)
    conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
    with torch.inference_mode(), ctx:
        conv(x)
        best, start = math.inf, time.perf_counter()
        while time.perf_counter() - start < budget_s or best == math.inf:
            t = time.perf_counter()
            conv(x)
            best = min(best, time.perf_counter() - t)
    return flops / best / 1e9


def load_model(name: str):
    """(Deblurrer factory, DeblurNet): the bundled model, a model file, or a preset's network with random weights."""
    from udeblur.config import load_config
    from udeblur.inference import Deblurrer
    from udeblur.inference.pretrained import bundled_name, resolve_model

    if bundled_name(name) or Path(name).is_file():
        resolved = resolve_model(name)
        return (lambda **kw: Deblurrer.from_resolved(resolved, device="cpu", **kw)), None
    cfg = load_config(name)
    torch.manual_seed(0)
    from udeblur.model import Translator

    net = Translator(cfg.model).deblur_net().eval()
    # a file, so that engine auto can key its cached graph (as for any trained model)
    tmp = Path(tempfile.mkdtemp()) / f"{name}.safetensors"
    from udeblur.model_files import export_deblur_net

    export_deblur_net(net, cfg.model, tmp)
    return (lambda **kw: Deblurrer.from_checkpoint(tmp, device="cpu", **kw)), None


def ms_per_image(deblurrer, size: int, reps: int) -> float:
    rng = np.random.default_rng(size)
    img = rng.random((size, size, deblurrer.channels), dtype=np.float32)
    deblurrer.deblur_pixels(img[:64, :64] if size > 64 else img)  # warm-up: sessions, kernels, cached graph
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        deblurrer.deblur_pixels(img)
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def flops_per_pixel(deblurrer) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, deblurrer.channels, 128, 128)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        deblurrer.net(x)
    return counter.get_total_flops() / (128 * 128)


def fidelity(make, size: int = 256) -> tuple[float, float, float]:
    """PSNR (dB) of fp32 and bf16 outputs against the sharp crop of the shipped text photo, and of the input."""
    from udeblur.data.blur import convolve, linear_motion_kernel
    from udeblur.imageio import read_image

    sharp = read_image(Path(__import__("udeblur").__file__).parent / "assets" / "text_photo.png").pixels
    sharp = np.ascontiguousarray(sharp[:size, :size])
    blurred = np.clip(convolve(sharp, linear_motion_kernel(9, 9.0, 30.0)), 0, 1).astype(np.float32)

    def psnr(a: np.ndarray) -> float:
        return float(10 * np.log10(1.0 / np.mean((a.reshape(sharp.shape) - sharp) ** 2)))

    outs = [make(precision=p, engine="torch").deblur_pixels(blurred) for p in ("fp32", "bf16")]
    return psnr(outs[0]), psnr(outs[1]), psnr(blurred)


def train_images_per_s(preset: str, amp: str, steps: int, crop: int, batch: int) -> tuple[float, float, str]:
    """(images/s, GFLOP per image, resolved amp) for ``steps`` iterations after two warm-up ones."""
    from torch.utils.flop_counter import FlopCounterMode

    from udeblur.config import load_config
    from udeblur.training.trainer import Trainer

    over = [f"train.amp={amp}", "train.device=cpu", "train.tensorboard=false", "loss.perceptual=0"]
    over += [f"data.crop_size={crop}"] if crop else []
    over += [f"train.batch_size={batch}"] if batch else []
    cfg = load_config(preset, over)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, tmp, progress=False)
        bs, ch, c = cfg.train.batch_size, cfg.model.channels, cfg.data.crop_size
        g = torch.Generator().manual_seed(0)
        batch_ = {k: torch.rand(bs, ch, c, c, generator=g) * 2 - 1 for k in ("sharp", "blurred")}
        with FlopCounterMode(display=False) as counter:
            for _ in range(2):  # one D-only and one D+G iteration (g_every 2), also the warm-up
                trainer.train_step(batch_)
        gflop_per_image = counter.get_total_flops() / 2 / bs / 1e9
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(batch_)
        return steps * bs / (time.perf_counter() - start), gflop_per_image, trainer.amp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bundled", help="bundled, a model file, or a preset (random weights)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 512, 2048])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--train-preset", default="small")
    ap.add_argument("--train-steps", type=int, default=4, help="timed iterations (even: D and D+G in turn)")
    ap.add_argument("--crop", type=int, default=0, help="training crop (0: the preset's)")
    ap.add_argument("--batch", type=int, default=0, help="training batch (0: the preset's)")
    ap.add_argument("--limit-side", type=int, default=64, help="side of the conv-limit input")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from udeblur.device import cpu_bf16_speedup, resolve_precision

    t = time.perf_counter()
    speedup = cpu_bf16_speedup()
    decide_ms = (time.perf_counter() - t) * 1e3
    auto = resolve_precision("auto", torch.device("cpu"))
    # emulated bf16 is slow: a smaller limit input keeps that line to seconds
    limits = {"fp32": conv_limit(False, args.limit_side),
              "bf16": conv_limit(True, args.limit_side if speedup >= 1 else 16, budget_s=1.0)}
    print(f"# {datetime.date.today()}, {platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)")
    print(f"# CPU: {cpu_flags()}")
    print(f"# conv limit (256-ch 3x3): fp32 {limits['fp32']:.0f} GFLOP/s, bf16 {limits['bf16']:.1f} GFLOP/s; "
          f"start-up timing: bf16 {speedup:.3g}x fp32 ({decide_ms:.0f} ms) -> precision auto = {auto}")

    make, _ = load_model(args.model)
    fp32 = make(precision="fp32", engine="torch")
    default = make()
    fpp = flops_per_pixel(fp32)
    print(f"# model {args.model}: {fpp * 1e6 / 1e9:.1f} GFLOP per megapixel; defaults = precision {default.precision}"
          f", engine {default.engine}")
    print()
    print("| deblur | fp32 eager ms/img | GFLOP/s (% fp32 limit) | defaults ms/img | GFLOP/s (% limit) | speed-up |")
    print("|---|---|---|---|---|---|", flush=True)
    for size in args.sizes:
        reps = 3 if size <= 256 else (2 if size <= 1024 else 1)
        gflop = fpp * size * size / 1e9
        a = ms_per_image(fp32, size, reps)
        b = ms_per_image(default, size, reps)
        lim_b = limits["bf16" if default.precision == "bf16" else "fp32"]
        print(f"| {size}x{size} | {a:,.0f} | {gflop / a * 1e3:.1f} ({gflop / a * 1e5 / limits['fp32']:.0f}%) | "
              f"{b:,.0f} | {gflop / b * 1e3:.1f} ({gflop / b * 1e5 / lim_b:.0f}%) | {a / b:.2f}x |", flush=True)

    if args.model == "bundled":
        p32, p16, pin = fidelity(make)
        print(f"\nbf16 fidelity (bundled model, 256-px crop of the shipped text photo, 9-px motion blur): PSNR input "
              f"{pin:.2f} dB, fp32 {p32:.4f} dB, bf16 {p16:.4f} dB (difference {p16 - p32:+.4f} dB)", flush=True)

    print()
    print(f"| train ({args.train_preset}, perceptual off) | images/s | GFLOP/image | GFLOP/s (% limit) | x fp32 |")
    print("|---|---|---|---|---|", flush=True)
    base = None
    for amp in ("none", "auto"):
        ips, gfi, resolved = train_images_per_s(args.train_preset, amp, args.train_steps, args.crop, args.batch)
        base = base or ips
        lim = limits["bf16" if resolved == "bf16" else "fp32"]
        print(f"| train.amp={amp} (runs {resolved}) | {ips:.2f} | {gfi:.2f} | {ips * gfi:.1f} "
              f"({ips * gfi / lim * 100:.0f}%) | {ips / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()

"""Speed switches side by side: training it/s and deblurring MP/s, peak memory, FLOPs and achieved FLOP/s.

    python benchmarks/bench_speed.py                                  # paper + small, fp32 / bf16 / channels_last
    python benchmarks/bench_speed.py --presets small --crop 32 --size 128 --steps 2   # a quick look
    python benchmarks/bench_speed.py --variants fp32 bf16 bf16+cl compile              # compile: minutes on a CPU

Every (preset, variant) cell runs in its own subprocess, so peak memory (ru_maxrss on the CPU,
torch.cuda.max_memory_allocated on a GPU) belongs to that cell alone. The machine's peak is measured in the
same run: a 256-channel 3x3 convolution in fp32 and in bf16. FLOPs come from torch.utils.flop_counter
(convolutions and matmuls, forward + backward; elementwise ops and norms are not counted, so achieved FLOP/s
is a lower bound on the work done). "fidelity" is the PSNR of the variant's deblurred output against the fp32
output of the same (untrained, seeded) network: inf = identical; > 50 dB means the switch cannot move a
benchmark PSNR by more than a few hundredths of a dB. Synthetic inputs: speed does not depend on content.
A benchmark, not a test: numbers depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

import torch

VARIANTS = {
    # name: (train.amp, channels_last, compile)
    "fp32": ("none", False, False),
    "bf16": ("bf16", False, False),
    "channels_last": ("none", True, False),
    "bf16+cl": ("bf16", True, False),
    "fp16": ("fp16", False, False),  # CUDA only
    "compile": ("none", False, True),
    "bf16+cl+compile": ("bf16", True, True),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is KiB on Linux (bytes on macOS)
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def peak_conv(device: torch.device, dtype: torch.dtype, side: int, reps: int) -> float:
    """FLOP/s of a 256 -> 256 channel 3x3 convolution on ``side x side`` (the machine's practical peak)."""
    n = 8 if device.type == "cuda" else 1
    flops = 2 * 256 * 256 * 9 * side * side * n
    best = 0.0
    for layout in (torch.contiguous_format, torch.channels_last):  # the faster layout is the practical peak
        x = torch.randn(n, 256, side, side, device=device, dtype=dtype).contiguous(memory_format=layout)
        conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).to(device, dtype, memory_format=layout)
        with torch.no_grad():
            conv(x)
            _sync(device)
            start, done = time.perf_counter(), 0
            # time-boxed: emulated bf16 on a CPU without bf16 instructions takes tens of seconds per call
            while done < reps and (done == 0 or time.perf_counter() - start < 2.0):
                conv(x)
                done += 1
            _sync(device)
        best = max(best, flops * done / (time.perf_counter() - start))
    return best


def _count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def cell(preset: str, variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """One (preset, variant): training it/s, deblurring MP/s, FLOPs, fidelity, peak memory. Runs in a subprocess."""
    from udeblur.config import load_config
    from udeblur.model import Translator
    from udeblur.training.trainer import Trainer, resolve_device

    amp, channels_last, compile_ = VARIANTS[variant]
    device = resolve_device(args.device)
    overrides = [f"train.amp={amp}", f"train.channels_last={str(channels_last).lower()}",
                 f"train.compile={str(compile_).lower()}", f"train.device={device}", "train.tensorboard=false"]
    if args.crop:
        overrides.append(f"data.crop_size={args.crop}")
    if args.batch:
        overrides.append(f"train.batch_size={args.batch}")
    if args.no_perceptual:
        overrides.append("loss.perceptual=0")
    cfg = load_config(preset, overrides)
    out: dict[str, Any] = {"preset": preset, "variant": variant, "crop": cfg.data.crop_size,
                           "batch": cfg.train.batch_size}
    # ---- training
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, tmp, progress=False)
        crop, bs, ch = cfg.data.crop_size, cfg.train.batch_size, cfg.model.channels
        g = torch.Generator().manual_seed(0)
        batch = {k: torch.rand(bs, ch, crop, crop, generator=g) * 2 - 1 for k in ("sharp", "blurred")}
        for _ in range(2):  # warm-up (and compilation): one D-only and one D+G iteration
            trainer.train_step(batch)
        # FLOPs of one D+G pair, halved: the average iteration (D every step, G every g_every=2)
        step = trainer.train_step
        if not compile_:
            out["train_gflop_per_it"] = sum(_count_flops(lambda: step(batch)) for _ in range(2)) / 2e9
        _sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            step(batch)
        _sync(device)
        out["train_it_s"] = args.steps / (time.perf_counter() - start)
        del trainer
    # ---- deblurring (the deployable path: DeblurNet, z = mu)
    torch.manual_seed(0)
    net = Translator(cfg.model).deblur_net().eval().to(device)
    x = torch.rand(1, cfg.model.channels, args.size, args.size, device=device) * 2 - 1
    with torch.inference_mode():
        reference = net(x).float()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    run = torch.compile(net) if compile_ else net
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    ctx = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else (lambda: torch.autocast(device.type,
                                                                                                   enabled=False))
    with torch.inference_mode(), ctx():
        y = run(x).float()  # warm-up / compile
        if not compile_:
            out["deblur_gflop_per_mp"] = _count_flops(lambda: run(x)) / 1e9 / (args.size**2 / 1e6)
        _sync(device)
        start = time.perf_counter()
        for _ in range(args.reps):
            run(x)
        _sync(device)
        out["deblur_mp_s"] = args.reps * args.size**2 / 1e6 / (time.perf_counter() - start)
    # outputs in [-1, 1]: peak-to-peak 2
    mse = float((y - reference).pow(2).mean())
    out["fidelity_db"] = math.inf if mse == 0 else 10 * math.log10(4.0 / mse)
    out["peak_mem_mb"] = _peak_memory_mb(device)
    return out


def _run_cell(preset: str, variant: str, argv: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, *argv, "--cell", preset, variant]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"preset": preset, "variant": variant, "error": tail[:120]}
    return json.loads(lines[-1])


def _fmt(v: Any, spec: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["paper", "small"])
    ap.add_argument("--variants", nargs="+", default=["fp32", "bf16", "channels_last", "bf16+cl"],
                    choices=list(VARIANTS))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--steps", type=int, default=4, help="timed training iterations (even: D and G steps)")
    ap.add_argument("--crop", type=int, default=0, help="training crop size (0: the preset's)")
    ap.add_argument("--batch", type=int, default=0, help="training batch (0: the preset's)")
    ap.add_argument("--no-perceptual", action="store_true", help="leave the VGG perceptual term out")
    ap.add_argument("--size", type=int, default=512, help="side of the deblurred square image")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--peak-side", type=int, default=0, help="side of the peak-conv input (0: 64 CPU, 128 GPU)")
    ap.add_argument("--cell", nargs=2, metavar=("PRESET", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.cell:
        print(json.dumps(cell(args.cell[0], args.cell[1], args)))
        return

    from udeblur.training.trainer import resolve_device

    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or
                                                                              platform.machine())
    side = args.peak_side or (128 if device.type == "cuda" else 64)
    peaks = {"fp32": peak_conv(device, torch.float32, side, 5), "bf16": peak_conv(device, torch.bfloat16, side, 5)}
    if device.type == "cuda":
        peaks["fp16"] = peak_conv(device, torch.float16, side, 5)
    from udeblur.device import cpu_has_fast_bf16

    bf16_note = "" if device.type == "cuda" else f", native CPU bf16: {cpu_has_fast_bf16()}"
    print(f"# {name} ({device}), torch {torch.__version__}, {args.threads} threads{bf16_note}")
    print("peak (256-ch 3x3 conv, same run): " + ", ".join(f"{k} {v / 1e9:,.0f} GFLOP/s" for k, v in peaks.items()))
    argv = list(sys.argv[1:])
    print()
    print("| preset | variant | train it/s | x fp32 | GFLOP/it | train GFLOP/s (% peak) | deblur MP/s | x fp32 "
          "| GFLOP/MP | deblur GFLOP/s (% peak) | fidelity dB | peak mem MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    base: dict[str, dict[str, Any]] = {}
    flops: dict[str, dict[str, float]] = {}
    for p_, v_ in ((p, v) for p in args.presets for v in args.variants):
        r = _run_cell(p_, v_, argv)  # rows are printed as they come: a long run still shows what it measured
        p = r["preset"]
        if "error" in r:
            print(f"| {p} | {r['variant']} | failed: {r['error']} |", flush=True)
            continue
        if r["variant"] == "fp32":
            base[p] = r
        flops.setdefault(p, {})
        # FLOPs do not depend on the switch (compile cells are not counted): reuse any measured count
        for k in ("train_gflop_per_it", "deblur_gflop_per_mp"):
            if k in r:
                flops[p][k] = r[k]
        amp = VARIANTS[r["variant"]][0]
        peak = peaks.get({"none": "fp32"}.get(amp, amp), peaks["fp32"])
        b = base.get(p, {})
        gf_it, gf_mp = flops[p].get("train_gflop_per_it"), flops[p].get("deblur_gflop_per_mp")
        t_rate = gf_it * r["train_it_s"] if gf_it else None
        d_rate = gf_mp * r["deblur_mp_s"] if gf_mp else None
        t_pct = t_rate * 1e9 / peak * 100 if t_rate else None
        d_pct = d_rate * 1e9 / peak * 100 if d_rate else None
        print(
            f"| {p} ({r['crop']}px x{r['batch']}) | {r['variant']} | {r['train_it_s']:.3g} | "
            f"{_fmt(r['train_it_s'] / b['train_it_s'] if b else None, '.2f')} | {_fmt(gf_it, '.1f')} | "
            f"{_fmt(t_rate, '.1f')} ({_fmt(t_pct, '.0f')}%) | "
            f"{r['deblur_mp_s']:.3g} | {_fmt(r['deblur_mp_s'] / b['deblur_mp_s'] if b else None, '.2f')} | "
            f"{_fmt(gf_mp, '.1f')} | {_fmt(d_rate, '.1f')} ({_fmt(d_pct, '.0f')}%)"
            f" | {_fmt(r['fidelity_db'], '.1f')} | {r['peak_mem_mb']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

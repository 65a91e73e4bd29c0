"""Speed of the data layer: text rendering, blur synthesis and the whole built-in text domain.

    python benchmarks/bench_data.py                 # 10,000 training crops (5,000 sharp + 5,000 blurred)
    python benchmarks/bench_data.py --train-count 500 --workers 1

Prints crops per second for: page rendering alone (one process), blur synthesis alone (kernel + FFT blur +
noise on 128x128 crops, one process), and `make_text_domain` end to end (rendering, blur, PNG writing,
metadata) with the given number of worker processes. The issue's target: 10,000 crops of 128 x 128 in
under a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from udeblur.data.blur import degrade, random_kernel
from udeblur.data.text import TextDomainConfig, make_text_domain, render_page


def bench_render(cfg: TextDomainConfig, pages: int) -> tuple[float, float]:
    rng = np.random.default_rng(1)
    render_page(rng, cfg, 0)  # font/word-list caches
    t = time.perf_counter()
    crops = 0
    for _ in range(pages):
        page = render_page(rng, cfg, 0)
        for cell in page.cells:
            page.visible(cell)
            crops += 1
    dt = time.perf_counter() - t
    return crops / dt, 1000 * dt / pages


def bench_blur(cfg: TextDomainConfig, n: int) -> tuple[float, float]:
    rng = np.random.default_rng(2)
    img = rng.random((cfg.size, cfg.size, cfg.channels), dtype=np.float32)
    t = time.perf_counter()
    for _ in range(n):
        random_kernel(rng, cfg.blur)
    kernels_per_s = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(n):
        degrade(img, rng, cfg.blur)
    return n / (time.perf_counter() - t), kernels_per_s


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bench_pipeline(cfg: TextDomainConfig, workers: int) -> tuple[float, float, int, float]:
    root = Path(tempfile.mkdtemp(prefix="udeblur-bench-"))
    try:
        cpu = _cpu_seconds()
        t = time.perf_counter()
        make_text_domain(root / "text", cfg, workers=workers, progress=False)
        dt = time.perf_counter() - t
        cpu = _cpu_seconds() - cpu
        total = 2 * cfg.train_count + 2 * cfg.test_count  # every PNG written
        t = time.perf_counter()
        make_text_domain(root / "text", cfg, workers=workers, progress=False)
        again = time.perf_counter() - t
        return dt, again, total, cpu
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-count", type=int, default=5000, help="crops in EACH of train/sharp, train/blurred")
    ap.add_argument("--test-count", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--pages", type=int, default=60, help="pages for the rendering-only measurement")
    args = ap.parse_args()
    cfg = TextDomainConfig(size=args.size, train_count=args.train_count, test_count=args.test_count)
    print(f"cpus: {os.cpu_count()}  crop: {cfg.size}x{cfg.size}x{cfg.channels}  workers: {args.workers}")

    crops_s, page_ms = bench_render(cfg, args.pages)
    print(f"render (1 process)          {crops_s:8.1f} crops/s   ({page_ms:.1f} ms per page of 9 crops)")
    blur_s, kern_s = bench_blur(cfg, 300)
    print(f"blur synthesis (1 process)  {blur_s:8.1f} crops/s   (kernels alone: {kern_s:.0f}/s)")
    dt, again, total, cpu = bench_pipeline(cfg, args.workers)
    print(f"make_text_domain            {total / dt:8.1f} crops/s   ({total} PNGs in {dt:.1f} s wall, "
          f"{cpu:.1f} s CPU; second call {1000 * again:.1f} ms)")
    print(f"  -> 10,000 crops: {10000 * dt / total:.1f} s wall here with {args.workers} worker(s); "
          f"{10000 * cpu / total:.1f} CPU-s, i.e. {10000 * cpu / total / args.workers:.1f} s on "
          f"{args.workers} otherwise idle cores")
    load = os.getloadavg()[0]
    if load > 1.5 * args.workers:
        print(f"  note: load average {load:.1f} on {os.cpu_count()} cores: other processes share the CPUs")


if __name__ == "__main__":
    main()

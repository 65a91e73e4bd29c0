"""`udeblur demo`: the whole pipeline on the built-in text domain, in minutes, on a CPU."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="generate the built-in text domain, train the small preset briefly, deblur and report",
        description="Generates unpaired sharp/blurred text crops, trains the `small` preset for a few minutes, "
        "deblurs the held-back paired test set, prints PSNR/SSIM (blurred vs deblurred) and writes an HTML page.",
    )
    p.add_argument("--out", "-o", default="udeblur-demo", help="output folder [udeblur-demo]")
    p.add_argument("--minutes", type=float, default=4.0, help="training time budget in minutes [4]")
    p.add_argument("--steps", type=int, default=1500, help="at most this many training steps [1500]")
    p.add_argument("--config", "-c", default="small", help="preset or YAML [small]")
    p.add_argument("--resume", action="store_true", help="continue the demo's training run in --out")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("set", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    import numpy as np

    from ..config import load_config
    from ..data.builtin import resolve_data_root
    from ..imageio import list_images, load_pixels
    from ..inference.deblurrer import Deblurrer
    from ..metrics.image_quality import evaluate_pairs
    from ..report import write_html
    from ..training.trainer import EXPORT_NAME, Trainer
    from ..visualize import image_grid

    t0 = time.perf_counter()
    out = Path(args.out)
    cfg = load_config(args.config, [f"train.total_steps={args.steps}", *args.set])
    progress = not args.quiet

    print("1/4 built-in text domain (generated once, then cached)")
    root = resolve_data_root(cfg, progress=progress)
    print(f"    data: {root}")

    print(f"2/4 training the '{cfg.name}' preset for at most {args.minutes:g} min / {args.steps} steps")
    run_dir = out / "run"
    if run_dir.exists() and not args.resume:
        import shutil

        shutil.rmtree(run_dir)  # the demo's own scratch run: a second `udeblur demo` starts afresh
        shutil.rmtree(out / "deblurred", ignore_errors=True)
    trainer = Trainer(cfg, run_dir, resume=args.resume, progress=progress, data_root=root)
    trainer.fit(time_limit=args.minutes * 60)
    model_path = out / "run" / EXPORT_NAME

    print("3/4 deblurring the held-back test set")
    test_blurred = sorted(list_images(root / "test" / "blurred"))
    deblurrer = Deblurrer.from_checkpoint(model_path, device=cfg.train.device)
    outputs = deblurrer.deblur_paths(test_blurred, out / "deblurred", progress=progress)
    sharp = [root / "test" / "sharp" / p.name for p in test_blurred]

    print("4/4 metrics and report")
    before = evaluate_pairs(list(zip(test_blurred, sharp, strict=True)), progress=False)
    after = evaluate_pairs(list(zip(outputs, sharp, strict=True)), progress=False)
    rows = []
    for name, res in (("blurred input", before), (f"udeblur ({cfg.name}, step {trainer.step})", after)):
        rows.append({
            "method": name,
            "PSNR (dB)": float(np.mean([r["psnr"] for r in res])),
            "SSIM": float(np.mean([r["ssim"] for r in res])),
            "images": len(res),
        })
    n_show = min(8, len(outputs))
    grid = image_grid([[load_pixels(p) for p in (test_blurred[i], outputs[i], sharp[i])] for i in range(n_show)])
    from ..imageio import save_png

    save_png(out / "grid.png", grid)
    figures = [("held-back test crops: blurred input | udeblur | sharp (truth)", "grid.png")]
    samples = sorted((out / "run" / "samples").glob("samples_*.png"))
    if samples:
        figures.append((
            f"training sample at step {trainer.step}: blurred | deblurred | sharp | re-blurred sharp | cycle",
            str(samples[-1].relative_to(out)),
        ))
    page = write_html(
        out / "index.html",
        "udeblur demo: built-in text domain",
        rows,
        figures,
        notes=[
            f"Trained the '{cfg.name}' preset for {trainer.step} steps on unpaired synthetic text crops, "
            f"evaluated on {len(outputs)} held-back paired crops. A few CPU minutes are far from the paper's "
            "budget: expect the model to be early in training.",
        ],
    )
    print()
    print(f"{'method':40s} {'PSNR':>8s} {'SSIM':>8s}")
    for r in rows:
        print(f"{r['method']:40s} {r['PSNR (dB)']:8.2f} {r['SSIM']:8.4f}")
    print(f"\nreport: {page.resolve()}\nmodel:  {model_path}\ntook {time.perf_counter() - t0:.0f} s")
    return 0

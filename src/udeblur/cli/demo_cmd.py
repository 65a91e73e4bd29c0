"""`udeblur demo`: the bundled model (or a freshly trained one) on the built-in text test split, with a report page."""

from __future__ import annotations

import argparse
import sys

from . import MODEL_HELP, TONE_ANCHOR_HELP, bundled_note

# the real photograph shown whole on the page: scikit-image's `text` (public domain, shipped in udeblur/assets),
# blurred as docs/make_real_text_figure.py blurs it at 9 px, so the page shows a case the model card measures
PHOTO = "text_photo.png"
PHOTO_KERNEL, PHOTO_SEED, PHOTO_NOISE = 9, 1, 0.01
SHOWN_CROPS = 8


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="deblur the built-in text test set with the bundled model (or --train a fresh one) and report",
        description="Renders the paired test crops of the built-in text domain (only those: seconds), deblurs them "
        "with the bundled model through the evaluation harness, prints PSNR/SSIM of the blurred input and the "
        "output with the gain image by image, and writes OUT/index.html: the gain with its 95% interval, a "
        "before/after slider on a real photograph of text, the crops enlarged in labelled columns "
        "(blurred | udeblur | sharp). Under half a minute on 2 CPU cores. With --train it first trains a fresh "
        "model (the --config preset for --minutes) and uses that instead. " + bundled_note(),
    )
    p.add_argument("--model", "-m", metavar="MODEL", default="bundled", help=MODEL_HELP)
    p.add_argument("--train", action="store_true", help="train a fresh model instead of using --model")
    p.add_argument("--out", "-o", default="udeblur-demo", help="output folder [udeblur-demo]")
    p.add_argument("--minutes", type=float, default=4.0, help="with --train: training time budget in minutes [4]")
    p.add_argument("--steps", type=int, default=1500, help="with --train: at most this many training steps [1500]")
    p.add_argument("--config", "-c", default="small",
                   help="preset or YAML: its built-in test data, and with --train its model [small]")
    p.add_argument("--resume", action="store_true", help="with --train: continue the demo's training run in --out")
    p.add_argument("--tone-anchor", type=float, default=None, metavar="SIGMA", help=TONE_ANCHOR_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("set", nargs="*", metavar="KEY=VALUE", help="config overrides [none]")
    p.set_defaults(run=run)


def _fail(message: str) -> int:
    print(f"udeblur demo: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    import shutil
    import time
    from pathlib import Path

    from ..config import load_config
    from ..data.builtin import resolve_data_root
    from ..evaluation.baselines import baseline_method, deblurrer_method
    from ..evaluation.evaluate import MethodSpec, evaluate
    from ..inference.pretrained import NO_MODEL, ResolvedModel, bundled_name, resolve_model

    t0 = time.perf_counter()
    out = Path(args.out)
    training = args.train or args.resume
    if training and bundled_name(args.model) is None:
        return _fail("--train trains its own model: leave out --model")
    cfg = load_config(args.config, [f"train.total_steps={args.steps}", *args.set])
    progress = not args.quiet

    print("1/4 built-in text domain: " + ("training and test crops" if training else "the paired test crops only"))
    root = resolve_data_root(cfg, progress=progress, test_only=not training)
    print(f"    data: {root}")

    trainer = None
    if training:
        from ..training.trainer import EXPORT_NAME, Trainer

        print(f"2/4 training the '{cfg.name}' preset for at most {args.minutes:g} min / {args.steps} steps")
        run_dir = out / "run"
        if run_dir.exists() and not args.resume:
            shutil.rmtree(run_dir)  # the demo's own scratch run: a second `udeblur demo` starts afresh
        trainer = Trainer(cfg, run_dir, resume=args.resume, progress=progress, data_root=root)
        trainer.fit(time_limit=args.minutes * 60)
        model = ResolvedModel(run_dir / EXPORT_NAME, None, args.tone_anchor or 0.0)
        label = f"udeblur ({cfg.name}, fresh, step {trainer.step})"
    else:
        resolved = resolve_model(args.model, args.tone_anchor)
        if resolved is None:
            return _fail(f"{NO_MODEL}; or run `udeblur demo --train`")
        model = resolved
        which = "the bundled model" if bundled_name(args.model) else "the model"
        print(f"2/4 using {which} {model.path.name} (tone anchor {model.tone_anchor:g} px)")
        label = "udeblur (bundled model)" if bundled_name(args.model) else f"udeblur ({model.path.name})"
    from ..inference.deblurrer import Deblurrer

    try:
        deblurrer = Deblurrer.from_resolved(model, device=cfg.train.device)
    except ValueError as exc:  # CheckpointError names the file
        return _fail(str(exc))

    print("3/4 deblurring and scoring the held-back test set (the evaluation harness)")
    shutil.rmtree(out / "eval", ignore_errors=True)
    methods = [MethodSpec("blurred", baseline_method("blurred"), "blurred input"),
               MethodSpec("udeblur", deblurrer_method(deblurrer), label)]
    result = evaluate(methods, root, out / "eval", feature_distance=False, save_images=True, progress=progress,
                      title=f"udeblur demo: {label} on the built-in text test split")
    summary = result.summary
    rows = [{"method": v["label"], "PSNR (dB)": v["psnr"]["mean"], "SSIM": v["ssim"]["mean"],
             "images": v["psnr"]["n"]} for v in summary["methods"].values()]
    gains = summary["vs_blurred"].get("udeblur", {})

    print("4/4 report page")
    page = _write_page(out, root, result, rows, gains, label, deblurrer, trainer, model)

    print()
    print(f"{'method':40s} {'PSNR':>8s} {'SSIM':>8s}")
    for r in rows:
        print(f"{r['method']:40s} {r['PSNR (dB)']:8.2f} {r['SSIM']:8.4f}")
    g = gains["psnr"]
    print(f"PSNR gain image by image: {g['mean']:+.2f} dB (95% interval {g['low']:+.2f} to {g['high']:+.2f}), "
          f"better on {g['better']} of {g['n']} crops")
    print(f"\nreport: {page.resolve()}\nmodel:  {model.path}\ntook {time.perf_counter() - t0:.0f} s")
    return 0


def _write_page(out, root, result, rows, gains, label, deblurrer, trainer, model):
    """The demo page: crops evenly spaced over the test split (not picked), the real photograph, the table."""
    import shutil
    from importlib import resources
    from pathlib import Path

    import numpy as np

    from ..data.blur import camera_shake_kernel, convolve
    from ..data.datasets import find_test_folders
    from ..evaluation.demo_page import CropRow, PageShot, write_demo_page
    from ..imageio import list_images, load_pixels, save_png
    from ..inference.pretrained import BUNDLED, DEFAULT
    from ..metrics.image_quality import psnr

    per_image = {(r["method"], r["image"]): r for r in result.rows}
    names = sorted({r["image"] for r in result.rows if r["method"] == "udeblur"})
    sharp_dir, _ = find_test_folders(root)
    sharp_files = {p.relative_to(sharp_dir).with_suffix("").as_posix(): p for p in list_images(sharp_dir)}
    shown = sorted(set(np.linspace(0, len(names) - 1, min(SHOWN_CROPS, len(names))).round().astype(int).tolist()))
    crops_dir = out / "crops"
    shutil.rmtree(crops_dir, ignore_errors=True)
    crops_dir.mkdir(parents=True)
    crops = []
    for i in shown:
        name = names[i]
        flat = name.replace("/", "_")
        sharp_copy = crops_dir / f"{flat}-sharp.png"
        save_png(sharp_copy, load_pixels(sharp_files[name]))
        h, w = load_pixels(sharp_copy).shape[:2]
        crops.append(CropRow(
            name, f"eval/images/blurred/{name}.png", f"eval/images/udeblur/{name}.png",
            sharp_copy.relative_to(out).as_posix(), per_image[("blurred", name)]["psnr"],
            per_image[("udeblur", name)]["psnr"], w, h))
    scale = 3 if max((c.width for c in crops), default=0) <= 128 else 2

    photo = None
    source = Path(str(resources.files("udeblur").joinpath("assets", PHOTO)))
    if source.is_file():
        sharp = load_pixels(source)
        rng = np.random.default_rng(PHOTO_SEED)
        blurred = convolve(sharp, camera_shake_kernel(PHOTO_KERNEL, rng))
        blurred = np.clip(blurred + rng.normal(0, PHOTO_NOISE, blurred.shape).astype(np.float32), 0, 1)
        blurred = np.round(blurred * 255) / 255  # what the saved file holds: the input a user would have
        restored = np.round(np.clip(deblurrer.deblur_pixels(blurred.astype(np.float32)), 0, 1) * 255) / 255
        for name, img in (("blurred", blurred), ("udeblur", restored), ("sharp", sharp)):
            save_png(out / "page" / f"{name}.png", img)
        photo = PageShot("page/blurred.png", "page/udeblur.png", "page/sharp.png", sharp.shape[1], sharp.shape[0],
                         f"scikit-image's `text` (a photographed sign, public domain), blurred here by a "
                         f"{PHOTO_KERNEL} px camera-shake kernel plus noise of std {PHOTO_NOISE}.",
                         psnr(blurred, sharp), psnr(restored, sharp))

    n = len(names)
    if trainer is not None:
        lead = (f"A fresh model of the '{trainer.cfg.name}' preset, trained for {trainer.step} steps on unpaired "
                f"synthetic text crops, on {n} held-back blurred crops it never saw. A few CPU minutes are far from "
                "the paper's budget: expect it to be early in training.")
        limits = ""
    else:
        entry = BUNDLED[DEFAULT]
        lead = (f"{label} on {n} held-back blurred crops of the built-in text domain, which it never saw in "
                f"training: it is {entry.handles}. Tone anchor {model.tone_anchor:g} px.")
        limits = entry.limits[:1].upper() + entry.limits[1:] + ". Model card: docs/model_card_text.md."
    notes = [f"Crops shown: {len(crops)} of {n}, evenly spaced over the test split (not picked). PSNR under each "
             "image is against the sharp truth; in brackets the change from the blurred input."]
    links = [("full evaluation report (grid, charts)", "eval/index.html"), ("per-image figures (CSV)",
                                                                            "eval/per_image.csv")]
    samples = sorted((out / "run" / "samples").glob("samples_*.png")) if trainer is not None else []
    if samples:
        links.append((f"training sample at step {trainer.step}", str(samples[-1].relative_to(out))))
    return write_demo_page(
        out / "index.html", title="udeblur demo: deblurring text", lead=lead, gains=gains, table=rows, crops=crops,
        crop_scale=scale, crops_note=notes[0], page=photo, page_scale=2, limits=limits, links=links,
    )

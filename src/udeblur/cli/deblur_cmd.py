"""`udeblur deblur INPUT... -o OUTDIR [--model PATH]`: deblur files and folders into PNGs of the same size."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import MODEL_HELP, TONE_ANCHOR_HELP, bundled_note


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "deblur",
        help="deblur images with a trained model",
        description="Deblur image files and folders (searched recursively). Outputs are PNGs with the same names "
        "(folder structure kept; files of one name from different folders keep the folder that tells them apart) "
        "and exactly the input's size, upright (EXIF orientation applied); alpha, grayscale and 16 bits are kept "
        "(16-bit colour PNGs need OpenCV, the opencv-python package; without it they are read and written "
        "with 8 bits). Animated and multi-page images are refused. An output that would replace an input stops the "
        "run before anything is written. "
        "Deterministic: the same input always gives the same output. " + bundled_note(),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the deblurred PNGs")
    p.add_argument("--model", "-m", metavar="MODEL", default="bundled", help=MODEL_HELP)
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    p.add_argument("--tile", type=int, default=1024, metavar="N",
                   help="images larger than N px on a side are processed in overlapping tiles (memory bound)")
    p.add_argument("--overlap", type=int, default=64, metavar="N", help="overlap of neighbouring tiles in px")
    p.add_argument("--norm", choices=("tile", "image"), default="tile",
                   help="tiled images: normalise each tile by its own statistics (one pass, default) or by the "
                   "whole image's (exact, ~10x slower)")
    p.add_argument("--batch", type=int, default=1, metavar="N",
                   help="images of one size (or tiles) per forward pass; >1 helps on a GPU")
    p.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16"), default="auto",
                   help="auto: fp16 autocast on CUDA; on the CPU bf16 where a start-up timing shows it clearly "
                   "faster than fp32 (native bf16), fp32 elsewhere")
    p.add_argument("--engine", choices=("auto", "torch", "onnx"), default="auto",
                   help="auto: onnxruntime on the exported graph (cached) for a model file on the CPU in fp32 "
                   "where onnxruntime is installed, else PyTorch")
    p.add_argument("--io-workers", type=int, default=2, metavar="N",
                   help="threads reading and writing files while the network runs")
    p.add_argument("--tone-anchor", type=float, default=None, metavar="SIGMA", help=TONE_ANCHOR_HELP)
    p.add_argument("--max-megapixels", type=float, default=150.0, metavar="MP",
                   help="refuse larger images (read from the file header, before decoding): memory is ~50 bytes "
                   "per pixel (7.5 GB at 150); at most 178, Pillow's own safety limit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _fail(message: str) -> int:
    print(f"udeblur deblur: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    # checked before the model is loaded so a typo fails at once
    if not 0 < args.max_megapixels <= 178:
        return _fail(f"--max-megapixels {args.max_megapixels:g}: must be in (0, 178]")
    for name in args.inputs:
        if not Path(name).exists():
            return _fail(f"{name}: no such file or folder")
    from ..inference.pretrained import NO_MODEL, resolve_model

    resolved = resolve_model(args.model, args.tone_anchor)
    if resolved is None:
        return _fail(NO_MODEL)

    from ..inference.deblurrer import DeblurBatchError, Deblurrer

    try:
        deblurrer = Deblurrer.from_resolved(
            resolved,
            device=args.device, tile=args.tile, overlap=args.overlap, norm=args.norm, batch=args.batch,
            precision=args.precision, io_workers=args.io_workers, engine=args.engine,
        )
    except ValueError as exc:  # CheckpointError (names the file), bad device / tile / overlap
        return _fail(str(exc))
    try:
        written = deblurrer.deblur_paths(args.inputs, args.output, progress=not args.quiet,
                                         max_megapixels=args.max_megapixels)
    except DeblurBatchError as exc:
        print(f"wrote {len(exc.written)} image(s) to {args.output}", file=sys.stderr)
        return _fail(str(exc))
    print(f"wrote {len(written)} image(s) to {args.output}")
    return 0

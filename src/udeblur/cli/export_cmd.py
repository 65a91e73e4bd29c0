"""`udeblur export [MODEL] [-o out.onnx]`: the deblurring path as ONNX (dynamic batch/height/width)."""

from __future__ import annotations

import argparse

from . import MODEL_HELP


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export the deblurring network to ONNX",
        description="Write the deblurring path of MODEL (the bundled model by default, deblur.safetensors or a "
        "training checkpoint .pt) as ONNX with dynamic batch, height and width. Input 'blurred' N x C x H x W "
        "float32 in [-1, 1], output 'sharp'; "
        "H and W must be multiples of the model's size multiple and at least its minimum size (both in the file's "
        "metadata): "
        "pad by reflection and crop back, as `udeblur deblur` does.",
    )
    p.add_argument("model", metavar="MODEL", nargs="?", default="bundled", help=MODEL_HELP + " [bundled]")
    p.add_argument("--onnx", action="store_true",
                   help="ONNX format: the only one and the default (the flag is accepted, never needed)")
    p.add_argument("--out", "-o", default=None,
                   help="output .onnx file; default: MODEL's name with .onnx in the working folder")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (>= 17) [17]")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from ..inference.export import ONNX_OPSET, export_onnx
    from ..inference.pretrained import NO_MODEL, bundled_name, resolve_model

    resolved = resolve_model(args.model)
    if resolved is None:
        print(f"udeblur export: error: {NO_MODEL}", file=sys.stderr)
        return 2
    # default name: deblur.onnx for runs/x/deblur.safetensors, udeblur-text.onnx for the bundled text model
    out = args.out or ("udeblur-" if bundled_name(args.model) else "") + resolved.path.stem + ".onnx"
    # the exported weights must be the ones the file's SHA-256 (bundled entry or sidecar) names
    path = export_onnx(resolved.path, Path(out), opset=args.opset or ONNX_OPSET, expected_sha256=resolved.sha256)
    print(f"onnx: {path}")
    return 0

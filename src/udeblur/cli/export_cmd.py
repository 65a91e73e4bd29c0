"""`udeblur export --onnx MODEL -o out.onnx`: the deblurring path as ONNX (dynamic batch/height/width)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export the deblurring network to ONNX",
        description="Write the deblurring path of MODEL (deblur.safetensors or a training checkpoint .pt) as ONNX "
        "with dynamic batch, height and width. Input 'blurred' N x C x H x W float32 in [-1, 1], output 'sharp'; "
        "H and W must be multiples of 4 (and at least the model's minimum size, in the file's metadata): "
        "pad by reflection and crop back, as `udeblur deblur` does.",
    )
    p.add_argument("model", metavar="MODEL", help="deblur.safetensors or checkpoints/last.pt")
    p.add_argument("--onnx", action="store_true", required=True, help="export format (ONNX, the only one)")
    p.add_argument("--out", "-o", required=True, help="output .onnx file")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (>= 17) [17]")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..inference.export import ONNX_OPSET, export_onnx

    path = export_onnx(args.model, args.out, opset=args.opset or ONNX_OPSET)
    print(f"onnx: {path}")
    return 0

"""`udeblur serve [--model PATH] [--port 8000]`: a local web page to deblur images in a browser."""

from __future__ import annotations

import argparse
import sys

from . import MODEL_HELP, TONE_ANCHOR_HELP, bundled_note


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="start a local web page for deblurring",
        description="Start a web page on this machine: drop images, compare blurred and deblurred side by side, "
        "zoom, download. Listens on 127.0.0.1 (this machine only) unless --host says otherwise. Nothing is "
        "written to disk: uploads are decoded and encoded in memory. Memory is bounded: --workers requests are "
        "served at once (64 more wait; beyond that the answer is 503, try again) and images are decoded and "
        "deblurred one at a time, so the peak is about the model and one tile's network memory + workers x "
        "max-upload-mb + 60 bytes x max-megapixels (defaults: 4 x 50 MB + 40 MP x 60 B, about 2.6 GB, plus the "
        "model and its tile: 5.4 GB peak measured with the bundled model under 50 uploads of 39.7 MP). A client "
        "silent for 30 s is disconnected. " + bundled_note(),
    )
    p.add_argument("--model", "-m", metavar="MODEL", default="bundled", help=MODEL_HELP)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; 0.0.0.0 exposes the page to your network (no authentication!)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port) [8000]")
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest accepted upload [50]")
    p.add_argument("--max-megapixels", type=float, default=40.0, help="largest accepted image [40]")
    p.add_argument("--workers", type=int, default=4, help="requests served at once (each holds one upload) [4]")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    p.add_argument("--tile", type=int, default=1024, metavar="N", help="tile size for large images [1024]")
    p.add_argument("--engine", choices=("auto", "torch", "onnx"), default="auto",
                   help="auto: onnxruntime on the exported graph (cached) for a model file on the CPU in fp32 "
                   "where onnxruntime is installed, else PyTorch")
    p.add_argument("--tone-anchor", type=float, default=None, metavar="SIGMA", help=TONE_ANCHOR_HELP)
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..inference.pretrained import NO_MODEL, bundled_name, resolve_model
    from ..web import DeblurService, make_server

    resolved = resolve_model(args.model, args.tone_anchor)
    if resolved is None:
        print(f"udeblur serve: error: {NO_MODEL}", file=sys.stderr)
        return 2
    model = resolved.path
    from ..inference.deblurrer import Deblurrer

    try:
        deblurrer = Deblurrer.from_resolved(resolved, device=args.device, tile=args.tile, engine=args.engine)
    except ValueError as exc:
        print(f"udeblur serve: error: {exc}", file=sys.stderr)
        return 2
    bundled = bundled_name(args.model)
    name = f"bundled ({model.name})" if bundled else model.name
    about = None
    if bundled:
        from ..inference.pretrained import BUNDLED

        about = {"handles": BUNDLED[bundled].handles, "limits": BUNDLED[bundled].limits}
    service = DeblurService(deblurrer, name, args.max_upload_mb, args.max_megapixels, about=about)
    try:
        server = make_server(service, args.host, args.port, quiet=not args.verbose, workers=max(1, args.workers))
    except OSError as exc:
        print(f"udeblur serve: error: cannot listen on {args.host}:{args.port} ({exc.strerror or exc})",
              file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"
    print(f"udeblur serve: {url}  (model {name}; Ctrl-C or SIGTERM stops)", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        # SIGTERM (service managers, `kill`) stops it like Ctrl-C; a shell that starts us in the background may
        # have set SIGINT to be ignored, so tests and scripts should use SIGTERM
        def stop(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
    return 0

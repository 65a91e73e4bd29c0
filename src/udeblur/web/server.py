"""`udeblur serve`: a small local web server (standard library only) around a ``Deblurrer``.

    from udeblur.web import make_server
    server = make_server(deblurrer, host="127.0.0.1", port=8000)
    server.serve_forever()

Routes: ``GET /`` the page (``index.html`` beside this file), ``GET /api/info`` limits and model name,
``POST /api/deblur`` the raw bytes of one image (its name in the ``X-Filename`` header) -> JSON with the input
and the deblurred result as PNG data URLs, or ``{"error": ...}`` with status 400 (not an image) / 413 (too
large). Images are decoded and encoded in memory: the server writes no files at all. It listens on localhost
unless told otherwise; requests are deblurred one at a time (one model, bounded memory).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import urllib.parse
import warnings
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from PIL import Image, UnidentifiedImageError

from ..imageio import image_from_pil, to_pil
from ..inference.deblurrer import Deblurrer


class ServiceError(Exception):
    """A request the service refuses; ``status`` is the HTTP status, the message is shown to the user."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class DeblurService:
    """Decode, check, deblur and encode one uploaded image; no HTTP here (usable and testable on its own)."""

    deblurrer: Deblurrer
    model_name: str = "model"
    max_upload_mb: float = 50.0
    max_megapixels: float = 40.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()  # one image at a time through the network

    def info(self) -> dict[str, Any]:
        return {"model": self.model_name, "max_upload_mb": self.max_upload_mb, "max_megapixels": self.max_megapixels}

    def check_size(self, n_bytes: int, name: str) -> None:
        if n_bytes > self.max_upload_mb * 2**20:
            raise ServiceError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"{name}: {n_bytes / 2**20:.1f} MB is over this server's upload limit of {self.max_upload_mb:g} MB "
                "(start it with a larger --max-upload-mb, or use `udeblur deblur`)",
            )
        if n_bytes == 0:
            raise ServiceError(HTTPStatus.BAD_REQUEST, f"{name}: the file is empty")

    def deblur_bytes(self, payload: bytes, name: str = "upload") -> dict[str, Any]:
        self.check_size(len(payload), name)
        with warnings.catch_warnings():
            # Pillow's own bomb check would warn or fail with a message about "decompression bombs"; ours is clearer
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                img = Image.open(io.BytesIO(payload))
            except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
                raise ServiceError(
                    HTTPStatus.BAD_REQUEST,
                    f"{name}: not an image file this server can read (use PNG, JPEG, TIFF, BMP, GIF or WebP)",
                ) from None
            w, h = img.size
            if w * h > self.max_megapixels * 1e6:
                raise ServiceError(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"{name}: {w} x {h} px = {w * h / 1e6:.1f} megapixels is over this server's limit of "
                    f"{self.max_megapixels:g} (start it with a larger --max-megapixels, or use `udeblur deblur`)",
                )
            try:
                img.load()
                data = image_from_pil(img, name)
            except Exception as exc:  # truncated or damaged after a valid header
                raise ServiceError(HTTPStatus.BAD_REQUEST, f"{name}: damaged image ({exc})") from None
        start = time.perf_counter()
        with self._lock:
            out = self.deblurrer.deblur_data(data)
        seconds = time.perf_counter() - start
        before = to_pil(data.pixels, data.alpha, data.bits)
        after = to_pil(out.pixels, out.alpha, out.bits)
        return {
            "name": name,
            "width": w,
            "height": h,
            "seconds": round(seconds, 3),
            "input": _png_data_url(before),
            "output": _png_data_url(after),
        }


def _png_data_url(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)  # local transfer: speed over size
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _page() -> bytes:
    return resources.files(__package__).joinpath("index.html").read_bytes()


class _Handler(BaseHTTPRequestHandler):
    service: DeblurService  # set on the subclass made by make_server
    server_version = "udeblur"
    quiet = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        if not self.quiet:
            super().log_message(format, *args)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, obj: dict[str, Any]) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _discard(self, length: int, limit: int = 2**30) -> None:
        """Read and drop an oversized body in chunks (clients that are cut off mid-upload show no message)."""
        left = min(length, limit)
        while left > 0:
            chunk = self.rfile.read(min(left, 2**20))
            if not chunk:
                break
            left -= len(chunk)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, _page(), "text/html; charset=utf-8")
        elif self.path == "/api/info":
            self._json(HTTPStatus.OK, self.service.info())
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {self.path}"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/api/deblur":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.path}"})
            return
        name = urllib.parse.unquote(self.headers.get("X-Filename", "upload"))[:200] or "upload"
        try:
            length = int(self.headers.get("Content-Length", "-1"))
            if length < 0:
                raise ServiceError(HTTPStatus.LENGTH_REQUIRED, "the upload must say its length (Content-Length)")
            try:
                self.service.check_size(length, name)
            except ServiceError:
                self._discard(length)  # never held in memory; read so that the browser gets the message
                raise
            result = self.service.deblur_bytes(self.rfile.read(length), name)
        except ServiceError as exc:
            self.close_connection = True
            self._json(exc.status, {"error": str(exc)})
        except Exception as exc:  # a bug or out of memory: say so, keep serving
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{name}: {type(exc).__name__}: {exc}"})
        else:
            self._json(HTTPStatus.OK, result)


def make_server(
    service: DeblurService, host: str = "127.0.0.1", port: int = 8000, quiet: bool = True
) -> ThreadingHTTPServer:
    """A ready HTTP server (port 0: any free port; ``server.server_address`` tells which)."""
    handler = type("DeblurHandler", (_Handler,), {"service": service, "quiet": quiet})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server

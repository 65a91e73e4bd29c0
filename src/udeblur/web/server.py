"""`udeblur serve`: a small local web server (standard library only) around a ``Deblurrer``.

    from udeblur.web import make_server
    server = make_server(deblurrer, host="127.0.0.1", port=8000)
    server.serve_forever()

Routes: ``GET /`` the page (``index.html`` beside this file), ``GET /api/info`` limits and model name,
``POST /api/deblur`` the raw bytes of one image (its name in the ``X-Filename`` header), or a multipart form with
one file (``curl -F file=@photo.jpg``) -> JSON with the input and the deblurred result as PNG data URLs, or
``{"error": ...}`` with status 400 (not an image, bad request) / 413 (too large) / 503 (too many requests at
once). Images are decoded and encoded in memory: the server writes no files at all. It listens on localhost
unless told otherwise.

Memory is bounded: ``workers`` threads serve requests (each holds at most one upload, ``max_upload_mb``), at most
``waiting`` more connections wait for one, and any beyond that are answered 503 (by up to ``REFUSERS`` threads that
read and drop the request first, chunk by chunk). Decoding, deblurring
and encoding happen one image at a time, so at most one decoded image (``max_megapixels``, about
``BYTES_PER_PIXEL`` bytes per pixel with its copies and the PNG results) is in memory: peak ~ model + one tile's
network memory + workers x max_upload_mb + BYTES_PER_PIXEL x max_megapixels (4 x 50 MB + 40 MP x 60 B = ~2.6 GB
by default, plus the model and its tile). Measured with the bundled model: 5.4 GB peak while 50 uploads of a 39.7 MP
PNG arrived at once (one decoded and deblurred, 49 waiting as raw bytes), so the model and its 1024-px tile took
~2.8 GB of it.
"""

from __future__ import annotations

import base64
import io
import json
import queue
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import resources
from typing import Any

from PIL import Image

from ..imageio import ImageReadError, ImageTooLargeError, decode_image, to_pil
from ..inference.deblurrer import Deblurrer

# peak memory per pixel of one request (float input/output, 8-bit copies, PNG data URLs): measured 54 B/px between
# a 4 and a 9 MP upload (beyond one tile's network memory), rounded up
BYTES_PER_PIXEL = 60
DISCARD_LIMIT = 64 * 2**20  # an oversized body up to this is read and dropped so that a browser sees the message


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
    about: dict[str, str] | None = None  # what the model is for and its limits, shown on the page

    def __post_init__(self) -> None:
        self._lock = threading.Lock()  # one image at a time through the network

    def info(self) -> dict[str, Any]:
        from .examples import list_examples

        return {"model": self.model_name, "max_upload_mb": self.max_upload_mb, "max_megapixels": self.max_megapixels,
                "about": dict(self.about or {}), "examples": list_examples()}

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
        # decoding too happens under the lock: however many uploads arrive, one decoded image is in memory
        with self._lock:
            try:
                data = decode_image(payload, name, self.max_megapixels)
            except ImageTooLargeError as exc:
                raise ServiceError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"{exc} of this server (start it with a "
                                   "larger --max-megapixels, or use `udeblur deblur`)") from None
            except ImageReadError as exc:
                hint = " (use PNG, JPEG, TIFF, BMP, GIF or WebP)" if "not an image" in exc.problem else ""
                raise ServiceError(HTTPStatus.BAD_REQUEST, f"{exc}{hint}") from None
            start = time.perf_counter()
            out = self.deblurrer.deblur_data(data)
            seconds = time.perf_counter() - start
            h, w = data.size
            before = _png_data_url(to_pil(data.pixels, data.alpha, data.bits))
            after = _png_data_url(to_pil(out.pixels, out.alpha, out.bits))
            del data, out
        return {"name": name, "width": w, "height": h, "seconds": round(seconds, 3), "input": before, "output": after}


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

    def _discard(self, length: int) -> None:
        """Read and drop an oversized body (a client cut off mid-upload shows no message), unless it is so large
        that reading it would cost more than the message is worth."""
        left = length if length <= DISCARD_LIMIT else 0
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
        elif self.path.startswith("/examples/"):
            from .examples import example_bytes

            body = example_bytes(self.path[len("/examples/"):])
            if body is None:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such example: {self.path}"})
            else:
                self._send(HTTPStatus.OK, body, "image/png")
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {self.path}"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/api/deblur":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.path}"})
            return
        name = urllib.parse.unquote(self.headers.get("X-Filename", "upload"))[:200] or "upload"
        try:
            raw_length = self.headers.get("Content-Length")
            if raw_length is None:
                raise ServiceError(HTTPStatus.LENGTH_REQUIRED, "the upload must say its length (Content-Length)")
            try:
                length = int(raw_length)
            except ValueError:
                raise ServiceError(HTTPStatus.BAD_REQUEST, f"bad Content-Length {raw_length[:40]!r}") from None
            if length < 0:
                raise ServiceError(HTTPStatus.BAD_REQUEST, f"bad Content-Length {length}")
            try:
                self.service.check_size(length, name)
            except ServiceError:
                self._discard(length)  # never held in memory; read so that the browser gets the message
                raise
            body = self.rfile.read(length)
            if len(body) < length:
                raise ServiceError(HTTPStatus.BAD_REQUEST, f"{name}: the upload ended early ({len(body)} of "
                                   f"{length} bytes)")
            content_type = self.headers.get("Content-Type", "")
            if content_type.lower().startswith("multipart/form-data"):
                body, name = _form_file(body, content_type, name)
            result = self.service.deblur_bytes(body, name)
        except ServiceError as exc:
            self.close_connection = True
            self._json(exc.status, {"error": str(exc)})
        except TimeoutError:
            self.close_connection = True  # a client that stopped sending: nobody is left to read an answer
        except Exception as exc:  # a bug or out of memory: say so, keep serving
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{name}: {type(exc).__name__}: {exc}"})
        else:
            self._json(HTTPStatus.OK, result)


def _form_file(body: bytes, content_type: str, name: str) -> tuple[bytes, str]:
    """The first file of a multipart/form-data body (``curl -F file=@x.png``) and its file name."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
                                                  + body)
    if message.is_multipart():
        for part in message.iter_parts():
            if part.get_filename() is not None or part.get_param("name", header="content-disposition") in (
                    "file", "image"):
                payload = part.get_payload(decode=True) or b""
                return payload, (part.get_filename() or name)[:200]
    raise ServiceError(HTTPStatus.BAD_REQUEST, "the form holds no file: send the image as a file field "
                       "(curl -F file=@photo.jpg) or as the raw request body")


class _BoundedServer(HTTPServer):
    """A fixed pool of worker threads, a bounded queue of waiting connections, and 503 for any beyond that.

    (ThreadingHTTPServer starts a thread per connection without limit, and its listen backlog of 5 resets
    the connections of a burst.)
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, workers: int, waiting: int):
        self.request_queue_size = max(128, waiting)  # listen backlog: a burst waits in the kernel, not reset
        super().__init__(address, handler)
        self._waiting: queue.Queue = queue.Queue(maxsize=waiting)
        # refusing politely means reading the request first (a client cut off mid-upload sees a reset, not the 503)
        self._refusers = threading.BoundedSemaphore(REFUSERS)
        self._workers = [threading.Thread(target=self._work, daemon=True, name=f"udeblur-serve-{i}")
                         for i in range(workers)]
        for thread in self._workers:
            thread.start()

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        try:
            self._waiting.put_nowait((request, client_address))
        except queue.Full:
            if self._refusers.acquire(blocking=False):
                threading.Thread(target=self._refuse, args=(request, client_address), daemon=True).start()
            else:  # a flood: answer from this thread, at the risk that a client still sending misses the answer
                _refuse_busy(request)
                self.shutdown_request(request)

    def _refuse(self, request: socket.socket, client_address: Any) -> None:
        try:
            _BusyHandler(request, client_address, self)
        except Exception:
            pass  # the client went away; nothing to tell it
        finally:
            self.shutdown_request(request)
            self._refusers.release()

    def _work(self) -> None:
        while True:
            item = self._waiting.get()
            if item is None:
                return
            request, client_address = item
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        for _ in self._workers:
            self._waiting.put(None)


_BUSY = json.dumps({"error": "the server is busy with other uploads; try again in a moment"}).encode()
REFUSERS = 16  # threads that read a refused request (dropping its body chunk by chunk) before answering 503


class _BusyHandler(BaseHTTPRequestHandler):
    """Reads one request, drops its body and answers 503: the answer for connections beyond the queue."""

    timeout = 5

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass

    def _busy(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = 0
        left = length if 0 < length <= DISCARD_LIMIT else 0
        while left > 0 and (chunk := self.rfile.read(min(left, 2**20))):
            left -= len(chunk)
        self.close_connection = True
        self.send_response(HTTPStatus.SERVICE_UNAVAILABLE)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(_BUSY)))
        self.send_header("Retry-After", "2")
        self.end_headers()
        self.wfile.write(_BUSY)

    do_GET = do_POST = _busy  # noqa: N815 (http.server's naming)


def _refuse_busy(request: socket.socket) -> None:
    """Answer 503 without a thread: drop what the client already sent (so closing does not reset the connection
    before the answer is read), reply, and close."""
    try:
        request.setblocking(False)
        try:
            while request.recv(1 << 16):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 2"
                        b"\r\nConnection: close\r\nContent-Length: " + str(len(_BUSY)).encode() + b"\r\n\r\n" + _BUSY)
    except OSError:
        pass  # the client is gone


def make_server(
    service: DeblurService,
    host: str = "127.0.0.1",
    port: int = 8000,
    quiet: bool = True,
    workers: int = 4,
    waiting: int = 64,
    timeout: float = 30.0,
) -> HTTPServer:
    """A ready HTTP server (port 0: any free port; ``server.server_address`` tells which).

    ``workers`` threads serve requests, ``waiting`` more connections may queue for them (503 beyond), and a
    client silent for ``timeout`` seconds is disconnected. See the module docstring for the memory bound.
    """
    if workers < 1 or waiting < 0 or not timeout > 0:
        raise ValueError(f"workers must be >= 1, waiting >= 0 and timeout > 0; got {workers}, {waiting}, {timeout}")
    handler = type("DeblurHandler", (_Handler,), {"service": service, "quiet": quiet, "timeout": timeout})
    return _BoundedServer((host, port), handler, workers, waiting)

"""Reading and writing images with Pillow, for every mode a user is likely to hand us.

Everything inside udeblur works on float32 arrays ``H x W x C`` (C = 1 or 3) in [0, 1]. Reading keeps what is
needed to write the result back in the input's form: the alpha channel and the bit depth.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_write

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".gif"}
)


class ImageReadError(ValueError):
    """An image file that cannot be used. The message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ImageTooLargeError(ImageReadError):
    """An image over a pixel limit (told apart from unreadable files: the fix is a different one)."""


@dataclass
class ImageData:
    pixels: np.ndarray  # float32 H x W x C (C = 1 or 3), values in [0, 1]
    alpha: np.ndarray | None = None  # float32 H x W in [0, 1], or None
    bits: int = 8  # bit depth of the source (8 or 16)
    source_mode: str = "RGB"

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)"""
        return self.pixels.shape[0], self.pixels.shape[1]


def image_from_pil(img: Image.Image, name: str | os.PathLike = "<image>") -> ImageData:
    """Decode any Pillow image mode to float pixels (+ alpha, bit depth)."""
    mode = img.mode
    alpha = None
    bits = 8
    if mode in ("P", "PA"):
        img = img.convert("RGBA")
        mode_after = "RGBA"
    else:
        mode_after = mode
    if mode_after in ("RGBA", "LA", "La", "RGBa"):
        if mode_after in ("La", "RGBa"):  # premultiplied alpha
            img = img.convert("RGBA" if mode_after == "RGBa" else "LA")
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255.0
        img = img.convert("RGB" if mode_after.startswith("RGB") else "L")
        if alpha.min() >= 1.0:
            alpha = None  # an opaque alpha channel carries nothing; do not write it back
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img, dtype=np.float32) / 65535.0
        pixels = arr[..., None]
        bits = 16
    elif img.mode == "I":
        arr = np.asarray(img, dtype=np.float64)
        # 32-bit integer images (often 16-bit PNGs decoded as "I"): scale by the range the values use.
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        if arr.max(initial=0) > 65535 or arr.min(initial=0) < 0:
            raise ImageReadError(name, f"32-bit integer pixel values outside 0..65535 (mode {mode})")
        pixels = (arr / top).astype(np.float32)[..., None]
        bits = 16 if top > 255 else 8
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ImageReadError(name, "floating-point image contains NaN or infinity")
        hi = float(arr.max(initial=0))
        pixels = np.clip(arr / (hi if hi > 1.0 else 1.0), 0, 1)[..., None]
    elif img.mode in ("1", "L"):
        pixels = (np.asarray(img.convert("L"), dtype=np.float32) / 255.0)[..., None]
    elif img.mode == "RGB":
        pixels = np.asarray(img, dtype=np.float32) / 255.0
    elif img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        pixels = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    else:
        try:
            pixels = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        except (ValueError, OSError) as exc:
            raise ImageReadError(name, f"unsupported image mode {mode!r} ({exc})") from exc
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ImageReadError(name, "image has zero width or height")
    return ImageData(np.ascontiguousarray(pixels, dtype=np.float32), alpha, bits, mode)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _is_16bit_colour_png(head: bytes) -> bool:
    # IHDR right after the signature: width, height (4 bytes each), bit depth, colour type (2 RGB, 6 RGBA)
    return head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR" and len(head) > 25 and head[24] == 16 and \
        head[25] in (2, 6)


def _cv2():
    try:
        import cv2
    except ImportError:  # optional: without OpenCV, 16-bit colour is read and written with 8 bits (Pillow)
        return None
    return cv2


def _decode_16bit_colour_png(payload: bytes, name: str | os.PathLike) -> ImageData | None:
    """Pillow reads 16-bit RGB(A) PNGs as 8-bit; OpenCV keeps the 16 bits. None without OpenCV."""
    cv2 = _cv2()
    if cv2 is None:
        return None
    arr = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageReadError(name, "corrupt or truncated 16-bit PNG")
    pixels = arr[..., 2::-1].astype(np.float32) / 65535.0  # OpenCV's BGR(A) -> RGB
    alpha = arr[..., 3].astype(np.float32) / 65535.0 if arr.shape[2] == 4 else None
    if alpha is not None and alpha.min() >= 1.0:
        alpha = None
    return ImageData(np.ascontiguousarray(pixels), alpha, 16, "RGBA" if arr.shape[2] == 4 else "RGB")


def _head(path: str | os.PathLike) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(32)


def decode_image(
    source: str | os.PathLike | bytes, name: str | os.PathLike | None = None, max_megapixels: float | None = None
) -> ImageData:
    """Decode an image file or the bytes of one, upright (EXIF orientation applied), at most ``max_megapixels``.

    Raises ``ImageTooLargeError`` for an image over the limit (checked from the header, before decoding) and
    ``ImageReadError`` for anything else that is not one still image; both name ``name`` (default: the path).
    Animated and multi-page images are refused rather than reduced to their first frame.
    """
    name = name if name is not None else ("<image>" if isinstance(source, bytes) else source)
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning speaks of "decompression bombs"; the check below says what to do
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
                w, h = img.size
                if max_megapixels is not None and w * h > max_megapixels * 1e6:
                    raise ImageTooLargeError(name, f"{w} x {h} px = {w * h / 1e6:.1f} megapixels is over the limit of "
                                             f"{max_megapixels:g} megapixels")
                frames = getattr(img, "n_frames", 1)
                if frames > 1 and img.format != "MPO":  # MPO: a camera JPEG whose extra frames are previews
                    raise ImageReadError(name, f"animated or multi-page image ({frames} frames); only still images "
                                         "are deblurred: extract the frames (e.g. ffmpeg -i IN OUT%04d.png) first")
                if img.format == "PNG":
                    if _is_16bit_colour_png(source[:32] if isinstance(source, bytes) else _head(source)):
                        payload = source if isinstance(source, bytes) else Path(source).read_bytes()
                        data = _decode_16bit_colour_png(payload, name)
                        if data is not None:
                            return data
                img.load()  # decode now: truncated files fail here, not later in a worker
                if img.getexif().get(0x0112, 1) != 1:  # EXIF orientation: cameras store the sensor's way up
                    return image_from_pil(ImageOps.exif_transpose(img), name)
                return image_from_pil(img, name)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(name, f"image too large for Pillow's safety limit ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(name, "not an image file Pillow can read (corrupt or unknown format)") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageReadError(name, f"corrupt or truncated image ({exc})") from exc


def read_image(path: str | os.PathLike, max_megapixels: float | None = None) -> ImageData:
    """Read an image file (see ``decode_image``); a missing, corrupt or truncated file raises ImageReadError naming
    it."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise ImageReadError(path, "broken or looping symbolic link")
    if not path.exists():
        raise ImageReadError(path, "no such file")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image")
    return decode_image(path, path, max_megapixels)


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Convert H x W x C float pixels to 1 (ITU-R 601 luma, as Pillow's "L") or 3 channels."""
    have = pixels.shape[2]
    if have == channels:
        return pixels
    if channels == 3 and have == 1:
        return np.repeat(pixels, 3, axis=2)
    if channels == 1 and have == 3:
        luma = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return luma[..., None].astype(np.float32)
    raise ValueError(f"cannot convert {have} channels to {channels}")


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] or uint8, H x W or H x W x {1, 3, 4} -> contiguous uint8 RGB (alpha dropped, gray replicated).

    What external engines (dlib, OCR) take."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an H x W x C image with C in 1, 3, 4; got shape {arr.shape}")
    arr = arr[..., :3]
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.round(np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise TypeError(f"expected a float image in [0, 1] or uint8, got dtype {arr.dtype}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)


def load_pixels(path: str | os.PathLike, channels: int = 3) -> np.ndarray:
    """Read a file as float32 H x W x channels in [0, 1], flattening alpha onto white."""
    data = read_image(path)
    pixels = data.pixels
    if data.alpha is not None:
        pixels = pixels * data.alpha[..., None] + (1.0 - data.alpha[..., None])
    return to_channels(pixels, channels)


def to_pil(pixels: np.ndarray, alpha: np.ndarray | None = None, bits: int = 8) -> Image.Image:
    """Float pixels (H x W x {1,3} or H x W) in [0, 1] -> Pillow image (L, I;16, RGB, LA or RGBA)."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    pixels = np.clip(np.nan_to_num(pixels), 0.0, 1.0)
    gray = pixels.shape[2] == 1
    if bits == 16 and gray and alpha is None:
        arr = np.round(pixels[..., 0] * 65535.0).astype(np.uint16)
        return Image.fromarray(arr)  # uint16 2-D -> mode "I;16"
    arr8 = np.round(pixels * 255.0).astype(np.uint8)
    img = Image.fromarray(arr8[..., 0]) if gray else Image.fromarray(arr8)
    if alpha is not None:
        img.putalpha(Image.fromarray(np.round(np.clip(alpha, 0, 1) * 255.0).astype(np.uint8), "L"))
    return img


def save_png(
    path: str | os.PathLike,
    pixels: np.ndarray,
    alpha: np.ndarray | None = None,
    bits: int = 8,
    compress_level: int = 6,
) -> None:
    """Write a PNG atomically (a crash never leaves a half-written file under the final name).

    ``compress_level`` 1 writes about twice as fast as the default 6 for ~10% larger files (dataset preparation).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = pixels.ndim == 3 and pixels.shape[2] == 3
    if bits == 16 and colour and (cv2 := _cv2()) is not None:  # Pillow cannot write 16-bit colour
        arr = np.round(np.clip(np.nan_to_num(pixels), 0.0, 1.0) * 65535.0).astype(np.uint16)[..., ::-1]
        if alpha is not None:
            arr = np.dstack([arr, np.round(np.clip(alpha, 0, 1) * 65535.0).astype(np.uint16)])
        ok, encoded = cv2.imencode(".png", np.ascontiguousarray(arr), [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
        if not ok:
            raise OSError(f"{path}: OpenCV could not encode a 16-bit PNG")
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(encoded.tobytes()))
        return
    img = to_pil(pixels, alpha, bits)

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.save(tmp, format="PNG", compress_level=compress_level)

    atomic_write(path, write)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:  # a link that loops onto itself: listed as a file, and reported by name when it is read
        return False


def _walk_images(top: str, recursive: bool, seen: set[tuple[int, int]]):
    st = os.stat(top)
    if (st.st_dev, st.st_ino) in seen:
        return  # a symbolic link back to a folder already listed (a loop would recurse forever)
    seen.add((st.st_dev, st.st_ino))
    # each directory's entries sorted by name, depth-first: the result comes out sorted without a global sort
    with os.scandir(top) as it:
        entries = sorted((e.name, e.path, _is_dir(e)) for e in it if not e.name.startswith("."))
    for name, path, is_dir in entries:
        if is_dir:
            if recursive:
                yield from _walk_images(path, recursive, seen)
        elif os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
            yield path


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files under a folder, sorted. Uses os.scandir: 200K files list in about a second."""
    return [Path(p) for p in _walk_images(os.fspath(folder), recursive, set())]

"""A corpus of bad and awkward inputs for trying commands against: image files, config values and model files.

Each builder writes into a folder and returns the cases it made, with what a command must do with each:
``"ok"`` (handled correctly) or a text that the one-line refusal must contain. Tests run `udeblur deblur`,
`udeblur serve`, `udeblur train` and `udeblur export` against these; a new command should be tried against
them too.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from udeblur.model_files import TRAIN_FORMAT


@dataclass
class Case:
    name: str
    path: Path
    expect: str  # "ok", or a text the refusal names


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def header_only_png(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` and holds a few bytes of data: tiny file, huge image."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))


def png16_rgb(pixels: np.ndarray) -> bytes:
    """A 16-bit RGB PNG of uint16 H x W x 3 pixels (Pillow cannot write one)."""
    h, w, _ = pixels.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), pixels.astype(">u2").view(np.uint8).reshape(h, -1)], axis=1)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes())) + _png_chunk(b"IEND", b""))


def rgb16_pixels() -> np.ndarray:
    return smooth_rgb(16, 20).astype(np.uint16) * 257 + 3  # values 8 bits cannot hold


def smooth_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    """uint8 H x W x 3 with a gradient (so orientation is visible) and a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([255 * y / max(h - 1, 1), 255 * x / max(w - 1, 1), np.full((h, w), 128.0)], axis=2)
    return np.clip(base + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)


def image_cases(folder: Path) -> list[Case]:
    """Bad and awkward image files in ``folder`` (plus a symbolic-link loop)."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(name: str, expect: str, data: bytes | None = None) -> Path:
        path = folder / name
        if data is not None:
            path.write_bytes(data)
        cases.append(Case(name, path, expect))
        return path

    add("empty.png", "not an image", b"")
    add("text.png", "not an image", b"hello, this is not an image\n")
    good = folder / "_good.png"
    Image.fromarray(smooth_rgb(40, 48)).save(good)
    add("truncated.png", "corrupt or truncated", good.read_bytes()[: len(good.read_bytes()) // 2])
    good.unlink()
    add("huge.png", "megapixels", header_only_png(12_000, 10_000))  # 120 MP in 100 bytes
    add("bomb.png", "too large", header_only_png(40_000, 40_000))  # over Pillow's own limit too
    frames = [Image.fromarray(smooth_rgb(24, 32, seed=i)) for i in range(3)]
    frames[0].save(add("animated.gif", "animated"), save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.fromarray(np.full((8, 8), np.nan, dtype=np.float32), mode="F").save(add("nan.tif", "NaN"))
    loop = add("loop.png", "looping symbolic link")
    os.symlink(loop.name, loop)  # a link to itself
    # awkward but valid: each must come out right
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    upright = Image.fromarray(smooth_rgb(40, 24))  # 24 wide, 40 high as displayed
    upright.transpose(Image.Transpose.ROTATE_90).save(add("exif_rotated.jpg", "ok"), quality=95, exif=exif)
    Image.fromarray(smooth_rgb(20, 28)).convert("CMYK").save(add("cmyk.jpg", "ok"), quality=95)
    add("rgb16.png", "ok", png16_rgb(rgb16_pixels()))
    Image.fromarray(smooth_rgb(12, 12)).save(add("jpeg_named.png", "ok"), format="JPEG")
    (folder / "sub").mkdir(exist_ok=True)
    os.symlink("..", folder / "sub" / "up")  # a folder loop: listing must end and list nothing twice
    return cases


def exif_upright_pixels() -> np.ndarray:
    return smooth_rgb(40, 24)


# config overrides: each must be refused by `udeblur train` in one line naming the key
BAD_OVERRIDES = [
    ("loss.kl=.nan", "loss.kl"),
    ("train.lr=.nan", "train.lr"),
    ("train.lr=-1", "train.lr"),
    ("train.lr=0", "train.lr"),
    ("train.lr=.inf", "train.lr"),
    ("train.lr=fast", "train.lr"),
    ("train.checkpoint_every=0", "train.checkpoint_every"),
    ("train.log_every=0", "train.log_every"),
    ("train.sample_every=0", "train.sample_every"),
    ("train.snapshot_every=-1", "train.snapshot_every"),
    ("data.crop_size=100000", "data.crop_size"),
    ("train.grad_clip=.nan", "train.grad_clip"),
    ("train.grad_clip=-1", "train.grad_clip"),
    ("train.beta1=1", "train.beta1"),
    ("model.content_noise=.nan", "model.content_noise"),
    ("loss.cycle=-1", "loss.cycle"),
    ("train.total_steps=0", "train.total_steps"),
    ("data.num_workers=-1", "data.num_workers"),
]
# and these must be accepted, with the value meant
GOOD_OVERRIDES = [("train.lr=2e-4", ("train", "lr", 2e-4)), ("train.lr=1E-3", ("train", "lr", 1e-3)),
                  ("train.total_steps=1e3", ("train", "total_steps", 1000)), ("loss.kl=5e-3", ("loss", "kl", 5e-3))]


def model_cases(folder: Path, good_model: Path, model_cfg_dict: dict) -> list[Case]:
    """Bad model files made from ``good_model`` (an exported .safetensors of the config ``model_cfg_dict``)."""
    folder.mkdir(parents=True, exist_ok=True)
    with safe_open(str(good_model), framework="pt") as fh:
        meta = fh.metadata()
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not a dict)
    cases: list[Case] = []

    def add(name: str, expect: str) -> Path:
        cases.append(Case(name, folder / name, expect))
        return folder / name

    nan = {k: (torch.full_like(v, float("nan")) if v.is_floating_point() else v) for k, v in tensors.items()}
    save_file(nan, str(add("nan.safetensors", "NaN")), metadata=meta)
    for width, name in ((200_000, "huge_width"), (16, "wrong_width")):
        claimed = dict(meta, model_config=json.dumps(dict(model_cfg_dict, width=width)))
        save_file(tensors, str(add(f"{name}.safetensors", "does not match its weights")), metadata=claimed)
    add("truncated.safetensors", "not a readable").write_bytes(good_model.read_bytes()[:100])
    add("random.safetensors", "not a readable").write_bytes(os.urandom(256))
    add("folder.safetensors", "folder").mkdir()
    for name, sidecar, expect in (("empty_sidecar", b"", "no SHA-256"), ("binary_sidecar", b"\xff\xfe\x00\x81" * 8,
                                  "not text"), ("wrong_sidecar", b"0" * 64 + b"  x\n", "SHA-256 mismatch")):
        path = add(f"{name}.safetensors", expect)
        path.write_bytes(good_model.read_bytes())
        Path(str(path) + ".sha256").write_bytes(sidecar)
    path = add("folder_sidecar.safetensors", "not a regular file")
    path.write_bytes(good_model.read_bytes())
    Path(str(path) + ".sha256").mkdir()
    torch.save({"format": TRAIN_FORMAT, "step": 3}, add("no_config.pt", "lacks"))
    torch.save({"format": TRAIN_FORMAT, "step": 3, "config": {"model": model_cfg_dict}}, add("no_weights.pt", "lacks"))
    torch.save({"something": "else"}, add("foreign.pt", "not a udeblur training checkpoint"))
    return cases


def wrong_structure_train_state(cfg) -> dict:
    """A checkpoint that loads (right format, config and step) but holds none of the training state."""
    return {"format": TRAIN_FORMAT, "step": 3, "config": asdict(cfg), "translator": {}}

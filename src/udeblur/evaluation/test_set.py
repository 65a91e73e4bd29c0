"""The paired test set an evaluation runs on: its images, with the true kernels and text where the data has them.

Imports nothing heavy at first (the command line lists the baselines, which take a ``TestItem``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FACE_DATASETS", "TestItem", "is_face_data", "load_test_items", "page_of", "read_text_records"]

# data/prepare/'s dataset kinds (the manifest's "dataset") whose images are faces
FACE_DATASETS = frozenset({"celeba", "cfp"})


@dataclass
class TestItem:
    name: str
    blurred: np.ndarray  # H x W x C float32 [0, 1]
    sharp: np.ndarray
    kernel: np.ndarray | None = None  # true kernel (synthetic data only)
    text: str | None = None  # true visible text (built-in text domain only)
    page: str | None = None  # the page the crop was cut from (built-in text domain): intervals resample pages


def read_text_records(test_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``<test_dir>/text.jsonl`` by image name without suffix (the names of ``per_image.csv``); {} without one.

    The built-in text domain writes ``file``, ``text`` (the visible truth), ``lines``, ``font`` and ``text_height``.
    """
    jsonl = Path(test_dir) / "text.jsonl"
    if not jsonl.exists():
        return {}
    records = {}
    for line in jsonl.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            records[Path(rec["file"]).with_suffix("").as_posix()] = rec
    return records


def page_of(record: dict[str, Any]) -> str | None:
    """A page label for a text record: the crops of one rendered page share its font, text size and lines (the
    domain cuts up to 9 crops a page, alike in font, size, ink and paper, so they are not independent)."""
    if "font" not in record or "text_height" not in record:
        return None
    return json.dumps([record["font"], record["text_height"], record.get("lines", [])])


def load_test_items(data: str | os.PathLike, limit: int | None = None, channels: int = 3) -> list[TestItem]:
    """Paired test images of a data root or test folder, with true kernels/text where the data has them.

    Kernels: ``<test>/kernels/<name>.npy``; text: ``<test>/text.jsonl`` (``file``, ``text``), with ``<test>`` the
    folder holding ``sharp/`` and ``blurred/``. Pairs are matched by file name without suffix.
    """
    from ..data.datasets import PairedDataset, find_test_folders
    from ..imageio import load_pixels

    sharp_dir, blurred_dir = find_test_folders(data)
    ds = PairedDataset((sharp_dir, blurred_dir), channels=channels)
    test_dir = sharp_dir.parent
    records = read_text_records(test_dir)
    texts = {name: rec.get("text", "") for name, rec in records.items()}
    pages = {name: page_of(rec) for name, rec in records.items()}
    names = ds.names if limit is None else ds.names[: max(0, int(limit))]
    items = []
    for name, (sp, bp) in zip(names, ds.pairs, strict=False):
        kpath = test_dir / "kernels" / f"{name}.npy"
        kernel = np.load(kpath) if kpath.exists() else None
        sharp, blurred = load_pixels(sp, channels), load_pixels(bp, channels)
        if sharp.shape != blurred.shape:
            raise ValueError(f"test pair {name!r}: sizes differ ({sp} vs {bp})")
        items.append(TestItem(name, blurred, sharp, kernel, texts.get(name), pages.get(name)))
    if not items:
        raise ValueError(f"{data}: no test images (limit={limit})")
    return items


def is_face_data(data: str | os.PathLike) -> bool:
    """Whether ``data`` was made by ``udeblur data`` from a face dataset (its manifest names CelebA or CFP)."""
    from ..data.datasets import find_test_folders
    from ..data.prepare import MANIFEST

    sharp_dir, _ = find_test_folders(data)
    for folder in (sharp_dir.parent, sharp_dir.parent.parent):  # the test folder, or the data root above it
        manifest = folder / MANIFEST
        if manifest.is_file():
            try:
                return json.loads(manifest.read_text(encoding="utf-8")).get("dataset") in FACE_DATASETS
            except (OSError, ValueError, AttributeError):  # an unreadable manifest says nothing about faces
                return False
    return False

"""Any folder of sharp images."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..blur import BlurConfig
from ..datasets import DatasetError
from .run import check_out, image_sources, run_preparation
from .split import split_sources


def prepare_folder(src: str | os.PathLike, out: str | os.PathLike, seed: int = 0, n_test: int | None = None,
                   n_sharp: int | None = None, n_blurred: int | None = None, test_fraction: float = 0.05,
                   group_by_subfolder: bool = False, channels: int | None = None,
                   blur: BlurConfig | None = None, size: int | None = None, workers: int | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """Any folder of sharp images -> sharp / synthetic-blurred training sets and paired test set.

    Defaults: ``test_fraction`` of the images (at least 1) for test, the rest halved between sharp and
    blurred. ``group_by_subfolder`` keeps each first-level sub-folder (e.g. one person) in one set.
    ``channels`` None keeps each image's own (gray stays gray), 1 or 3 converts. Returns the manifest.
    """
    src, out = Path(src).expanduser(), Path(out).expanduser()
    if not src.is_dir():
        raise DatasetError(f"{src}: no such folder")
    if channels not in (None, 1, 3):
        raise DatasetError(f"channels must be 1, 3 or None, got {channels}")
    check_out(src, out)
    sources = image_sources(src, (lambda rel: rel.split("/", 1)[0]) if group_by_subfolder else None)
    if len(sources) < 3:
        raise DatasetError(f"{src}: {len(sources)} image file(s) found; need at least 3 (test, sharp, blurred)")
    test = n_test if n_test is not None else max(1, round(test_fraction * len(sources)))
    rest = max(0, len(sources) - test)
    sharp = n_sharp if n_sharp is not None else (rest + 1) // 2
    blurred = n_blurred if n_blurred is not None else rest // 2
    notes: list[str] = []
    split = split_sources(sources, seed, sharp, blurred, test, notes=notes)
    return run_preparation("folder", src, out, split, notes, {"train_sharp": sharp, "train_blurred": blurred,
                    "test": test}, seed, blur, size, channels, workers, progress,
                    {"group_by_subfolder": group_by_subfolder})

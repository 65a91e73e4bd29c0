"""Where a data root keeps its images: the accepted layouts, found and checked.

Layouts a data root may have (first match wins)::

    root/train/sharp + root/train/blurred      (what ``udeblur prepare`` writes)
    root/sharp       + root/blurred
    root/trainA      + root/trainB             (CycleGAN style: A = sharp, B = blurred)

plus, optionally, a paired test split ``root/test/{sharp,blurred}`` or ``root/{testA,testB}`` (or
``root/test/{testA,testB}``), matched by relative file name without suffix.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...imageio import IMAGE_SUFFIXES

TRAIN_LAYOUTS = (("train/sharp", "train/blurred"), ("sharp", "blurred"), ("trainA", "trainB"))
TEST_LAYOUTS = (("test/sharp", "test/blurred"), ("testA", "testB"), ("test/testA", "test/testB"))


class DatasetError(ValueError):
    """A data folder or file that cannot be used; the message names it and the problem."""


def _layouts_text() -> str:
    train = ", ".join(f"{a}/ + {b}/" for a, b in TRAIN_LAYOUTS)
    test = ", ".join(f"{a}/ + {b}/" for a, b in TEST_LAYOUTS)
    return f"accepted training layouts: {train}; optional paired test split: {test}"


def _has_image(folder: Path) -> bool:
    """True as soon as one image file is found (an early exit, so huge folders cost nothing here)."""
    stack = [folder]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=True):
                    stack.append(Path(entry.path))
                elif os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES:
                    return True
    return False


@dataclass
class DomainFolders:
    """The folders of one data root. ``test_*`` are None when the root has no paired test split."""

    sharp: Path
    blurred: Path
    test_sharp: Path | None = None
    test_blurred: Path | None = None


def _check_nonempty(folder: Path, what: str) -> None:
    if not _has_image(folder):
        raise DatasetError(
            f"{folder}: the {what} folder has no image files (looked for png, jpg, bmp, tif, webp, ... "
            "in it and its sub-folders)"
        )


def _find_pair(root: Path, layouts: Sequence[tuple[str, str]], what: str) -> tuple[Path, Path] | None:
    """The first layout whose two folders both exist; a half-present layout is an error (likely a typo)."""
    half: list[str] = []
    for a, b in layouts:
        pa, pb = root / a, root / b
        if pa.is_dir() and pb.is_dir():
            return pa, pb
        if pa.is_dir() != pb.is_dir():
            have, missing = (pa, pb) if pa.is_dir() else (pb, pa)
            half.append(f"{have} exists but {missing} does not")
    if half:
        raise DatasetError(f"{root}: incomplete {what} folders: {'; '.join(half)}. {_layouts_text()}")
    return None


def find_domain_folders(root: str | os.PathLike) -> DomainFolders:
    """Locate the sharp/blurred training folders (and the paired test split, if any) under ``root``."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: no such data folder. {_layouts_text()}")
    if not root.is_dir():
        raise DatasetError(f"{root}: is a file, not a data folder. {_layouts_text()}")
    train = _find_pair(root, TRAIN_LAYOUTS, "training")
    if train is None:
        try:
            present = sorted(e.name + "/" for e in os.scandir(root) if e.is_dir())
        except OSError:
            present = []
        raise DatasetError(
            f"{root}: no sharp/blurred training folders found (sub-folders present: {present or 'none'}). "
            f"{_layouts_text()}"
        )
    sharp, blurred = train
    # names written by udeblur.data.prepare: a plan without a manifest is a preparation cut short
    if (root / ".prepare_plan.json").exists() and not (root / "manifest.json").exists():
        warnings.warn(f"{root}: its preparation did not finish (no manifest.json); rerun the same "
                      "`udeblur prepare` command to complete it", stacklevel=2)
    _check_nonempty(sharp, "sharp training")
    _check_nonempty(blurred, "blurred training")
    test = _find_pair(root, TEST_LAYOUTS, "test")
    if test is None:
        return DomainFolders(sharp, blurred)
    _check_nonempty(test[0], "sharp test")
    _check_nonempty(test[1], "blurred test")
    return DomainFolders(sharp, blurred, test[0], test[1])


def find_test_folders(root: str | os.PathLike) -> tuple[Path, Path]:
    """The paired test folders of a data root; ``root`` may also itself hold ``sharp/`` + ``blurred/``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root}: no such data folder")
    pair = _find_pair(root, (*TEST_LAYOUTS, ("sharp", "blurred")), "test")
    if pair is None:
        raise DatasetError(
            f"{root}: no paired test folders found; expected test/sharp/ + test/blurred/, testA/ + testB/, "
            "or a folder that itself holds sharp/ + blurred/"
        )
    _check_nonempty(pair[0], "sharp test")
    _check_nonempty(pair[1], "blurred test")
    return pair

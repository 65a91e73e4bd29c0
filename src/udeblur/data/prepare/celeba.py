"""CelebA: the paper's split (100K sharp, 100K blurred, 2,137 paired test images), identities kept apart."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..blur import BlurConfig
from ..datasets import DatasetError
from .run import check_out, image_sources, run_preparation
from .split import split_sources

# The paper's CelebA split.
CELEBA_SHARP = 100_000
CELEBA_BLURRED = 100_000
CELEBA_TEST = 2_137


def _find_file(src: Path, names: Sequence[str]) -> Path | None:
    for name in names:
        for base in (src, src / "Eval", src / "Anno", src.parent):
            if (base / name).is_file():
                return base / name
    return None


def _read_table(path: Path) -> dict[str, str]:
    """CelebA's 'file value' text tables (list_eval_partition.txt, identity_CelebA.txt)."""
    table: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DatasetError(f"{path}:{lineno}: expected '<file> <value>', got {line!r}")
        table[parts[0]] = parts[1]
    return table


def prepare_celeba(src: str | os.PathLike, out: str | os.PathLike, seed: int = 0, n_sharp: int = CELEBA_SHARP,
                   n_blurred: int = CELEBA_BLURRED, n_test: int = CELEBA_TEST, blur: BlurConfig | None = None,
                   size: int | None = None, workers: int | None = None, use_partition: bool = True,
                   strict_partition: bool = False, progress: bool = True) -> dict[str, Any]:
    """CelebA (``src/img_align_celeba/*.jpg``, or the jpgs directly in ``src``) -> the paper's split.

    100K sharp and 100K blurred training images from different source images and 2,137 paired test images
    by default; fewer available images scale the counts down proportionally (with a warning).
    ``list_eval_partition.txt`` (in ``src``, ``src/Eval`` or beside ``src``), if found and
    ``use_partition``: test images come from partition 2. Training then uses partitions 0/1, topped up
    with unused partition-2 identities if that is needed for the requested counts (CelebA's partitions
    0+1 hold 182,637 images, fewer than 200K) unless ``strict_partition``. ``identity_CelebA.txt``, if
    found, keeps each identity in one set only. ``size`` resizes the shorter side before blurring.
    Returns the manifest.
    """
    src, out = Path(src).expanduser(), Path(out).expanduser()
    root = src / "img_align_celeba" if (src / "img_align_celeba").is_dir() else src
    if not root.is_dir():
        raise DatasetError(f"{src}: no such folder (expected CelebA's img_align_celeba/ or its jpg files)")
    check_out(root, out)
    ident_file = _find_file(src, ["identity_CelebA.txt"])
    ident = _read_table(ident_file) if ident_file else {}
    sources = image_sources(root, lambda rel: "id:" + ident[rel] if rel in ident else rel)
    if not sources:
        raise DatasetError(f"{root}: no image files found (expected CelebA's 000001.jpg, ...)")
    notes: list[str] = []
    part_file = _find_file(src, ["list_eval_partition.txt"]) if use_partition else None
    if part_file:
        part = _read_table(part_file)
        test_pool = [s for s in sources if part.get(s.rel) == "2"]
        train_pool = [s for s in sources if part.get(s.rel) != "2"]
        if ident:  # a test identity must not reappear in training through a partition-0/1 image
            test_ids = {s.group for s in test_pool}
            train_pool = [s for s in train_pool if s.group not in test_ids]
        # Topping training up from the test partition is only safe when identities are known: otherwise the
        # extra images would share identities with the test faces.
        top_up = not strict_partition and bool(ident)
        if not strict_partition and not ident:
            notes.append("no identity_CelebA.txt found: training is NOT topped up from the test partition "
                         "(its identities could not be kept apart from the test faces)")
        split = split_sources(train_pool, seed, n_sharp, n_blurred, n_test, test_pool=test_pool, notes=notes,
                              top_up_from_test_pool=top_up)
    else:
        split = split_sources(sources, seed, n_sharp, n_blurred, n_test, notes=notes)
    extra = {"partition_file": str(part_file) if part_file else None,
             "identity_file": str(ident_file) if ident_file else None}
    return run_preparation("celeba", src, out, split, notes, {"train_sharp": n_sharp, "train_blurred": n_blurred,
                    "test": n_test}, seed, blur, size, 3, workers, progress, extra)

"""CFP (Celebrities in Frontal-Profile): split by subject."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..blur import BlurConfig
from ..datasets import DatasetError
from .run import check_out, image_sources, run_preparation
from .split import ROLES, Source


def _cfp_root(src: Path) -> Path:
    for cand in (src / "Data" / "Images", src / "Images", src):
        if cand.is_dir() and any(p.is_dir() and (p / "frontal").is_dir() for p in cand.iterdir()):
            return cand
    raise DatasetError(f"{src}: not a CFP folder (expected Data/Images/<subject>/frontal|profile/*.jpg)")


def prepare_cfp(src: str | os.PathLike, out: str | os.PathLike, seed: int = 0, n_test_subjects: int = 50,
                views: Sequence[str] = ("frontal", "profile"), blur: BlurConfig | None = None,
                size: int | None = None, workers: int | None = None, progress: bool = True) -> dict[str, Any]:
    """CFP (``Data/Images/<001..500>/{frontal,profile}/*.jpg``) split BY SUBJECT.

    ``n_test_subjects`` subjects (scaled down for fewer than 500 subjects) give the paired test set; the
    remaining subjects are halved between the sharp and the blurred training sets, so the three sets'
    identities are disjoint. Returns the manifest.
    """
    src, out = Path(src).expanduser(), Path(out).expanduser()
    root = _cfp_root(src)
    check_out(root, out)
    sources = [s for s in image_sources(root, lambda rel: rel.split("/", 1)[0])
               if len(s.rel.split("/")) == 3 and s.rel.split("/")[1] in views]
    subjects = sorted({s.group for s in sources})
    if len(subjects) < 3:
        raise DatasetError(f"{root}: {len(subjects)} subject folder(s) with images; need at least 3 "
                           "(test, sharp and blurred identities must differ)")
    notes: list[str] = []
    n_test_subj = n_test_subjects
    if len(subjects) < 500:
        n_test_subj = max(1, round(n_test_subjects * len(subjects) / 500))
        notes.append(f"{len(subjects)} subjects instead of CFP's 500: {n_test_subj} test subjects")
    n_test_subj = min(n_test_subj, len(subjects) - 2)
    order = np.random.default_rng([seed % 2**64, 4]).permutation(len(subjects))
    shuffled = [subjects[k] for k in order]
    rest = shuffled[n_test_subj:]
    half = (len(rest) + 1) // 2
    role_of = {**{s: "test" for s in shuffled[:n_test_subj]}, **{s: "train_sharp" for s in rest[:half]},
               **{s: "train_blurred" for s in rest[half:]}}
    split: dict[str, list[Source]] = {role: [] for role in ROLES}
    for s in sources:
        split[role_of[s.group]].append(s)
    subjects_of = {role: sorted({s.group for s in split[role]}) for role in ROLES}
    return run_preparation("cfp", src, out, split, notes, {"test_subjects": n_test_subjects}, seed, blur, size, 3,
                    workers, progress, {"views": list(views), "subjects": subjects_of})

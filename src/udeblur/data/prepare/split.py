"""The split of a source into test, sharp-training and blurred-training images: a pure function of the sources and
the seed, whole groups (identities) in one set only."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ROLES = ("train_sharp", "train_blurred", "test")


@dataclass(frozen=True)
class Source:
    """One source image: ``rel`` (posix, relative to the image root) names it in outputs and seeds its
    blur; ``group`` is the identity/subject that must not be split across roles."""

    path: str
    rel: str
    group: str


def _scaled(wanted: Sequence[int], available: int, notes: list[str], what: str) -> list[int]:
    """Shrink the wanted counts proportionally when the source has too few images."""
    total = sum(wanted)
    if total <= available:
        return list(wanted)
    factor = available / total
    out = [math.floor(n * factor) for n in wanted]
    # keep every requested set non-empty (a tiny folder still gets a test pair), paid for by the largest
    for i, n in enumerate(wanted):
        if n > 0 and out[i] == 0:
            out[i] = 1
    while sum(out) > available:
        out[out.index(max(out))] -= 1
    notes.append(f"{what}: only {available} images for the {total} requested; counts scaled by "
                 f"{factor:.4f} to {out}")
    return out


def _assign(sources: Sequence[Source], seed: int, salt: int, targets: Sequence[tuple[str, int]]
            ) -> tuple[dict[str, list[Source]], list[Source]]:
    """Deal whole groups, in a seeded random order, into the targets in turn.

    A group never spans two targets (the part of a group that does not fit is left unused), so
    identities are disjoint between roles. Returns the assignment and the untouched groups' sources.
    """
    groups: dict[str, list[Source]] = {}
    for s in sorted(sources, key=lambda s: s.rel):
        groups.setdefault(s.group, []).append(s)
    keys = sorted(groups)
    order = np.random.default_rng([seed % 2**64, salt]).permutation(len(keys))
    out: dict[str, list[Source]] = {name: [] for name, _ in targets}
    t = 0
    unused: list[Source] = []
    for k in order:
        while t < len(targets) and len(out[targets[t][0]]) >= targets[t][1]:
            t += 1
        members = groups[keys[k]]
        if t == len(targets):
            unused.extend(members)
            continue
        name, want = targets[t]
        out[name].extend(members[: want - len(out[name])])
    return out, unused


def split_sources(sources: Sequence[Source], seed: int, n_sharp: int, n_blurred: int, n_test: int,
                  test_pool: Sequence[Source] | None = None, notes: list[str] | None = None,
                  top_up_from_test_pool: bool = True) -> dict[str, list[Source]]:
    """The split as a pure function of the sources and the seed.

    Without ``test_pool`` the test, sharp and blurred sets are dealt from ``sources`` (in that order). With
    it (CelebA's official test partition) the test set comes from ``test_pool`` and training from
    ``sources``, topped up with unused test-pool groups when ``top_up_from_test_pool`` and training is short.
    Counts larger than the images available are scaled down proportionally (recorded in ``notes``).
    """
    notes = [] if notes is None else notes
    if test_pool is None:
        n_test, n_sharp, n_blurred = _scaled([n_test, n_sharp, n_blurred], len(sources), notes, "split")
        split, _ = _assign(sources, seed, 1, [("test", n_test), ("train_sharp", n_sharp),
                                               ("train_blurred", n_blurred)])
    else:
        if n_test > len(test_pool):
            notes.append(f"test: only {len(test_pool)} images in the test partition, {n_test} requested")
            n_test = len(test_pool)
        test, spare = _assign(test_pool, seed, 2, [("test", n_test)])
        pool = list(sources)
        if top_up_from_test_pool and len(pool) < n_sharp + n_blurred and spare:
            extra = spare[: n_sharp + n_blurred - len(pool)]
            pool += extra
            notes.append(f"training: {len(extra)} images taken from unused test-partition identities to reach "
                         "the requested counts (pass strict_partition=True to forbid this)")
        n_sharp, n_blurred = _scaled([n_sharp, n_blurred], len(pool), notes, "training")
        split, _ = _assign(pool, seed, 3, [("train_sharp", n_sharp), ("train_blurred", n_blurred)])
        split["test"] = test["test"]
    for role, want in (("test", n_test), ("train_sharp", n_sharp), ("train_blurred", n_blurred)):
        if len(split[role]) < want:
            notes.append(f"{role}: {len(split[role])} images instead of {want} (whole identities are kept "
                         "in one set, so some were left over)")
    return split

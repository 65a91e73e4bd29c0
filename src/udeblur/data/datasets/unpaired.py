"""Unpaired training data and the step-indexed sampler that makes training resumable.

Reproducibility: a training sample is addressed by ``(sharp_index, blurred_index, aug_seed)``. The sampler
makes these keys as a pure function of ``(seed, step, position)``, and the dataset draws its augmentation
only from ``aug_seed``. What a step sees therefore does not depend on the number of worker processes, on
their scheduling, on global RNG state, or on whether the run was resumed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ...imageio import ImageReadError, load_pixels
from .folders import DatasetError
from .transforms import augment, to_tensor

# More failed reads than this fraction (after a few attempts) means the folder itself is broken.
MAX_BAD_FRACTION = 0.5
_MIN_ATTEMPTS_BEFORE_RATIO = 16
_MAX_SUBSTITUTIONS = 64


class BadImageWarning(UserWarning):
    """An unreadable training image was skipped (another one was used in its place)."""


def _as_paths(files: Sequence[str | os.PathLike]) -> list[str]:
    # Plain strings: cheaper to pickle into worker processes than 200K Path objects.
    return [os.fspath(f) for f in files]


class UnpairedDataset(Dataset):
    """Sharp and blurred images drawn independently; item keys are ``(sharp_index, blurred_index, aug_seed)``.

    ``dataset[(i, j, seed)]`` -> ``{"sharp": C x crop x crop, "blurred": C x crop x crop}`` float32 tensors
    in [-1, 1]. An int key ``k`` means ``(k % n_sharp, k % n_blurred, k)``.

    Images smaller than the crop (after the optional resize) are reflection-padded, not upscaled, so the
    blur keeps its pixel scale. Unreadable or truncated files are skipped with a `BadImageWarning` naming
    them and listed in ``bad_files``; a deterministic substitute (from ``aug_seed``) is used instead. When
    more than half of the reads fail, or a domain has no readable file, a `DatasetError` is raised.

    With worker processes each worker has its own copy of ``bad_files``; set ``report_bad = True`` to
    also put the names in every item under ``"bad_files"`` (a newline-joined string) so the main process
    can collect them (`make_train_loader` does this).
    """

    def __init__(self, sharp_files: Sequence[str | os.PathLike], blurred_files: Sequence[str | os.PathLike],
                 crop_size: int, load_size: int = 0, flip: bool = True, channels: int = 3):
        if channels not in (1, 3):
            raise DatasetError(f"channels must be 1 or 3, got {channels}")
        if crop_size < 1:
            raise DatasetError(f"crop_size must be >= 1, got {crop_size}")
        self.files = {"sharp": _as_paths(sharp_files), "blurred": _as_paths(blurred_files)}
        for domain, files in self.files.items():
            if not files:
                raise DatasetError(f"no {domain} training images given")
        self.crop_size = int(crop_size)
        self.load_size = int(load_size)
        self.flip = bool(flip)
        self.channels = int(channels)
        self.report_bad = False
        self.bad_files: list[str] = []
        self._bad: dict[str, set[int]] = {"sharp": set(), "blurred": set()}
        self._reads = 0
        self._failures = 0

    @property
    def n_sharp(self) -> int:
        return len(self.files["sharp"])

    @property
    def n_blurred(self) -> int:
        return len(self.files["blurred"])

    def __len__(self) -> int:
        return max(self.n_sharp, self.n_blurred)

    def __getitem__(self, key: int | tuple[int, int, int]) -> dict[str, torch.Tensor | str]:
        if isinstance(key, (tuple, list)):
            i, j, aug_seed = (int(k) for k in key)
        else:
            i, j, aug_seed = int(key) % self.n_sharp, int(key) % self.n_blurred, int(key)
        # Two independent sub-streams of the one seed: the sharp crop never shifts the blurred one.
        rng_s, rng_b = np.random.default_rng(aug_seed % 2**64).spawn(2)
        before = len(self.bad_files)
        item: dict[str, torch.Tensor | str] = {
            "sharp": to_tensor(self._sample("sharp", i, rng_s, aug_seed)),
            "blurred": to_tensor(self._sample("blurred", j, rng_b, aug_seed)),
        }
        if self.report_bad:
            item["bad_files"] = "\n".join(self.bad_files[before:])
        return item

    def _sample(self, domain: str, index: int, rng: np.random.Generator, aug_seed: int) -> np.ndarray:
        files, bad = self.files[domain], self._bad[domain]
        n = len(files)
        index %= n
        # Substitutes come from their own stream so the augmentation draws stay the same sequence.
        sub_rng = np.random.default_rng([aug_seed % 2**64, 0 if domain == "sharp" else 1, 0x5B5])
        for _ in range(_MAX_SUBSTITUTIONS):
            if index not in bad:
                pixels = self._read(domain, index)
                if pixels is not None:
                    return augment(pixels, rng, self.crop_size, self.load_size, self.flip)
            if len(bad) >= n:
                raise DatasetError(f"none of the {n} {domain} images could be read (e.g. {files[index]})")
            index = int(sub_rng.integers(n))
        raise DatasetError(
            f"{_MAX_SUBSTITUTIONS} {domain} images in a row could not be read (last: {files[index]}); "
            f"{len(bad)} of {n} are bad"
        )

    def _read(self, domain: str, index: int) -> np.ndarray | None:
        path = self.files[domain][index]
        self._reads += 1
        try:
            return load_pixels(path, self.channels)
        except (ImageReadError, OSError) as exc:
            self._failures += 1
            self._bad[domain].add(index)
            self.bad_files.append(path)
            warnings.warn(f"skipping unreadable {domain} training image {exc}", BadImageWarning, stacklevel=3)
            if self._reads >= _MIN_ATTEMPTS_BEFORE_RATIO and self._failures > MAX_BAD_FRACTION * self._reads:
                raise DatasetError(
                    f"{self._failures} of {self._reads} image reads failed (last: {path}); the data "
                    "folders look broken, check them (e.g. with `python -m PIL` or an image viewer)"
                ) from exc
            return None


class UnpairedStepSampler:
    """Infinite batch sampler: the keys of step ``t`` are a pure function of ``(seed, t)``.

    An "epoch" is ``max(n_sharp, n_blurred) // global_batch`` steps (at least one) with
    ``global_batch = batch_size * world_size``. Each epoch draws independent permutations of the sharp and
    of the blurred indices (chained when a domain is smaller than the epoch needs), so sharp and blurred
    are never paired up in a fixed way. Each sample's ``aug_seed`` comes from ``(seed, t, position)``.
    Rank ``r`` gets positions ``[r * batch_size, (r + 1) * batch_size)`` of the global batch, so the
    union over ranks is exactly the single-process batch of size ``batch_size * world_size``.

    With ``unpaired_batch`` u > 0 (``train.unpaired_batch``, global) every rank's first u / world_size keys come from
    the first u of the global batch, so the unpaired terms, which use only those, see the single-process images.

    The DataLoader pre-fetches, so this object runs ahead of training; the trainer counts the steps it
    actually used and passes that as ``start_step`` when resuming.
    """

    def __init__(self, n_sharp: int, n_blurred: int, batch_size: int, seed: int, start_step: int = 0,
                 rank: int = 0, world_size: int = 1, unpaired_batch: int = 0):
        if n_sharp < 1 or n_blurred < 1:
            raise DatasetError(f"need at least one image per domain (sharp: {n_sharp}, blurred: {n_blurred})")
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size or start_step < 0:
            raise ValueError(
                f"bad sampler arguments: batch_size={batch_size}, rank={rank}, world_size={world_size}, "
                f"start_step={start_step}"
            )
        self.n_sharp, self.n_blurred = int(n_sharp), int(n_blurred)
        self.batch_size, self.rank, self.world_size = int(batch_size), int(rank), int(world_size)
        self.seed = int(seed) % 2**64  # SeedSequence wants non-negative entropy
        self.start_step = int(start_step)
        self.global_batch = self.batch_size * self.world_size
        if unpaired_batch % self.world_size or not 0 <= unpaired_batch <= self.global_batch:
            raise ValueError(f"bad sampler arguments: unpaired_batch={unpaired_batch} for a global batch of "
                             f"{self.global_batch} on {self.world_size} process(es)")
        self.unpaired_batch = int(unpaired_batch)
        self.steps_per_epoch = max(1, max(self.n_sharp, self.n_blurred) // self.global_batch)
        self._cache: tuple[int, np.ndarray, np.ndarray] | None = None

    def _order(self, n: int, epoch: int, domain: int) -> np.ndarray:
        need = self.steps_per_epoch * self.global_batch
        rng = np.random.default_rng([self.seed, epoch, domain])
        reps = -(-need // n)
        return np.concatenate([rng.permutation(n) for _ in range(reps)])[:need]

    def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, self._order(self.n_sharp, epoch, 0), self._order(self.n_blurred, epoch, 1))
        return self._cache[1], self._cache[2]

    def global_keys(self, step: int) -> list[tuple[int, int, int]]:
        """All ``global_batch`` keys of a step (every rank's share, in rank order)."""
        epoch, pos = divmod(int(step), self.steps_per_epoch)
        sharp, blurred = self._epoch(epoch)
        lo, hi = pos * self.global_batch, (pos + 1) * self.global_batch
        aug = np.random.default_rng([self.seed, int(step), 2]).integers(0, 2**63 - 1, size=self.global_batch)
        return [(int(s), int(b), int(a)) for s, b, a in zip(sharp[lo:hi], blurred[lo:hi], aug, strict=True)]

    def batch(self, step: int) -> list[tuple[int, int, int]]:
        """This rank's keys for ``step``."""
        keys = self.global_keys(step)
        if self.unpaired_batch and self.world_size > 1:
            u, r = self.unpaired_batch // self.world_size, self.rank
            rest = self.batch_size - u
            first, other = keys[: self.unpaired_batch], keys[self.unpaired_batch :]
            return first[r * u:(r + 1) * u] + other[r * rest:(r + 1) * rest]
        return keys[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        step = self.start_step
        while True:
            yield self.batch(step)
            step += 1

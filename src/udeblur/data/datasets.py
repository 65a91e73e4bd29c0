"""Unpaired training data, paired test data, and the step-indexed sampler that makes training resumable.

Layouts a data root may have (first match wins)::

    root/train/sharp + root/train/blurred      (what ``udeblur prepare`` writes)
    root/sharp       + root/blurred
    root/trainA      + root/trainB             (CycleGAN style: A = sharp, B = blurred)

plus, optionally, a paired test split ``root/test/{sharp,blurred}`` or ``root/{testA,testB}`` (or
``root/test/{testA,testB}``), matched by relative file name without suffix.

Reproducibility: a training sample is addressed by ``(sharp_index, blurred_index, aug_seed)``. The sampler
makes these keys as a pure function of ``(seed, step, position)``, and the dataset draws its augmentation
only from ``aug_seed``. What a step sees therefore does not depend on the number of worker processes, on
their scheduling, on global RNG state, or on whether the run was resumed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..config import ExperimentConfig
from ..imageio import IMAGE_SUFFIXES, ImageReadError, list_images, load_pixels

TRAIN_LAYOUTS = (("train/sharp", "train/blurred"), ("sharp", "blurred"), ("trainA", "trainB"))
TEST_LAYOUTS = (("test/sharp", "test/blurred"), ("testA", "testB"), ("test/testA", "test/testB"))

# More failed reads than this fraction (after a few attempts) means the folder itself is broken.
MAX_BAD_FRACTION = 0.5
_MIN_ATTEMPTS_BEFORE_RATIO = 16
_MAX_SUBSTITUTIONS = 64


class DatasetError(ValueError):
    """A data folder or file that cannot be used; the message names it and the problem."""


class BadImageWarning(UserWarning):
    """An unreadable training image was skipped (another one was used in its place)."""


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


# --------------------------------------------------------------------------------------------- folders


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


# ---------------------------------------------------------------------------------------- augmentation


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """float32 H x W x C in [0, 1] -> C x H x W tensor in [-1, 1] (what the networks see)."""
    chw = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(chw).mul_(2.0).sub_(1.0)


def resize_shorter(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is ``size``, keeping aspect ratio (Pillow bicubic, antialiased when
    shrinking). Works per channel in float ("F" mode), so 16-bit sources keep their precision."""
    h, w = pixels.shape[:2]
    if min(h, w) == size:
        return pixels
    if h <= w:
        new_h, new_w = size, max(1, round(w * size / h))
    else:
        new_h, new_w = max(1, round(h * size / w)), size
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(pixels[..., c])).resize(
                (new_w, new_h), Image.Resampling.BICUBIC
            )
        )
        for c in range(pixels.shape[2])
    ]
    # bicubic overshoots a little at edges; keep the [0, 1] contract
    return np.clip(np.stack(channels, axis=2), 0.0, 1.0).astype(np.float32)


def pad_to(pixels: np.ndarray, size: int) -> np.ndarray:
    """Reflection-pad (centred) so both sides are at least ``size``.

    Padding rather than upscaling keeps the pixel scale of the blur: a 15 px shake stays a 15 px shake,
    which is what the domain's blur statistics are about. numpy's "reflect" repeats the reflection when
    the pad is wider than the image, so any size works.
    """
    h, w = pixels.shape[:2]
    ph, pw = max(0, size - h), max(0, size - w)
    if ph == 0 and pw == 0:
        return pixels
    mode = "reflect" if min(h, w) > 1 else "edge"  # reflection of a 1-pixel line is undefined
    return np.pad(pixels, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode=mode)


def augment(pixels: np.ndarray, rng: np.random.Generator, crop_size: int, load_size: int = 0,
            flip: bool = True) -> np.ndarray:
    """The paper's augmentation: shorter side to ``load_size`` (if > 0), random crop, random h-flip.

    Draws exactly three numbers from ``rng`` (y, x, flip) in that order, so the stream is stable.
    """
    if load_size > 0:
        pixels = resize_shorter(pixels, load_size)
    pixels = pad_to(pixels, crop_size)
    h, w = pixels.shape[:2]
    y = int(rng.integers(0, h - crop_size + 1))
    x = int(rng.integers(0, w - crop_size + 1))
    do_flip = bool(rng.random() < 0.5)
    out = pixels[y:y + crop_size, x:x + crop_size]
    if flip and do_flip:
        out = out[:, ::-1]
    return out


# --------------------------------------------------------------------------------------------- datasets


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


class PairedDataset(Dataset):
    """Aligned test pairs at full size, matched by relative file name without suffix.

    ``root_or_folders``: a data root (see `find_test_folders`), a `DomainFolders` with a test split, or
    a ``(sharp_dir, blurred_dir)`` tuple. Items: ``{"sharp": C x H x W, "blurred": C x H x W, "name": str}``
    with tensors in [-1, 1]. Unlike training, an unreadable test file raises (skipping would silently
    change the metrics).
    """

    def __init__(self, root_or_folders: str | os.PathLike | DomainFolders | tuple[Path, Path],
                 channels: int = 3):
        if channels not in (1, 3):
            raise DatasetError(f"channels must be 1 or 3, got {channels}")
        if isinstance(root_or_folders, DomainFolders):
            if root_or_folders.test_sharp is None or root_or_folders.test_blurred is None:
                raise DatasetError(f"{root_or_folders.sharp.parent}: the data root has no paired test split")
            sharp_dir, blurred_dir = root_or_folders.test_sharp, root_or_folders.test_blurred
        elif isinstance(root_or_folders, tuple):
            sharp_dir, blurred_dir = (Path(p) for p in root_or_folders)
            for folder in (sharp_dir, blurred_dir):
                if not folder.is_dir():
                    raise DatasetError(f"{folder}: no such test folder")
        else:
            sharp_dir, blurred_dir = find_test_folders(root_or_folders)
        self.sharp_dir, self.blurred_dir = sharp_dir, blurred_dir
        self.channels = channels
        sharp = self._index(sharp_dir)
        blurred = self._index(blurred_dir)
        only_s = sorted(set(sharp) - set(blurred))
        only_b = sorted(set(blurred) - set(sharp))
        if only_s or only_b:
            parts = []
            if only_s:
                parts.append(f"{len(only_s)} only in {sharp_dir} (e.g. {', '.join(only_s[:5])})")
            if only_b:
                parts.append(f"{len(only_b)} only in {blurred_dir} (e.g. {', '.join(only_b[:5])})")
            raise DatasetError("test pairs do not match by file name: " + "; ".join(parts))
        self.names = sorted(sharp)
        self.pairs = [(sharp[k], blurred[k]) for k in self.names]

    @staticmethod
    def _index(folder: Path) -> dict[str, str]:
        out: dict[str, str] = {}
        for path in list_images(folder):
            name = path.relative_to(folder).with_suffix("").as_posix()
            if name in out:
                raise DatasetError(f"{folder}: two files for test image {name!r}: {out[name]} and {path}")
            out[name] = str(path)
        if not out:
            raise DatasetError(f"{folder}: the test folder has no image files")
        return out

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        sharp_path, blurred_path = self.pairs[index]
        try:
            sharp = load_pixels(sharp_path, self.channels)
            blurred = load_pixels(blurred_path, self.channels)
        except ImageReadError as exc:
            raise DatasetError(f"unreadable test image {exc}") from exc
        if sharp.shape != blurred.shape:
            raise DatasetError(
                f"test pair {self.names[index]!r} differs in size: {sharp_path} is "
                f"{sharp.shape[1]}x{sharp.shape[0]}, {blurred_path} is {blurred.shape[1]}x{blurred.shape[0]}"
            )
        return {"sharp": to_tensor(sharp), "blurred": to_tensor(blurred), "name": self.names[index]}


# ---------------------------------------------------------------------------------------------- sampler


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


# ----------------------------------------------------------------------------------------------- loader


class TrainLoader(DataLoader):
    """A DataLoader that gathers the worker processes' skipped-file reports into ``dataset.bad_files``."""

    def __iter__(self) -> Iterator[dict]:  # type: ignore[override]
        dataset = self.dataset
        for batch in super().__iter__():
            reports = batch.pop("bad_files", None)
            if reports and self.num_workers > 0 and isinstance(dataset, UnpairedDataset):
                seen = set(dataset.bad_files)
                for text in reports:
                    for name in filter(None, text.split("\n")):
                        if name not in seen:
                            seen.add(name)
                            dataset.bad_files.append(name)
            yield batch


def _wants_cuda(device: str) -> bool:
    return device != "cpu" and (device == "auto" or device.startswith("cuda")) and torch.cuda.is_available()


def make_train_loader(cfg: ExperimentConfig, start_step: int = 0, rank: int = 0,
                      world_size: int = 1, unpaired_batch: int = 0) -> tuple[DataLoader, UnpairedDataset]:
    """The infinite training loader of ``cfg`` (one batch per step, starting at ``start_step``); ``cfg``'s batch is
    this process's share, ``unpaired_batch`` the global ``train.unpaired_batch``."""
    if cfg.data.root is None:
        raise DatasetError("no data.root given: set data.root to a folder with sharp/ and blurred/ images")
    folders = find_domain_folders(cfg.data.root)
    blurred_folder = Path(cfg.data.blurred).expanduser() if cfg.data.blurred else folders.blurred
    if not blurred_folder.is_dir():
        raise DatasetError(f"{blurred_folder}: data.blurred is not a folder; give a folder of blurred images")
    sharp, blurred = list_images(folders.sharp), list_images(blurred_folder)
    for folder, files in ((folders.sharp, sharp), (blurred_folder, blurred)):
        if not files:
            raise DatasetError(f"{folder}: the training folder has no image files")
    dataset = UnpairedDataset(sharp, blurred, crop_size=cfg.data.crop_size, load_size=cfg.data.load_size,
                              flip=cfg.data.flip, channels=cfg.model.channels)
    workers = max(0, int(cfg.data.num_workers))
    dataset.report_bad = workers > 0
    sampler = UnpairedStepSampler(len(sharp), len(blurred), cfg.train.batch_size, cfg.train.seed,
                                  start_step=start_step, rank=rank, world_size=world_size,
                                  unpaired_batch=unpaired_batch)
    # Own generator: DataLoader would otherwise draw the workers' base seed from the global torch RNG,
    # shifting the training RNG stream (the samples themselves never use worker seeds).
    loader = TrainLoader(dataset, batch_sampler=sampler, num_workers=workers,
                         persistent_workers=workers > 0, pin_memory=_wants_cuda(cfg.train.device),
                         generator=torch.Generator().manual_seed(cfg.train.seed))
    return loader, dataset


__all__ = [
    "BadImageWarning",
    "DatasetError",
    "DomainFolders",
    "PairedDataset",
    "TrainLoader",
    "UnpairedDataset",
    "UnpairedStepSampler",
    "augment",
    "find_domain_folders",
    "find_test_folders",
    "make_train_loader",
    "pad_to",
    "resize_shorter",
    "to_tensor",
]

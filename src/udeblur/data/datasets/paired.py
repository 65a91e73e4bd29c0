"""Paired test data: aligned sharp/blurred images at full size."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ...imageio import ImageReadError, list_images, load_pixels
from .folders import DatasetError, DomainFolders, find_test_folders
from .transforms import to_tensor


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

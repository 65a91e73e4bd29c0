"""The infinite training loader of an experiment: its folders, the unpaired dataset, the step sampler."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ...config import ExperimentConfig
from ...imageio import list_images
from .folders import DatasetError, find_domain_folders
from .unpaired import UnpairedDataset, UnpairedStepSampler


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

"""Unpaired training data, paired test data, and the step-indexed sampler that makes training resumable.

Modules: folders.py (the layouts a data root may have, DatasetError), transforms.py (resize, pad, the paper's
augmentation, tensors), unpaired.py (UnpairedDataset and UnpairedStepSampler: what a step sees is a pure function
of the seed and the step), paired.py (PairedDataset), loader.py (make_train_loader).
"""

from __future__ import annotations

from .folders import TEST_LAYOUTS, TRAIN_LAYOUTS, DatasetError, DomainFolders, find_domain_folders, find_test_folders
from .loader import TrainLoader, make_train_loader
from .paired import PairedDataset
from .transforms import augment, pad_to, resize_shorter, to_tensor
from .unpaired import MAX_BAD_FRACTION, BadImageWarning, UnpairedDataset, UnpairedStepSampler

__all__ = [
    "MAX_BAD_FRACTION",
    "TEST_LAYOUTS",
    "TRAIN_LAYOUTS",
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

"""Turn a downloaded dataset into the unpaired layout the trainer reads.

Every preparation writes::

    out/train/sharp/...        sharp training images (PNG)
    out/train/blurred/...      blurred training images, synthesised from OTHER source images (PNG)
    out/test/sharp/...         paired test set: the sharp image ...
    out/test/blurred/...       ... and its synthetic blur, same name and size
    out/test/kernels/....npy   the blur kernel of each test pair
    out/manifest.json          what was made from what, counts, skipped files, parameters

Determinism: the split is a pure function of the sorted source list (plus CelebA's partition/identity
files when present) and the seed; each image's blur is seeded by ``(seed, its relative path)``, never by
processing order, so worker count and interruptions change nothing.

Resuming: outputs are written atomically and an item whose outputs all exist is skipped, so rerunning an
interrupted preparation finishes it with identical files. ``out/.prepare_plan.json`` records the plan; a
rerun with different parameters into the same folder is refused rather than mixing two splits.

Modules: split.py (the split, Source), run.py (outputs, blur seeds, workers, plan, manifest), and one module per
source format: celeba.py, cfp.py, folder.py.
"""

from __future__ import annotations

from .celeba import CELEBA_BLURRED, CELEBA_SHARP, CELEBA_TEST, prepare_celeba
from .cfp import prepare_cfp
from .folder import prepare_folder
from .run import FORMAT, MANIFEST, PLAN
from .split import ROLES, Source, split_sources

__all__ = [
    "CELEBA_BLURRED",
    "CELEBA_SHARP",
    "CELEBA_TEST",
    "FORMAT",
    "MANIFEST",
    "PLAN",
    "ROLES",
    "Source",
    "prepare_celeba",
    "prepare_cfp",
    "prepare_folder",
    "split_sources",
]

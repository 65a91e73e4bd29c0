"""Inference: deblur images of any size and mode with a trained model (``Deblurrer``).

Names are imported on first use, so ``udeblur.inference.pretrained`` (read by the CLI for its help texts) does not
load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DeblurBatchError": "udeblur.inference.deblurrer",
    "Deblurrer": "udeblur.inference.deblurrer",
    "plan_outputs": "udeblur.inference.deblurrer",
    "resolve_device": "udeblur.inference.deblurrer",
    "load_pretrained": "udeblur.inference.deblurrer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'udeblur.inference' has no attribute {name!r}")

"""Inference: deblur images of any size and mode with a trained model (``Deblurrer``).

Names are imported on first use, so ``udeblur.inference.pretrained`` (read by the CLI for its help texts) does not
load torch.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "DeblurBatchError": "udeblur.inference.folders",
    "Deblurrer": "udeblur.inference.deblurrer",
    "plan_outputs": "udeblur.inference.folders",
    "resolve_device": "udeblur.device",
    "load_pretrained": "udeblur.inference.deblurrer",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

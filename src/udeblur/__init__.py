"""udeblur: unsupervised domain-specific deblurring via disentangled representations (Lu et al., CVPR 2019).

    import udeblur
    sharp = udeblur.load_pretrained("text")("blurred.png")          # the bundled text model, PIL image out
    sharp = udeblur.Deblurrer.from_checkpoint("runs/small/deblur.safetensors")("blurred.png")

    from udeblur import Trainer, load_config
    Trainer(load_config("small", ["data.root=my_data"]), "runs/small").fit()
"""

from __future__ import annotations

from .lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module; imported on first use so `import udeblur` stays cheap and one module's
# problem does not break the others
_EXPORTS = {
    "ExperimentConfig": "udeblur.config",
    "ModelConfig": "udeblur.config",
    "LossConfig": "udeblur.config",
    "DataConfig": "udeblur.config",
    "TrainConfig": "udeblur.config",
    "load_config": "udeblur.config",
    "Translator": "udeblur.model",
    "DeblurNet": "udeblur.model",
    "Discriminators": "udeblur.model",
    "Trainer": "udeblur.training.trainer",
    "train": "udeblur.training.trainer",
    "Deblurrer": "udeblur.inference.deblurrer",
    "load_pretrained": "udeblur.inference.deblurrer",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

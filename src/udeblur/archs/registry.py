"""The generator registry: ``model.generator`` names the content encoders + generators pair by type.

An entry builds ``(content_encoders, generators)`` from a ``ModelConfig``; the encoder/blur encoder/discriminator
wiring and every loss stay in ``model.py`` and ``training/``. The pair must offer the API of DRIT's modules:

* content encoders: ``encode_sharp(s)``, ``encode_blurred(b)``, ``sharp``, ``blurred``, ``shared``,
  ``blurred_last`` (the shared last layer, or the blurred encoder's own), ``out_channels``; ``blurred`` has
  ``size_multiple`` when inputs must be padded to more than 4;
* generators: ``to_sharp(c, z, src)``, ``to_blurred(c, z, src)``, ``shared``, ``sharp``, ``blurred`` (each branch
  has ``latent``); optionally ``reset_parameters()``, called after the model-wide N(0, std) init.

A new generator is one file in ``archs/`` plus one ``register_generator`` line (here, or in your own code before
building a model). The registry is an explicit dict: nothing is discovered by importing or scanning modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from ..config import ModelConfig

GeneratorBuilder = Callable[["ModelConfig"], tuple[nn.Module, nn.Module]]
_GENERATORS: dict[str, GeneratorBuilder] = {}


def register_generator(name: str, builder: GeneratorBuilder, replace: bool = False) -> None:
    """Make ``model.generator: <name>`` build ``builder(model_cfg) -> (content_encoders, generators)``."""
    if name in _GENERATORS and not replace:
        raise ValueError(f"generator type {name!r} is already registered")
    _GENERATORS[name] = builder


def generator_types() -> tuple[str, ...]:
    return tuple(sorted(_GENERATORS))


def build_generator(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    try:
        builder = _GENERATORS[cfg.generator]
    except KeyError:
        raise ValueError(f"model.generator: unknown type {cfg.generator!r}; known: {list(generator_types())}") from None
    return builder(cfg)


def _drit(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """DRIT's (the paper's): stride-2 conv encoder with InstanceNorm residual blocks; z concatenated."""
    from .content_encoder import ContentEncoders
    from .generator import Generators

    content = ContentEncoders(cfg.channels, cfg.width, cfg.content_res_blocks, cfg.content_noise,
                              share=cfg.shared_content)
    gen = Generators(content.out_channels, cfg.blur_latent, cfg.channels, cfg.gen_res_blocks, cfg.global_skip,
                     cfg.source_skips)
    return content, gen


def _nafnet(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """NAFNet-style U-Net (archs/nafnet.py): ``width`` at full resolution, 3 levels; ``content_res_blocks`` /
    ``gen_res_blocks`` NAF blocks per encoder / decoder level."""
    from .nafnet import NAFContentEncoders, NAFGenerators

    content = NAFContentEncoders(cfg.channels, cfg.width, 3, cfg.content_res_blocks, cfg.content_noise,
                                 share=cfg.shared_content)
    gen = NAFGenerators(cfg.channels, cfg.width, 3, cfg.blur_latent, cfg.gen_res_blocks, cfg.global_skip)
    return content, gen


register_generator("drit", _drit)
register_generator("nafnet", _nafnet)

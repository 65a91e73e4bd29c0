"""The generator registry: ``model.generator`` names the content encoders + generators pair by type.

An entry builds ``(content_encoders, generators)`` from a ``ModelConfig``; the encoder/blur encoder/discriminator
wiring and every loss stay in ``model.py`` and ``training/``. The pair must offer the API of DRIT's modules:

* content encoders: ``encode_sharp(s)``, ``encode_blurred(b)``, ``sharp``, ``blurred``, ``shared``,
  ``blurred_last`` (the shared last layer, or the blurred encoder's own), ``out_channels``; ``blurred`` has
  ``size_multiple`` when inputs must be padded to more than 4;
* generators: ``to_sharp(c, z, src)``, ``to_blurred(c, z, src)``, ``shared``, ``sharp``, ``blurred`` (each branch
  has ``latent``).
Either may have ``reset_parameters()``, called after the model-wide N(0, std) init.

A new generator is one file in ``archs/`` plus one ``register_generator`` line here (or in your own code before
building a model; then only processes that ran it know the type). The registry is an explicit dict: nothing is
discovered by importing or scanning modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from ..config import ModelConfig


@dataclass(frozen=True)
class GeneratorType:
    """How to build one generator type. Two builders, because the model builds content encoders, then the blur
    encoder, then the generators: that order fixes every preset's initial weights for a given seed."""

    content: Callable[[ModelConfig], nn.Module]  # -> content encoders
    generators: Callable[[ModelConfig, nn.Module], nn.Module]  # (cfg, content encoders) -> generators
    size_multiple: Callable[[ModelConfig], int] = lambda cfg: 4  # inputs are padded to a multiple of this


_GENERATORS: dict[str, GeneratorType] = {}


def register_generator(name: str, kind: GeneratorType, replace: bool = False) -> None:
    """Make ``model.generator: <name>`` build ``kind``. Registered in your own code, it exists in that process only:
    a model file of that type loads where the same registration has run."""
    if name in _GENERATORS and not replace:
        raise ValueError(f"generator type {name!r} is already registered")
    _GENERATORS[name] = kind


def unregister_generator(name: str) -> None:
    _GENERATORS.pop(name, None)


def generator_types() -> tuple[str, ...]:
    return tuple(sorted(_GENERATORS))


def generator_type(name: str) -> GeneratorType:
    try:
        return _GENERATORS[name]
    except KeyError:
        raise ValueError(f"model.generator: unknown type {name!r}; known: {list(generator_types())}") from None


def _drit_content(cfg: ModelConfig) -> nn.Module:
    from .content_encoder import ContentEncoders

    return ContentEncoders(cfg.channels, cfg.width, cfg.content_res_blocks, cfg.content_noise,
                           share=cfg.shared_content)


def _drit_generators(cfg: ModelConfig, content: nn.Module) -> nn.Module:
    from .generator import Generators

    return Generators(content.out_channels, cfg.blur_latent, cfg.channels, cfg.gen_res_blocks, cfg.global_skip)


def _nafnet_content(cfg: ModelConfig) -> nn.Module:
    from .nafnet import NAFContentEncoders

    return NAFContentEncoders(cfg.channels, cfg.width, NAF_LEVELS, cfg.content_res_blocks, cfg.content_noise,
                              share=cfg.shared_content)


def _nafnet_generators(cfg: ModelConfig, content: nn.Module) -> nn.Module:
    from .nafnet import NAFGenerators

    return NAFGenerators(cfg.channels, cfg.width, NAF_LEVELS, cfg.blur_latent, cfg.gen_res_blocks, cfg.global_skip)


NAF_LEVELS = 3  # downsampling levels of the NAFNet U-Net: 16-32-64 at width 16, a 128-channel bottleneck

# DRIT's (the paper's): stride-2 conv encoder with InstanceNorm residual blocks, z concatenated
register_generator("drit", GeneratorType(_drit_content, _drit_generators))
# NAFNet-style U-Net (archs/nafnet.py): ``width`` at full resolution; ``content_res_blocks`` / ``gen_res_blocks``
# NAF blocks per encoder / decoder level
register_generator("nafnet", GeneratorType(_nafnet_content, _nafnet_generators, lambda cfg: 2**NAF_LEVELS))

"""Deblurring methods behind one interface, for the evaluation harness.

A method is a callable ``method(item) -> H x W x C float32 in [0, 1]`` taking a :class:`TestItem`. Methods may
only look at ``item.blurred`` -- except the oracle baselines, which also read ``item.kernel`` (the TRUE kernel,
known for synthetic data only). ``item.sharp`` is there for the metrics, never for a method.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BASELINES", "Method", "TestItem", "baseline_method", "model_method"]


@dataclass
class TestItem:
    name: str
    blurred: np.ndarray  # H x W x C float32 [0, 1]
    sharp: np.ndarray
    kernel: np.ndarray | None = None  # true kernel (synthetic data only)
    text: str | None = None  # true visible text (built-in text domain only)


Method = Callable[[TestItem], np.ndarray]


class KernelMissingError(ValueError):
    """An oracle baseline was asked for an image without a known kernel."""


def _blurred(item: TestItem) -> np.ndarray:
    return item.blurred


def _oracle_wiener(item: TestItem) -> np.ndarray:
    from .classical import wiener_deconvolve

    if item.kernel is None:
        raise KernelMissingError(f"{item.name}: oracle_wiener needs the true kernel (test/kernels/{item.name}.npy)")
    return wiener_deconvolve(item.blurred, item.kernel)


def _oracle_rl(item: TestItem) -> np.ndarray:
    from .classical import richardson_lucy

    if item.kernel is None:
        raise KernelMissingError(f"{item.name}: oracle_rl needs the true kernel (test/kernels/{item.name}.npy)")
    return richardson_lucy(item.blurred, item.kernel)


def _blind_l0(item: TestItem) -> np.ndarray:
    from .classical import blind_deblur

    return blind_deblur(item.blurred)[0]


BASELINES: dict[str, Method] = {
    "blurred": _blurred,
    "oracle_wiener": _oracle_wiener,
    "oracle_rl": _oracle_rl,
    "blind_l0": _blind_l0,
}
#: baselines that need the true kernel of every test image
NEEDS_KERNEL = frozenset({"oracle_wiener", "oracle_rl"})


def baseline_method(name: str) -> Method:
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    return BASELINES[name]


def model_method(path: str | os.PathLike, device: str = "auto", tone_anchor: float = 0.0,
                 expected_sha256: str | None = None, engine: str = "auto") -> Method:
    """A trained deblurring model (``.safetensors`` export or ``.pt`` checkpoint) through the Deblurrer."""
    from ..inference.deblurrer import Deblurrer

    deblurrer = Deblurrer.from_checkpoint(Path(path), device=device, tone_anchor=tone_anchor,
                                          expected_sha256=expected_sha256, engine=engine)

    def run(item: TestItem) -> np.ndarray:
        return deblurrer.deblur_pixels(item.blurred)

    return run

"""Deblurring methods behind one interface, for the evaluation harness, and the registry of baselines.

A method is a callable ``method(item) -> H x W x C float32 in [0, 1]`` taking a :class:`TestItem`. Methods may
only look at ``item.blurred`` -- except the oracle baselines, which also read ``item.kernel`` (the TRUE kernel,
known for synthetic data only). ``item.sharp`` is there for the metrics, never for a method.

A baseline (a method with nothing to train) is one function plus one ``register_baseline`` line below; its name
then works in ``udeblur eval -b NAME``, in compare configs and in ``udeblur compare --list``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .test_set import TestItem

if TYPE_CHECKING:
    from ..inference.deblurrer import Deblurrer

__all__ = ["BASELINES", "Baseline", "KernelMissingError", "Method", "TestItem", "baseline_method", "deblurrer_method",
           "model_method", "register_baseline"]

Method = Callable[[TestItem], np.ndarray]


@dataclass(frozen=True)
class Baseline:
    name: str
    method: Method
    label: str  # how tables and plots name it
    note: str = ""
    needs_kernel: bool = False  # reads the true kernel of every test image (an oracle)


BASELINES: dict[str, Baseline] = {}


def register_baseline(name: str, method: Method, label: str, note: str = "", needs_kernel: bool = False) -> None:
    """Make ``method`` available as baseline ``name`` (a name taken already is an error)."""
    if name in BASELINES:
        raise ValueError(f"baseline {name!r} is registered already")
    BASELINES[name] = Baseline(name, method, label, note, needs_kernel)


class KernelMissingError(ValueError):
    """An oracle baseline was asked for an image without a known kernel."""


def _true_kernel(item: TestItem, baseline: str) -> np.ndarray:
    if item.kernel is None:
        raise KernelMissingError(f"{item.name}: {baseline} needs the true kernel (test/kernels/{item.name}.npy)")
    return item.kernel


def blurred(item: TestItem) -> np.ndarray:
    return item.blurred


def oracle_wiener(item: TestItem) -> np.ndarray:
    from .classical import wiener_deconvolve

    return wiener_deconvolve(item.blurred, _true_kernel(item, "oracle_wiener"))


def oracle_rl(item: TestItem) -> np.ndarray:
    from .classical import richardson_lucy

    return richardson_lucy(item.blurred, _true_kernel(item, "oracle_rl"))


def blind_l0(item: TestItem) -> np.ndarray:
    from .classical import blind_deblur

    return blind_deblur(item.blurred)[0]


register_baseline("blurred", blurred, "blurred input", "no processing")
register_baseline("oracle_wiener", oracle_wiener, "oracle Wiener (true kernel)",
                  "non-blind deconvolution with the TRUE kernel; only where test/kernels exist", needs_kernel=True)
register_baseline("oracle_rl", oracle_rl, "oracle Richardson-Lucy (true kernel)",
                  "30 Richardson-Lucy iterations with the TRUE kernel; only where test/kernels exist",
                  needs_kernel=True)
register_baseline("blind_l0", blind_l0, "classical blind (L0 gradient prior)",
                  "simplified Pan et al. 2014 kernel estimation + Wiener deconvolution")


def baseline_method(name: str) -> Method:
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    return BASELINES[name].method


def model_method(path: str | os.PathLike, device: str = "auto", tone_anchor: float = 0.0,
                 expected_sha256: str | None = None, engine: str = "auto") -> Method:
    """A trained deblurring model (``.safetensors`` export or ``.pt`` checkpoint) through the Deblurrer."""
    from ..inference.deblurrer import Deblurrer

    deblurrer = Deblurrer.from_checkpoint(Path(path), device=device, tone_anchor=tone_anchor,
                                          expected_sha256=expected_sha256, engine=engine)
    return deblurrer_method(deblurrer)


def deblurrer_method(deblurrer: Deblurrer) -> Method:
    """A ready ``Deblurrer`` as a method (its ``deblur_pixels`` on the blurred image)."""

    def run(item: TestItem) -> np.ndarray:
        return deblurrer.deblur_pixels(item.blurred)

    return run

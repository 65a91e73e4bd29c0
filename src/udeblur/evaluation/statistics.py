"""Paired gains over a reference method (the blurred input): is a method *clearly* better, not just on average?

The ± of a metric's mean is the spread BETWEEN test images (a heavily blurred crop has a low PSNR whatever one
does), so two methods' means can differ by less than their ± and still one can win on nearly every image. The
right test compares them image by image: the per-image difference, its mean, and a 95% interval from a
paired bootstrap over the images (seeded: the same rows always give the same interval).

    gain = paired_gain(method_values, blurred_values)     # {"mean", "low", "high", "better", "worse", "n"}

Images that are not independent (the crops of one rendered page share its font, size and text) make that interval
too narrow; ``groups=`` (one label per image, e.g. the page) resamples whole groups instead.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

RESAMPLES = 10_000
REFERENCE = "blurred"


def paired_gain(values: Sequence[float], reference: Sequence[float], higher_is_better: bool = True,
                resamples: int = RESAMPLES, seed: int = 0, groups: Sequence[Hashable] | None = None) -> dict[str, Any]:
    """Mean of ``values - reference`` over images where both are finite, a 95% percentile-bootstrap interval of
    that mean, and on how many images the method is better or worse than the reference.

    ``groups``: a label per image; the bootstrap then draws whole groups with replacement (a cluster bootstrap),
    and the result also has ``groups`` (how many). With very few groups no such interval is reliable."""
    if len(values) != len(reference) or (groups is not None and len(groups) != len(values)):
        raise ValueError(f"paired_gain: {len(values)} values against {len(reference)} reference values"
                         + ("" if groups is None else f" and {len(groups)} group labels"))
    keep = [i for i, (a, b) in enumerate(zip(values, reference, strict=True))
            if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
    diff = np.array([values[i] - reference[i] for i in keep], dtype=float)
    n = int(diff.size)
    if n == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "better": 0, "worse": 0, "n": 0,
                "higher_is_better": higher_is_better}
    rng = np.random.default_rng(seed)
    extra: dict[str, Any] = {}
    if groups is None:
        means = diff[rng.integers(0, n, (resamples, n))].mean(axis=1)
    else:
        members: dict[Hashable, list[int]] = {}
        for j, i in enumerate(keep):
            members.setdefault(groups[i], []).append(j)
        index = [np.array(m) for m in members.values()]
        drawn = rng.integers(0, len(index), (resamples, len(index)))
        means = np.array([np.concatenate([diff[index[g]] for g in row]).mean() for row in drawn])
        extra["groups"] = len(index)
    low, high = np.percentile(means, [2.5, 97.5])
    up, down = int((diff > 0).sum()), int((diff < 0).sum())
    return {"mean": float(diff.mean()), "low": float(low), "high": float(high), "better": up if higher_is_better
            else down, "worse": down if higher_is_better else up, "n": n, "higher_is_better": higher_is_better,
            **extra}


def gains_over_reference(rows: Sequence[Mapping[str, Any]], metrics: Mapping[str, bool],
                         reference: str = REFERENCE, groups: Mapping[str, Hashable] | None = None,
                         ) -> dict[str, dict[str, dict[str, Any]]]:
    """{method: {metric: paired_gain}} for every method in ``rows`` (dicts with method, image and metric values)
    against ``reference``, over the images both have. ``metrics``: name -> higher is better. ``groups``: image ->
    group label (e.g. its page), resampled whole. Empty when the reference method is absent."""
    by_method: dict[str, dict[str, Mapping[str, Any]]] = {}
    for r in rows:
        by_method.setdefault(r["method"], {})[r["image"]] = r
    ref = by_method.get(reference)
    if not ref:
        return {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for method, images in by_method.items():
        if method in (reference, "sharp"):
            continue
        common = [name for name in images if name in ref]
        per_metric = {}
        for m, higher in metrics.items():
            both = [i for i in common if m in images[i] and m in ref[i]]
            if both:
                per_metric[m] = paired_gain([images[i][m] for i in both], [ref[i][m] for i in both], higher,
                                            groups=None if groups is None else [groups[i] for i in both])
        if per_metric:
            out[method] = per_metric
    return out


def clearly_better(gain: Mapping[str, Any]) -> bool:
    """The whole 95% interval lies on the better side of zero."""
    return gain["n"] > 0 and (gain["low"] > 0 if gain["higher_is_better"] else gain["high"] < 0)

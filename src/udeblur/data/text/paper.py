"""How a text page looks: paper and ink tones, the light falling on it, paper grain."""

from __future__ import annotations

import numpy as np


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(paper RGB, ink RGB): mostly dark neutral ink on white-ish paper, sometimes aged paper or coloured
    ink."""
    paper = np.full(3, rng.uniform(0.8, 0.98)) + rng.normal(0, 0.012, 3)
    if rng.random() < 0.2:
        paper += np.array([0.02, 0.0, -0.06]) * rng.uniform(0.3, 1.0)  # yellowed paper
    r = rng.random()
    if r < 0.12:
        palette = np.array([[0.1, 0.15, 0.5], [0.55, 0.08, 0.08], [0.08, 0.35, 0.15], [0.3, 0.1, 0.4]])
        ink = palette[int(rng.integers(len(palette)))] * rng.uniform(0.6, 1.1)
    else:
        ink = np.full(3, rng.uniform(0.0, 0.3)) + rng.normal(0, 0.01, 3)
    return np.clip(paper, 0, 1), np.clip(ink, 0, 1)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    import colorsys

    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def document_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(paper RGB, ink RGB) of the ``documents`` appearance; ink and paper always differ by >= 0.3 in luma."""
    luma = np.array([0.299, 0.587, 0.114])
    r = rng.random()
    if r < 0.55:  # white or yellowed paper
        paper, _ = _colours(rng)
    elif r < 0.72:  # pastel coloured paper, forms, sticky notes
        paper = _hsv(rng.random(), rng.uniform(0.08, 0.35), rng.uniform(0.75, 0.97))
    elif r < 0.87:  # grey: recycled paper, newsprint, a dim photograph
        paper = np.full(3, rng.uniform(0.45, 0.78)) + rng.normal(0, 0.015, 3)
    else:  # dark or saturated background (menus, signs, slides): light print on it
        paper = _hsv(rng.random(), rng.uniform(0.0, 0.8), rng.uniform(0.08, 0.5))
    if float(paper @ luma) < 0.5:
        ink = _hsv(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.85, 1.0))
    elif rng.random() < 0.25:  # coloured ink
        ink = _hsv(rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.25, 0.65))
    else:
        ink = np.full(3, rng.uniform(0.0, 0.3)) + rng.normal(0, 0.01, 3)
    if abs(float((paper - ink) @ luma)) < 0.3:  # too little contrast to read: fall back to dark ink
        ink = np.full(3, rng.uniform(0.0, 0.15))
        paper = np.maximum(paper, float(ink @ luma) + 0.45)
    return np.clip(paper, 0, 1), np.clip(ink, 0, 1)


def _illumination(rng: np.random.Generator, h: int, w: int, appearance: str) -> np.ndarray:
    """Light falling on the page, x 255: a linear gradient, and for ``documents`` stronger ones and vignetting."""
    span = 0.12 if appearance == "plain" else 0.3
    gy, gx = rng.uniform(-span, span, 2)
    yy = np.arange(h, dtype=np.float32)[:, None] / h - 0.5
    xx = np.arange(w, dtype=np.float32)[None, :] / w - 0.5
    illum = 1.0 + gy * yy + gx * xx
    if appearance == "documents" and rng.random() < 0.4:  # a lens's vignette or a lamp's spot, off-centre
        cy, cx = rng.uniform(-0.4, 0.4, 2)
        r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / 0.5
        illum = illum * (1.0 - rng.uniform(0.15, 0.55) * np.clip(r2, 0.0, 1.5))
    return (255.0 * illum).astype(np.float32)


def compose_page(rng: np.random.Generator, coverage: np.ndarray, channels: int,
                 appearance: str = "plain") -> np.ndarray:
    """uint8 ink coverage -> a photographed/scanned page (uint8 H x W x C): paper and ink tones, uneven
    light, paper grain. Kept in 8 bits: the blurred crops are made from exactly what a sharp PNG stores."""
    h, w = coverage.shape
    paper, ink = _colours(rng) if appearance == "plain" else document_colours(rng)
    if channels == 1:
        luma = np.array([0.299, 0.587, 0.114])
        paper, ink = np.array([paper @ luma]), np.array([ink @ luma])
    # Ink weight: a gain and a gamma on coverage read as lighter/heavier print or toner (a 256-entry table).
    levels = np.arange(256, dtype=np.float64) / 255.0
    lut = (np.clip(levels * rng.uniform(0.85, 1.1), 0.0, 1.0) ** rng.uniform(0.75, 1.3)).astype(np.float32)
    a = lut[coverage]
    illum = _illumination(rng, h, w, appearance)
    grain = rng.standard_normal((h, w), dtype=np.float32) * np.float32(255.0 * rng.uniform(0.0, 0.02))
    if rng.random() < 0.5:  # fibre-like, spatially correlated grain
        grain = 0.5 * (grain + np.roll(grain, 1, axis=int(rng.integers(2))))
    grain *= 1.0 - a
    grain += 0.5  # rounds in the truncating cast below
    out = np.empty((h, w, len(paper)), dtype=np.uint8)
    chan = np.empty((h, w), dtype=np.float32)
    for c in range(len(paper)):
        p, i = np.float32(paper[c]), np.float32(ink[c])
        np.multiply(a, i - p, out=chan)
        chan += p
        chan *= illum
        chan += grain
        np.clip(chan, 0.0, 255.0, out=chan)
        out[..., c] = chan
    return out

"""Image grids for training samples and reports."""

from __future__ import annotations

import numpy as np
import torch


def to_numpy_image(x: torch.Tensor) -> np.ndarray:
    """C x H x W tensor in [-1, 1] -> H x W x 3 float32 in [0, 1] (grayscale replicated)."""
    x = x.detach().float().cpu().clamp(-1, 1).add(1).mul(0.5)
    if x.shape[0] == 1:
        x = x.repeat(3, 1, 1)
    return x.permute(1, 2, 0).numpy()


def image_grid(rows: list[list[np.ndarray]], pad: int = 2, background: float = 1.0) -> np.ndarray:
    """Tile H x W x 3 images (rows of equal length; sizes may differ) into one image with ``pad`` px gaps."""
    n_cols = max(len(r) for r in rows)
    heights = [max(img.shape[0] for img in row) for row in rows]
    widths = [max(row[c].shape[1] for row in rows if c < len(row)) for c in range(n_cols)]
    out = np.full((sum(heights) + pad * (len(rows) + 1), sum(widths) + pad * (n_cols + 1), 3), background, np.float32)
    y = pad
    for row, h in zip(rows, heights, strict=True):
        x = pad
        for c, img in enumerate(row):
            img = img if img.ndim == 3 else img[..., None]
            if img.shape[2] == 1:
                img = np.repeat(img, 3, axis=2)
            out[y : y + img.shape[0], x : x + img.shape[1]] = img
            x += widths[c] + pad
        y += h + pad
    return out

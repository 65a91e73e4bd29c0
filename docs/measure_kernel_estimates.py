"""How well does E^b's explicit kernel head estimate the blur? (model card, issue 6 diagnostics)

    python docs/measure_kernel_estimates.py MODEL.safetensors [--data ROOT]

For every paired test crop of the built-in text domain (or ROOT/test with kernels/), compares the radius of
gyration (px) of the kernel E^b predicts from the blurred crop with that of the true kernel (used here only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def radius_of_gyration(k: np.ndarray) -> float:
    k = k / k.sum()
    y, x = np.mgrid[: k.shape[0], : k.shape[1]]
    cy, cx = (k * y).sum(), (k * x).sum()
    return float(np.sqrt((k * ((y - cy) ** 2 + (x - cx) ** 2)).sum()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--data", help="data root with test/blurred and test/kernels [built-in text domain]")
    args = ap.parse_args()
    from udeblur.config import load_config
    from udeblur.data.builtin import resolve_data_root
    from udeblur.imageio import list_images, load_pixels
    from udeblur.model_files import load_deblur_net

    root = Path(args.data) if args.data else resolve_data_root(load_config("text"))
    net, _ = load_deblur_net(args.model)
    net.eval()
    if net.blur is None or net.blur.fc_kernel is None:
        raise SystemExit(f"{args.model}: this model has no kernel head (model.kernel_size = 0)")
    pred, true = [], []
    for f in sorted(list_images(root / "test" / "blurred")):
        x = torch.from_numpy(load_pixels(f).transpose(2, 0, 1))[None] * 2 - 1
        with torch.no_grad():
            k = net.blur.forward_with_kernel(x)[2][0].numpy()
        pred.append(radius_of_gyration(k))
        true.append(radius_of_gyration(np.load(root / "test" / "kernels" / f"{f.stem}.npy")))
    p, t = np.array(pred), np.array(true)
    print(f"{len(p)} test crops. Kernel radius of gyration: predicted mean {p.mean():.2f} px (range {p.min():.2f}-"
          f"{p.max():.2f}), true mean {t.mean():.2f} px (range {t.min():.2f}-{t.max():.2f}); "
          f"correlation {np.corrcoef(p, t)[0, 1]:.2f}")


if __name__ == "__main__":
    main()

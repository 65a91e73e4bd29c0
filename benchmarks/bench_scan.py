"""How long does scanning a large domain folder take?

Creates N empty image-named files (default 200,000, the size of CelebA's two training domains together) in a
temporary folder, then times ``udeblur.imageio.list_images`` and ``find_domain_folders`` + listing as
``make_train_loader`` does it. Empty files are enough: scanning never opens them.

    /work/venv/bin/python benchmarks/bench_scan.py [--n 200000] [--dir /tmp] [--subdirs 0]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from udeblur.data.datasets import UnpairedDataset, find_domain_folders
from udeblur.imageio import list_images


def bare_walk(folder: Path) -> int:
    """The floor: an os.scandir walk that builds nothing (no Path objects, no sort)."""
    n, stack = 0, [str(folder)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir():
                    stack.append(entry.path)
                else:
                    n += 1
    return n


def make_files(root: Path, n: int, subdirs: int) -> None:
    """Half the files in train/sharp, half in train/blurred; optionally spread over sub-folders."""
    for k, domain in enumerate(("sharp", "blurred")):
        base = root / "train" / domain
        count = n // 2 + (n % 2 if k == 0 else 0)
        folders = [base / f"{i:03d}" for i in range(subdirs)] if subdirs else [base]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            folder = folders[i % len(folders)]
            # os.open/close is the cheapest way to create an empty file
            os.close(os.open(folder / f"{i:06d}.jpg", os.O_CREAT | os.O_WRONLY, 0o644))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000, help="total number of files")
    ap.add_argument("--dir", default=None, help="where to make the temporary folder")
    ap.add_argument("--subdirs", type=int, default=0, help="spread each domain over this many sub-folders")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        make_files(root, args.n, args.subdirs)
        print(f"created {args.n} files in {time.perf_counter() - t0:.1f} s ({root})")
        rows = []
        for r in range(args.repeat):
            t0 = time.perf_counter()
            folders = find_domain_folders(root)
            sharp = list_images(folders.sharp)
            blurred = list_images(folders.blurred)
            dt = time.perf_counter() - t0
            assert len(sharp) + len(blurred) == args.n, (len(sharp), len(blurred))
            t1 = time.perf_counter()
            UnpairedDataset(sharp, blurred, crop_size=128)
            dt_ds = time.perf_counter() - t1
            t2 = time.perf_counter()
            bare = bare_walk(root / "train")
            dt_bare = time.perf_counter() - t2
            assert bare == args.n
            rows.append(dt)
            print(f"run {r}: find_domain_folders + list_images(sharp, blurred): {dt:.2f} s "
                  f"({args.n / dt / 1000:.0f}K files/s); UnpairedDataset(...): {dt_ds:.2f} s; "
                  f"bare scandir walk: {dt_bare:.2f} s")
        print(f"best {min(rows):.2f} s for {args.n} files (first run may include a cold directory cache)")


if __name__ == "__main__":
    main()

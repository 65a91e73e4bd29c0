"""Data commands: `udeblur synth text`, `udeblur blur`, `udeblur prepare celeba|cfp|folder`."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth", help="generate a built-in domain (text documents)",
        description="Render the built-in text-document domain: unpaired sharp and blurred training crops (different "
        "text in each set) and paired test crops with their true kernels and visible text (test/text.jsonl). "
        "Deterministic for a seed and the installed fonts; `udeblur train` without --data makes it by itself.",
    )
    p.add_argument("domain", choices=["text"], help="the domain to render (text documents)")
    p.add_argument("--out", "-o", required=True, help="output folder (train/{sharp,blurred}, test/{sharp,blurred})")
    p.add_argument("--train-count", type=int, default=2000, help="crops in EACH of train/sharp and train/blurred")
    p.add_argument("--test-count", type=int, default=64, help="paired test crops")
    p.add_argument("--size", type=int, default=128, help="crop side in px")
    p.add_argument("--channels", type=int, choices=[1, 3], default=3, help="1: grayscale, 3: RGB")
    p.add_argument("--seed", type=int, default=0, help="random seed (the same seed gives the same data)")
    p.add_argument("--workers", type=int, default=None, help="processes [the CPU count, at most 8]")
    p.add_argument("--appearance", choices=["plain", "documents"], default="plain",
                   help="plain: dark ink on light paper; documents: also coloured/grey paper, light-on-dark print, "
                        "shading, vignetting, JPEG and shot noise [plain]")
    p.set_defaults(run=run_synth)

    p = sub.add_parser(
        "blur", help="synthesise realistic blur (camera shake, defocus, noise) on a folder",
        description="Blur every image of a folder (searched recursively) with a random kernel each: camera-shake "
        "trajectories (Boracchi & Foi), defocus, linear motion or Gaussian, plus sensor noise. Same names and "
        "sizes in --out; unreadable files are skipped with a warning that names them.",
    )
    p.add_argument("src", help="folder of sharp images")
    p.add_argument("--out", "-o", required=True, help="folder for the blurred images (created)")
    p.add_argument("--seed", type=int, default=0, help="random seed (the same seed gives the same kernels)")
    p.add_argument("--max-kernel", type=int, default=31, help="largest kernel size in px [31]")
    p.add_argument("--min-kernel", type=int, default=7, help="smallest kernel size in px [7]")
    p.add_argument("--noise", type=float, default=0.02, help="largest Gaussian noise std (pixels in [0,1]) [0.02]")
    p.add_argument("--save-kernels", action="store_true", help="also write each kernel as .npy")
    p.set_defaults(run=run_blur)

    p = sub.add_parser(
        "prepare", help="turn a downloaded dataset into the unpaired layout (paper's split)",
        description="Split a dataset you have downloaded into OUT/train/sharp, OUT/train/blurred (different images, "
        "so unpaired) and a paired OUT/test/{sharp,blurred}, blurring as `udeblur blur` does. celeba: the paper's "
        "split (100K sharp, 100K blurred, 2,137 test); cfp: split by subject; folder: any folder of images. "
        "Deterministic for a seed, resumable, with a manifest.json.",
    )
    p.add_argument("dataset", choices=["celeba", "cfp", "folder"], help="the dataset's layout: celeba, cfp or folder")
    p.add_argument("src", help="the dataset folder on your disk")
    p.add_argument("--out", "-o", required=True, help="output folder (train/ and test/)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the split and the blur")
    p.add_argument("--size", type=int, default=None, help="resize the shorter side to this first [no resizing]")
    p.add_argument("--workers", type=int, default=None, help="processes [the CPU count, at most 8]")
    p.set_defaults(run=run_prepare)


def run_synth(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data.text import TextDomainConfig, documents_blur, make_text_domain

    extra = {"appearance": "documents", "blur": documents_blur()} if args.appearance == "documents" else {}
    cfg = TextDomainConfig(size=args.size, train_count=args.train_count, test_count=args.test_count,
                           channels=args.channels, seed=args.seed, **extra)
    out = make_text_domain(Path(args.out), cfg, workers=args.workers)
    print(f"text domain: {out}")
    return 0


def run_blur(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data.blur import BlurConfig, blur_folder

    cfg = BlurConfig(max_kernel=args.max_kernel, min_kernel=args.min_kernel, noise_std=(0.0, args.noise))
    n = blur_folder(Path(args.src), Path(args.out), cfg, args.seed, save_kernels=args.save_kernels)
    print(f"blurred {n} image(s) into {args.out}")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from ..data import prepare

    fn = {"celeba": prepare.prepare_celeba, "cfp": prepare.prepare_cfp, "folder": prepare.prepare_folder}
    manifest = fn[args.dataset](args.src, args.out, seed=args.seed, size=args.size, workers=args.workers)
    counts = manifest.get("counts", manifest)
    print(f"prepared {args.dataset} into {args.out}: {counts}")
    return 0

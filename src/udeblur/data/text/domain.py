"""Building the text domain on disk: chunks of crops in worker processes, their texts, meta.json, the cache rule.

Chunks of crops are generated from per-chunk seeds, so the result does not depend on the number of workers.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

from ..blur import degrade_with_kernel, sample_kernel, tagged_seed
from ..fonts import available_fonts
from ..pool import default_workers, pool_context
from .config import TextDomainConfig
from .page import render_page
from .vocab import STREAMS, stream_vocab

TEXT_DOMAIN_VERSION = 1  # bump whenever rendering changes, so cached domains are regenerated
GENERATOR = "udeblur.text"
_CHUNK = 48  # crops per worker job
_SEED_TAG = 0x74657874  # "text"


def _save_png(path: Path, pixels: np.ndarray) -> None:
    arr = pixels if pixels.dtype == np.uint8 else np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
    img = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    # Files land in a private temporary folder that is renamed when complete, so no per-file atomicity.
    img.save(path, format="PNG", compress_level=1)


def _chunk_job(job: tuple) -> list[dict]:
    out, cfg, kind, stream, chunk, start, count = job
    out = Path(out)
    rng = np.random.default_rng(tagged_seed(_SEED_TAG, cfg.seed, stream, chunk))
    records: list[dict] = []
    done = 0
    while done < count:
        page = render_page(rng, cfg, stream)
        take = min(len(page.cells), count - done)
        for cell_idx in sorted(rng.permutation(len(page.cells))[:take].tolist()):
            cell = page.cells[cell_idx]
            name = f"{start + done:06d}.png"
            text, sources = page.visible(cell)
            rec = {"file": name, "text": text, "lines": sources, "font": page.font,
                   "text_height": page.text_height}
            if kind in ("sharp", "pair"):
                _save_png(out / ("train/sharp" if kind == "sharp" else "test/sharp") / name, page.crop8(cell))
            if kind in ("blurred", "pair"):
                kernel, info = sample_kernel(rng, cfg.blur)
                region = page.crop(cell, kernel.shape[0] // 2)  # real surroundings, no mirrored borders
                blurred = degrade_with_kernel(region, kernel, rng, cfg.blur, valid=True)
                _save_png(out / ("train/blurred" if kind == "blurred" else "test/blurred") / name, blurred)
                if kind == "pair":
                    np.save(out / "test/kernels" / f"{start + done:06d}.npy", kernel)
                    rec["kernel"] = f"kernels/{start + done:06d}.npy"
                    rec["blur"] = info
            records.append(rec)
            done += 1
    return records


def config_json(cfg: TextDomainConfig) -> dict:
    """The config as meta.json stores it (part of the cache key)."""
    data = json.loads(json.dumps(asdict(cfg)))
    if data["appearance"] == "plain":  # domains made before the key existed keep their cache folder and meta
        del data["appearance"]
    return data


def domain_meta(cfg: TextDomainConfig) -> dict:
    """What a built domain depends on; a folder whose meta.json differs is rebuilt."""
    return {
        "generator": GENERATOR,
        "version": TEXT_DOMAIN_VERSION,
        "config": config_json(cfg),
        "seed": cfg.seed,
        "counts": {"train_sharp": cfg.train_count, "train_blurred": cfg.train_count, "test": cfg.test_count},
        "fonts": [f.name for f in available_fonts(cfg.system_fonts)],
    }


def read_domain_meta(out: Path) -> dict | None:
    """The meta.json of a built domain folder, None if it has none (or an unreadable one)."""
    try:
        return json.loads((out / "meta.json").read_text())
    except (OSError, ValueError):
        return None


def _pid_alive(text: str) -> bool:
    try:
        os.kill(int(text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def make_text_domain(out: Path, cfg: TextDomainConfig, workers: int | None = None, progress: bool = True) -> Path:
    """Generate the text-document domain into `out` (returned) unless it is already there.

    Layout: train/sharp/*.png and train/blurred/*.png (unpaired, different text; their texts in
    train/sharp.jsonl and train/blurred.jsonl), test/sharp/*.png + test/blurred/*.png (aligned pairs with
    the same names), test/text.jsonl (file, visible text, ...), test/kernels/*.npy (true kernels, for
    oracle baselines only) and meta.json. A complete domain with the same config is reused as is; the
    data is built in a temporary sibling folder and renamed into place, so `out` is never half-written.
    workers: processes (default: CPU count, at most 8); the data does not depend on it. A non-empty `out`
    that is not a generated domain is never overwritten (DatasetError).
    """
    out = Path(out).expanduser()
    want = domain_meta(cfg)
    have = read_domain_meta(out)
    if have == want:
        return out
    if out.exists():
        extra = sorted(p.name for p in out.iterdir()) if out.is_dir() else [out.name]
        ours = have is not None and have.get("generator") == GENERATOR
        # only a domain this generator wrote (valid meta.json) or an empty folder may be replaced: a user's own
        # train/ + test/ folders look the same by name and must never be deleted
        if not ours and extra:
            from ..datasets import DatasetError

            raise DatasetError(
                f"{out}: exists and does not look like a generated text domain (contains {extra[:5]}); "
                "choose an empty or new folder"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        if not _pid_alive(stale.name.rsplit("-", 1)[-1]):
            shutil.rmtree(stale, ignore_errors=True)  # left by an interrupted run
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    for sub in ("train/sharp", "train/blurred", "test/sharp", "test/blurred", "test/kernels"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)

    jobs = []
    for kind, stream, count in (("sharp", STREAMS["train_sharp"], cfg.train_count),
                                ("blurred", STREAMS["train_blurred"], cfg.train_count),
                                ("pair", STREAMS["test"], cfg.test_count)):
        for chunk, start in enumerate(range(0, count, _CHUNK)):
            jobs.append((str(tmp), cfg, kind, stream, chunk, start, min(_CHUNK, count - start)))
    workers = default_workers() if workers is None else max(1, int(workers))
    workers = min(workers, len(jobs)) if jobs else 1
    available_fonts(cfg.system_fonts)  # load caches once, before forking
    for stream in (*STREAMS.values(), None):
        stream_vocab(stream)

    from tqdm import tqdm

    def progress_bar() -> tqdm:
        total = cfg.train_count * 2 + cfg.test_count
        return tqdm(total=total, desc=f"text domain -> {out.name}", unit="crop", disable=not progress)

    results: list[list[dict]] = []
    try:
        if workers <= 1:
            with progress_bar() as bar:
                for job in jobs:
                    results.append(_chunk_job(job))
                    bar.update(job[-1])
        else:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context()) as pool:
                done = pool.map(_chunk_job, jobs)  # submits everything: the workers exist from here on
                with progress_bar() as bar:  # so tqdm's monitor thread starts after the fork
                    for job, res in zip(jobs, done, strict=True):
                        results.append(res)
                        bar.update(job[-1])
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    by_kind: dict[str, list[dict]] = {"sharp": [], "blurred": [], "pair": []}
    for job, res in zip(jobs, results, strict=True):
        by_kind[job[2]].extend(res)
    for kind, path in (("sharp", "train/sharp.jsonl"), ("blurred", "train/blurred.jsonl"),
                       ("pair", "test/text.jsonl")):
        with open(tmp / path, "w", encoding="utf-8") as fh:
            for rec in by_kind[kind]:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    (tmp / "meta.json").write_text(json.dumps(want, indent=2) + "\n")

    if out.exists():
        old = out.parent / f".{out.name}.partial-old-{os.getpid()}"
        os.replace(out, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, out)
    return out

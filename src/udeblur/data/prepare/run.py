"""What every preparation shares: output names, the blur of each image, the worker pool, the plan and the manifest."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ...atomic import atomic_write
from ...imageio import ImageReadError, list_images, read_image, save_png, to_channels
from ..blur import BlurConfig, degrade
from ..datasets import DatasetError, resize_shorter
from ..pool import default_workers, pool_context
from .split import ROLES, Source

MANIFEST = "manifest.json"
PLAN = ".prepare_plan.json"
FORMAT = "udeblur-prepared/1"


@dataclass(frozen=True)
class _Job:
    role: str
    path: str
    rel: str
    out_rel: str  # relative output path without suffix


def _out_names(split: dict[str, list[Source]]) -> list[_Job]:
    """Output name = source path without suffix; 'a.jpg' + 'a.png' in one folder get the suffix added."""
    jobs: list[_Job] = []
    stems: dict[str, int] = {}
    for role in ROLES:
        for s in split.get(role, []):
            stem = s.rel.rsplit(".", 1)[0]
            stems[stem] = stems.get(stem, 0) + 1
    for role in ROLES:
        for s in sorted(split.get(role, []), key=lambda s: s.rel):
            stem = s.rel.rsplit(".", 1)[0]
            # keep both: 'a.jpg' -> 'a_jpg', 'a.png' -> 'a_png'
            out_rel = f"{stem}_{s.rel.rsplit('.', 1)[1]}" if stems[stem] > 1 else stem
            jobs.append(_Job(role, s.path, s.rel, out_rel))
    return jobs


def _outputs(out: Path, job: _Job) -> list[Path]:
    if job.role == "train_sharp":
        return [out / "train" / "sharp" / f"{job.out_rel}.png"]
    if job.role == "train_blurred":
        return [out / "train" / "blurred" / f"{job.out_rel}.png"]
    return [out / "test" / "kernels" / f"{job.out_rel}.npy", out / "test" / "sharp" / f"{job.out_rel}.png",
            out / "test" / "blurred" / f"{job.out_rel}.png"]


def _file_rng(seed: int, rel: str) -> np.random.Generator:
    # Seeded by the relative path, not the position in the list: the blur of an image never depends on
    # which other images exist or on the order the workers handle them. Not blur.py's tagged seed (that of
    # `udeblur blur`): a rerun resumes a preparation made before and must make the same files.
    digest = hashlib.sha256(rel.encode("utf-8")).digest()
    return np.random.default_rng([seed % 2**64, int.from_bytes(digest[:8], "little")])


def _save_npy(path: Path, array: np.ndarray) -> None:
    """np.save, atomically (same reason as save_png: an interrupted run never leaves a half file)."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array)

    atomic_write(path, write)


@dataclass(frozen=True)
class _Settings:
    out: str
    seed: int
    blur: BlurConfig
    size: int | None
    channels: int | None


def _load(path: str, settings: _Settings) -> tuple[np.ndarray, int]:
    data = read_image(path)
    pixels = data.pixels
    if data.alpha is not None:  # flatten onto white, as load_pixels does
        pixels = pixels * data.alpha[..., None] + (1.0 - data.alpha[..., None])
    if settings.channels is not None:
        pixels = to_channels(pixels, settings.channels)
    if settings.size:
        pixels = resize_shorter(pixels, settings.size)
    # 16-bit is kept only for grayscale (what PNG/save_png can write at 16 bits here)
    bits = data.bits if pixels.shape[2] == 1 else 8
    return pixels.astype(np.float32), bits


def _run_job(args: tuple[_Job, _Settings]) -> tuple[str, str, str]:
    """Make one item's outputs. Returns (status, source path, message); status: made/skipped/bad."""
    job, settings = args
    out = Path(settings.out)
    targets = _outputs(out, job)
    if all(p.exists() for p in targets):
        return "skipped", job.path, ""
    try:
        pixels, bits = _load(job.path, settings)
    except ImageReadError as exc:
        return "bad", job.path, str(exc)
    if job.role == "train_sharp":
        save_png(targets[0], pixels, bits=bits)
        return "made", job.path, ""
    blurred, kernel = degrade(pixels, _file_rng(settings.seed, job.rel), settings.blur)
    if job.role == "train_blurred":
        save_png(targets[0], blurred, bits=bits)
        return "made", job.path, ""
    _save_npy(targets[0], kernel.astype(np.float32))
    save_png(targets[1], pixels, bits=bits)
    save_png(targets[2], blurred, bits=bits)
    return "made", job.path, ""


def _map(fn: Callable, items: list, workers: int) -> Iterable:
    if workers <= 1 or len(items) < 2:
        yield from map(fn, items)
        return
    with pool_context().Pool(workers) as pool:
        yield from pool.imap_unordered(fn, items, chunksize=max(1, min(64, len(items) // (workers * 8))))


def _write_json(path: Path, data: Any) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=1, default=str)

    atomic_write(path, write)


def _check_plan(out: Path, plan: dict[str, Any]) -> None:
    """Refuse to resume into a folder prepared with other parameters (it would mix two splits)."""
    plan_path = out / PLAN
    if plan_path.exists():
        try:
            old = json.loads(plan_path.read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{plan_path}: unreadable preparation plan ({exc}); delete {out} and rerun") from exc
        if old.get("digest") != plan["digest"]:
            changed = sorted(k for k in plan if k != "digest" and old.get(k) != plan[k])
            raise DatasetError(
                f"{out}: already holds a preparation made with different "
                f"{', '.join(changed) or 'source files'}; use another output folder or delete this one"
            )
        return
    for sub in ("train", "test"):
        if (out / sub).is_dir() and any(os.scandir(out / sub)):
            raise DatasetError(f"{out / sub}: output folder is not empty and was not made by udeblur prepare; "
                               "choose an empty output folder")
    _write_json(plan_path, plan)


def run_preparation(kind: str, src: Path, out: Path, split: dict[str, list[Source]], notes: list[str],
             requested: dict[str, int], seed: int, blur: BlurConfig | None, size: int | None,
             channels: int | None, workers: int | None, progress: bool,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    blur = blur if blur is not None else BlurConfig()
    if size is not None and size < 1:
        raise DatasetError(f"size must be a positive number of pixels, got {size}")
    jobs = _out_names(split)
    # Sharp and blurred training images must come from different sources (the unpaired premise).
    sharp_src = {j.rel for j in jobs if j.role == "train_sharp"}
    assert not sharp_src & {j.rel for j in jobs if j.role != "train_sharp"}
    params = {"kind": kind, "seed": seed, "size": size, "channels": channels, "blur": asdict(blur)}
    listing = json.dumps([[j.role, j.rel, j.out_rel] for j in jobs])
    digest = hashlib.sha256((json.dumps(params, sort_keys=True, default=str) + listing).encode()).hexdigest()
    for warning in notes:
        warnings.warn(f"{src}: {warning}", stacklevel=3)
    out.mkdir(parents=True, exist_ok=True)
    # JSON round trip so tuples compare equal to the lists a stored plan reads back as
    _check_plan(out, json.loads(json.dumps({**params, "digest": digest}, default=str)))

    settings = _Settings(str(out), seed, blur, size, channels)
    counts = {"made": 0, "skipped": 0}
    bad: list[dict[str, str]] = []
    workers = default_workers() if workers is None else workers
    with tqdm(total=len(jobs), desc=f"prepare {kind}", unit="img", disable=not progress) as bar:
        for status, path, message in _map(_run_job, [(j, settings) for j in jobs], workers):
            bar.update(1)
            if status == "bad":
                bad.append({"file": path, "problem": message})
                warnings.warn(f"skipping unreadable source image {message}", stacklevel=3)
            else:
                counts[status] += 1
    bad.sort(key=lambda b: b["file"])
    bad_set = {b["file"] for b in bad}
    files = {role: [[j.out_rel + ".png", j.rel] for j in jobs if j.role == role and j.path not in bad_set]
             for role in ROLES}
    if bad:
        warnings.warn(f"{src}: skipped {len(bad)} unreadable source image(s) of {len(jobs)}; "
                      f"listed in {out / MANIFEST}", stacklevel=3)
    manifest = {
        "format": FORMAT,
        "dataset": kind,
        "source": str(src),
        **params,
        "digest": digest,
        "requested": requested,
        "counts": {role: len(files[role]) for role in ROLES},
        "notes": list(notes),
        "skipped_unreadable": bad,
        "run": counts,  # made now vs already present (a resumed run)
        **(extra or {}),
        "files": files,  # [output name, source path relative to the image root]
    }
    _write_json(out / MANIFEST, manifest)
    return manifest


def check_out(src: Path, out: Path) -> None:
    # An output inside the source would be listed as source images by a rerun and change the split.
    if out.resolve().is_relative_to(src.resolve()):
        raise DatasetError(f"{out}: the output folder must not be inside the source folder {src}")


def image_sources(root: Path, group: Callable[[str], str] | None = None) -> list[Source]:
    files = list_images(root)
    out = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        out.append(Source(str(path), rel, group(rel) if group else rel))
    return out

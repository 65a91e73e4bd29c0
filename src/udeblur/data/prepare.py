"""Turn a downloaded dataset into the unpaired layout the trainer reads.

Every preparation writes::

    out/train/sharp/...        sharp training images (PNG)
    out/train/blurred/...      blurred training images, synthesised from OTHER source images (PNG)
    out/test/sharp/...         paired test set: the sharp image ...
    out/test/blurred/...       ... and its synthetic blur, same name and size
    out/test/kernels/....npy   the blur kernel of each test pair
    out/manifest.json          what was made from what, counts, skipped files, parameters

Determinism: the split is a pure function of the sorted source list (plus CelebA's partition/identity
files when present) and the seed; each image's blur is seeded by ``(seed, its relative path)``, never by
processing order, so worker count and interruptions change nothing.

Resuming: outputs are written atomically and an item whose outputs all exist is skipped, so rerunning an
interrupted preparation finishes it with identical files. ``out/.prepare_plan.json`` records the plan; a
rerun with different parameters into the same folder is refused rather than mixing two splits.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..atomic import atomic_write
from ..imageio import ImageReadError, list_images, read_image, save_png, to_channels
from .blur import BlurConfig, degrade
from .datasets import DatasetError, resize_shorter

MANIFEST = "manifest.json"
PLAN = ".prepare_plan.json"
FORMAT = "udeblur-prepared/1"
ROLES = ("train_sharp", "train_blurred", "test")

# The paper's CelebA split.
CELEBA_SHARP = 100_000
CELEBA_BLURRED = 100_000
CELEBA_TEST = 2_137


@dataclass(frozen=True)
class Source:
    """One source image: ``rel`` (posix, relative to the image root) names it in outputs and seeds its
    blur; ``group`` is the identity/subject that must not be split across roles."""

    path: str
    rel: str
    group: str


@dataclass(frozen=True)
class _Job:
    role: str
    path: str
    rel: str
    out_rel: str  # relative output path without suffix


# ------------------------------------------------------------------------------------------------ split


def _scaled(wanted: Sequence[int], available: int, notes: list[str], what: str) -> list[int]:
    """Shrink the wanted counts proportionally when the source has too few images."""
    total = sum(wanted)
    if total <= available:
        return list(wanted)
    factor = available / total
    out = [math.floor(n * factor) for n in wanted]
    # keep every requested set non-empty (a tiny folder still gets a test pair), paid for by the largest
    for i, n in enumerate(wanted):
        if n > 0 and out[i] == 0:
            out[i] = 1
    while sum(out) > available:
        out[out.index(max(out))] -= 1
    notes.append(f"{what}: only {available} images for the {total} requested; counts scaled by "
                 f"{factor:.4f} to {out}")
    return out


def _assign(sources: Sequence[Source], seed: int, salt: int, targets: Sequence[tuple[str, int]]
            ) -> tuple[dict[str, list[Source]], list[Source]]:
    """Deal whole groups, in a seeded random order, into the targets in turn.

    A group never spans two targets (the part of a group that does not fit is left unused), so
    identities are disjoint between roles. Returns the assignment and the untouched groups' sources.
    """
    groups: dict[str, list[Source]] = {}
    for s in sorted(sources, key=lambda s: s.rel):
        groups.setdefault(s.group, []).append(s)
    keys = sorted(groups)
    order = np.random.default_rng([seed % 2**64, salt]).permutation(len(keys))
    out: dict[str, list[Source]] = {name: [] for name, _ in targets}
    t = 0
    unused: list[Source] = []
    for k in order:
        while t < len(targets) and len(out[targets[t][0]]) >= targets[t][1]:
            t += 1
        members = groups[keys[k]]
        if t == len(targets):
            unused.extend(members)
            continue
        name, want = targets[t]
        out[name].extend(members[: want - len(out[name])])
    return out, unused


def split_sources(sources: Sequence[Source], seed: int, n_sharp: int, n_blurred: int, n_test: int,
                  test_pool: Sequence[Source] | None = None, notes: list[str] | None = None,
                  top_up_from_test_pool: bool = True) -> dict[str, list[Source]]:
    """The split as a pure function of the sources and the seed.

    Without ``test_pool`` the test, sharp and blurred sets are dealt from ``sources`` (in that order). With
    it (CelebA's official test partition) the test set comes from ``test_pool`` and training from
    ``sources``, topped up with unused test-pool groups when ``top_up_from_test_pool`` and training is short.
    Counts larger than the images available are scaled down proportionally (recorded in ``notes``).
    """
    notes = [] if notes is None else notes
    if test_pool is None:
        n_test, n_sharp, n_blurred = _scaled([n_test, n_sharp, n_blurred], len(sources), notes, "split")
        split, _ = _assign(sources, seed, 1, [("test", n_test), ("train_sharp", n_sharp),
                                               ("train_blurred", n_blurred)])
    else:
        if n_test > len(test_pool):
            notes.append(f"test: only {len(test_pool)} images in the test partition, {n_test} requested")
            n_test = len(test_pool)
        test, spare = _assign(test_pool, seed, 2, [("test", n_test)])
        pool = list(sources)
        if top_up_from_test_pool and len(pool) < n_sharp + n_blurred and spare:
            extra = spare[: n_sharp + n_blurred - len(pool)]
            pool += extra
            notes.append(f"training: {len(extra)} images taken from unused test-partition identities to reach "
                         "the requested counts (pass strict_partition=True to forbid this)")
        n_sharp, n_blurred = _scaled([n_sharp, n_blurred], len(pool), notes, "training")
        split, _ = _assign(pool, seed, 3, [("train_sharp", n_sharp), ("train_blurred", n_blurred)])
        split["test"] = test["test"]
    for role, want in (("test", n_test), ("train_sharp", n_sharp), ("train_blurred", n_blurred)):
        if len(split[role]) < want:
            notes.append(f"{role}: {len(split[role])} images instead of {want} (whole identities are kept "
                         "in one set, so some were left over)")
    return split


# ----------------------------------------------------------------------------------------------- output


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
    # which other images exist or on the order the workers handle them.
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


def _default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _map(fn: Callable, items: list, workers: int) -> Iterable:
    if workers <= 1 or len(items) < 2:
        yield from map(fn, items)
        return
    # fork where available: a caller's script without a __main__ guard still works (as in text.py)
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ctx.Pool(workers) as pool:
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


def _prepare(kind: str, src: Path, out: Path, split: dict[str, list[Source]], notes: list[str],
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
    workers = _default_workers() if workers is None else workers
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


# -------------------------------------------------------------------------------------------- datasets


def _check_out(src: Path, out: Path) -> None:
    # An output inside the source would be listed as source images by a rerun and change the split.
    if out.resolve().is_relative_to(src.resolve()):
        raise DatasetError(f"{out}: the output folder must not be inside the source folder {src}")


def _image_sources(root: Path, group: Callable[[str], str] | None = None) -> list[Source]:
    files = list_images(root)
    out = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        out.append(Source(str(path), rel, group(rel) if group else rel))
    return out


def _find_file(src: Path, names: Sequence[str]) -> Path | None:
    for name in names:
        for base in (src, src / "Eval", src / "Anno", src.parent):
            if (base / name).is_file():
                return base / name
    return None


def _read_table(path: Path) -> dict[str, str]:
    """CelebA's 'file value' text tables (list_eval_partition.txt, identity_CelebA.txt)."""
    table: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DatasetError(f"{path}:{lineno}: expected '<file> <value>', got {line!r}")
        table[parts[0]] = parts[1]
    return table


def prepare_celeba(src: str | os.PathLike, out: str | os.PathLike, seed: int = 0, n_sharp: int = CELEBA_SHARP,
                   n_blurred: int = CELEBA_BLURRED, n_test: int = CELEBA_TEST, blur: BlurConfig | None = None,
                   size: int | None = None, workers: int | None = None, use_partition: bool = True,
                   strict_partition: bool = False, progress: bool = True) -> dict[str, Any]:
    """CelebA (``src/img_align_celeba/*.jpg``, or the jpgs directly in ``src``) -> the paper's split.

    100K sharp and 100K blurred training images from different source images and 2,137 paired test images
    by default; fewer available images scale the counts down proportionally (with a warning).
    ``list_eval_partition.txt`` (in ``src``, ``src/Eval`` or beside ``src``), if found and
    ``use_partition``: test images come from partition 2. Training then uses partitions 0/1, topped up
    with unused partition-2 identities if that is needed for the requested counts (CelebA's partitions
    0+1 hold 182,637 images, fewer than 200K) unless ``strict_partition``. ``identity_CelebA.txt``, if
    found, keeps each identity in one set only. ``size`` resizes the shorter side before blurring.
    Returns the manifest.
    """
    src, out = Path(src).expanduser(), Path(out).expanduser()
    root = src / "img_align_celeba" if (src / "img_align_celeba").is_dir() else src
    if not root.is_dir():
        raise DatasetError(f"{src}: no such folder (expected CelebA's img_align_celeba/ or its jpg files)")
    _check_out(root, out)
    ident_file = _find_file(src, ["identity_CelebA.txt"])
    ident = _read_table(ident_file) if ident_file else {}
    sources = _image_sources(root, lambda rel: "id:" + ident[rel] if rel in ident else rel)
    if not sources:
        raise DatasetError(f"{root}: no image files found (expected CelebA's 000001.jpg, ...)")
    notes: list[str] = []
    part_file = _find_file(src, ["list_eval_partition.txt"]) if use_partition else None
    if part_file:
        part = _read_table(part_file)
        test_pool = [s for s in sources if part.get(s.rel) == "2"]
        train_pool = [s for s in sources if part.get(s.rel) != "2"]
        if ident:  # a test identity must not reappear in training through a partition-0/1 image
            test_ids = {s.group for s in test_pool}
            train_pool = [s for s in train_pool if s.group not in test_ids]
        # Topping training up from the test partition is only safe when identities are known: otherwise the
        # extra images would share identities with the test faces.
        top_up = not strict_partition and bool(ident)
        if not strict_partition and not ident:
            notes.append("no identity_CelebA.txt found: training is NOT topped up from the test partition "
                         "(its identities could not be kept apart from the test faces)")
        split = split_sources(train_pool, seed, n_sharp, n_blurred, n_test, test_pool=test_pool, notes=notes,
                              top_up_from_test_pool=top_up)
    else:
        split = split_sources(sources, seed, n_sharp, n_blurred, n_test, notes=notes)
    extra = {"partition_file": str(part_file) if part_file else None,
             "identity_file": str(ident_file) if ident_file else None}
    return _prepare("celeba", src, out, split, notes, {"train_sharp": n_sharp, "train_blurred": n_blurred,
                    "test": n_test}, seed, blur, size, 3, workers, progress, extra)


def _cfp_root(src: Path) -> Path:
    for cand in (src / "Data" / "Images", src / "Images", src):
        if cand.is_dir() and any(p.is_dir() and (p / "frontal").is_dir() for p in cand.iterdir()):
            return cand
    raise DatasetError(f"{src}: not a CFP folder (expected Data/Images/<subject>/frontal|profile/*.jpg)")


def prepare_cfp(src: str | os.PathLike, out: str | os.PathLike, seed: int = 0, n_test_subjects: int = 50,
                views: Sequence[str] = ("frontal", "profile"), blur: BlurConfig | None = None,
                size: int | None = None, workers: int | None = None, progress: bool = True) -> dict[str, Any]:
    """CFP (``Data/Images/<001..500>/{frontal,profile}/*.jpg``) split BY SUBJECT.

    ``n_test_subjects`` subjects (scaled down for fewer than 500 subjects) give the paired test set; the
    remaining subjects are halved between the sharp and the blurred training sets, so the three sets'
    identities are disjoint. Returns the manifest.
    """
    src, out = Path(src).expanduser(), Path(out).expanduser()
    root = _cfp_root(src)
    _check_out(root, out)
    sources = [s for s in _image_sources(root, lambda rel: rel.split("/", 1)[0])
               if len(s.rel.split("/")) == 3 and s.rel.split("/")[1] in views]
    subjects = sorted({s.group for s in sources})
    if len(subjects) < 3:
        raise DatasetError(f"{root}: {len(subjects)} subject folder(s) with images; need at least 3 "
                           "(test, sharp and blurred identities must differ)")
    notes: list[str] = []
    n_test_subj = n_test_subjects
    if len(subjects) < 500:
        n_test_subj = max(1, round(n_test_subjects * len(subjects) / 500))
        notes.append(f"{len(subjects)} subjects instead of CFP's 500: {n_test_subj} test subjects")
    n_test_subj = min(n_test_subj, len(subjects) - 2)
    order = np.random.default_rng([seed % 2**64, 4]).permutation(len(subjects))
    shuffled = [subjects[k] for k in order]
    rest = shuffled[n_test_subj:]
    half = (len(rest) + 1) // 2
    role_of = {**{s: "test" for s in shuffled[:n_test_subj]}, **{s: "train_sharp" for s in rest[:half]},
               **{s: "train_blurred" for s in rest[half:]}}
    split: dict[str, list[Source]] = {role: [] for role in ROLES}
    for s in sources:
        split[role_of[s.group]].append(s)
    subjects_of = {role: sorted({s.group for s in split[role]}) for role in ROLES}
    return _prepare("cfp", src, out, split, notes, {"test_subjects": n_test_subjects}, seed, blur, size, 3,
                    workers, progress, {"views": list(views), "subjects": subjects_of})


def prepare_folder(src: str | os.PathLike, out: str | os.PathLike, seed: int = 0, n_test: int | None = None,
                   n_sharp: int | None = None, n_blurred: int | None = None, test_fraction: float = 0.05,
                   group_by_subfolder: bool = False, channels: int | None = None,
                   blur: BlurConfig | None = None, size: int | None = None, workers: int | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """Any folder of sharp images -> sharp / synthetic-blurred training sets and paired test set.

    Defaults: ``test_fraction`` of the images (at least 1) for test, the rest halved between sharp and
    blurred. ``group_by_subfolder`` keeps each first-level sub-folder (e.g. one person) in one set.
    ``channels`` None keeps each image's own (gray stays gray), 1 or 3 converts. Returns the manifest.
    """
    src, out = Path(src).expanduser(), Path(out).expanduser()
    if not src.is_dir():
        raise DatasetError(f"{src}: no such folder")
    if channels not in (None, 1, 3):
        raise DatasetError(f"channels must be 1, 3 or None, got {channels}")
    _check_out(src, out)
    sources = _image_sources(src, (lambda rel: rel.split("/", 1)[0]) if group_by_subfolder else None)
    if len(sources) < 3:
        raise DatasetError(f"{src}: {len(sources)} image file(s) found; need at least 3 (test, sharp, blurred)")
    test = n_test if n_test is not None else max(1, round(test_fraction * len(sources)))
    rest = max(0, len(sources) - test)
    sharp = n_sharp if n_sharp is not None else (rest + 1) // 2
    blurred = n_blurred if n_blurred is not None else rest // 2
    notes: list[str] = []
    split = split_sources(sources, seed, sharp, blurred, test, notes=notes)
    return _prepare("folder", src, out, split, notes, {"train_sharp": sharp, "train_blurred": blurred,
                    "test": test}, seed, blur, size, channels, workers, progress,
                    {"group_by_subfolder": group_by_subfolder})


__all__ = ["Source", "prepare_celeba", "prepare_cfp", "prepare_folder", "split_sources"]

"""Deblurring files and folders: their output names (``plan_outputs``) and the threaded read/deblur/write pipeline.

``Deblurrer.deblur_paths`` is the entry point; this module knows nothing of the network, only the two functions it
is given: which images fit one pass (those are batched together) and how to deblur a group of them.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ..imageio import ImageData, ImageReadError, list_images, read_image, save_png

__all__ = ["DeblurBatchError", "deblur_files", "plan_outputs"]


class DeblurBatchError(ValueError):
    """Some files of a batch could not be deblurred. Raised after all the others were written.

    ``failed`` lists (path, problem); ``written`` the outputs that were written.
    """

    def __init__(self, failed: list[tuple[Path, str]], written: list[Path]):
        self.failed = failed
        self.written = written
        names = ", ".join(str(p) for p, _ in failed[:5]) + (", ..." if len(failed) > 5 else "")
        total = len(failed) + len(written)
        super().__init__(f"{len(failed)} of {total} image(s) could not be deblurred: {names}")


def deblur_files(
    plan: Sequence[tuple[Path, Path]],
    deblur_group: Callable[[list[ImageData]], list[ImageData]],
    fits_one_pass: Callable[[ImageData], bool],
    *,
    batch: int = 1,
    io_workers: int = 2,
    progress: bool = True,
    on_error: Callable[[Path, str], None] | None = None,
    max_megapixels: float | None = None,
) -> list[Path]:
    """Deblur every (source, output PNG) of ``plan``; what ``Deblurrer.deblur_paths`` documents.

    ``io_workers`` threads decode ahead and one thread encodes behind while ``deblur_group`` runs; consecutive
    images of one shape that ``fits_one_pass`` go to it ``batch`` at a time, any other image alone.
    """
    from tqdm import tqdm

    outcome: dict[int, str | None] = {}  # plan index -> None (written) or the problem
    # disable=None: tqdm shows the bar only on a terminal
    bar = tqdm(total=len(plan), desc="deblur", unit="img", disable=None if progress else True, file=sys.stderr)

    def report(i: int, problem: str | None) -> None:
        outcome[i] = problem
        bar.update(1)
        if problem is not None:
            if on_error is not None:
                on_error(plan[i][0], problem)
            else:
                tqdm.write(f"skipped {plan[i][0]}: {problem}", file=sys.stderr)

    def read(i: int) -> ImageData:
        return read_image(plan[i][0], max_megapixels)

    def write(i: int, data: ImageData) -> None:
        save_png(plan[i][1], data.pixels, data.alpha, data.bits)

    lookahead = max(2 * batch, io_workers + 1)
    with ThreadPoolExecutor(io_workers, "udeblur-read") as readers, \
            ThreadPoolExecutor(1, "udeblur-write") as writer:
        reads: deque[tuple[int, Future]] = deque()
        writes: deque[tuple[int, Future]] = deque()  # bounded: decoded outputs wait in memory
        upcoming = iter(range(len(plan)))

        def fill() -> None:
            while len(reads) < lookahead and (i := next(upcoming, None)) is not None:
                reads.append((i, readers.submit(read, i)))

        fill()
        while reads:
            group: list[tuple[int, ImageData]] = []
            while reads and len(group) < batch:
                i, fut = reads[0]
                try:
                    data = fut.result()
                except Exception as exc:
                    reads.popleft()
                    report(i, exc.problem if isinstance(exc, ImageReadError) else f"{type(exc).__name__}: {exc}")
                    fill()
                    continue
                if group and not (fits_one_pass(data) and data.pixels.shape == group[0][1].pixels.shape):
                    break  # a new size (or a tiled image) starts the next group
                reads.popleft()
                group.append((i, data))
                fill()
                if not fits_one_pass(data):
                    break  # tiled images go alone
            if not group:
                continue
            try:
                results = deblur_group([d for _, d in group])
            except Exception as exc:  # e.g. out of memory on one huge image: report it, go on with the rest
                for i, _ in group:
                    report(i, f"{type(exc).__name__}: {exc}")
                continue
            for (i, _), out in zip(group, results, strict=True):
                writes.append((i, writer.submit(write, i, out)))
            # report writes as they land (an honest progress bar); wait when too many outputs are pending
            while writes and (writes[0][1].done() or len(writes) > lookahead):
                _finish_write(*writes.popleft(), report)
        for i, fut in writes:
            _finish_write(i, fut, report)
    bar.close()
    written = [plan[i][1] for i in sorted(outcome) if outcome[i] is None]
    failed = [(plan[i][0], p) for i, p in sorted(outcome.items()) if p is not None]
    if failed:
        raise DeblurBatchError(failed, written)
    return written


def _finish_write(i: int, fut: Future, report: Callable[[int, str | None], None]) -> None:
    try:
        fut.result()
    except OSError as exc:  # e.g. output not writable; other files may still succeed
        report(i, f"cannot write ({exc.strerror or exc})")
    except Exception as exc:
        report(i, f"{type(exc).__name__}: {exc}")
    else:
        report(i, None)


def _collect(inputs: Iterable[str | os.PathLike], out_dir: Path) -> list[tuple[Path, Path, Path]]:
    """(source, output path relative to out_dir before clash handling, the folder that path is relative to).

    Files keep their name; folders their tree. A file named twice (a folder and a file in it) is listed once.
    """
    out_real = Path(os.path.realpath(out_dir))
    items: list[tuple[Path, Path, Path]] = []
    seen: set[str] = set()
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise ImageReadError(path, "no such file or folder")
        if path.is_dir():
            every = list_images(path)
            # skip what a previous run wrote when the output folder sits inside the input folder
            found = [p for p in every if out_real not in Path(os.path.realpath(p)).parents]
            if not found and every:
                raise ImageReadError(path, f"all its {len(every)} image(s) are inside the output folder {out_dir}, "
                                     "which is never read as input (it holds outputs); choose an output folder "
                                     f"outside {path}")
            if not found:
                raise ImageReadError(path, "folder contains no image files (.png, .jpg, .tif, ...)")
            listed = [(p, p.relative_to(path), path) for p in found]
        else:
            listed = [(path, Path(path.name), path.parent)]
        for item in listed:
            real = os.path.realpath(item[0])  # realpath, unlike Path.resolve, does not raise on a looping link
            if real not in seen:
                seen.add(real)
                items.append(item)
    return items


def _file_id(path: str | os.PathLike) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def plan_outputs(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike) -> list[tuple[Path, Path]]:
    """Pair every input image with its output PNG under ``out_dir``.

    A file ``x/a.jpg`` -> ``out_dir/a.png``; a folder's files keep their path relative to the folder
    (``photos/2019/b.tif`` -> ``out_dir/2019/b.png``). When inputs with different extensions would get the same
    output (``a.jpg`` and ``a.png``; compared case-insensitively for macOS/Windows), the non-PNG ones keep their
    extension in the name (``a.jpg.png``). Files of one name from different folders (``x/a.png``, ``y/a.png``)
    keep as much of their folder path as tells them apart (``out_dir/x/a.png``, ``out_dir/y/a.png``); a clash
    still left gets ``-2``, ``-3``, ... before ``.png``, in input order.
    Raises ``ImageReadError`` before anything is written for a missing input, a folder without images, or an
    output that would replace one of the inputs.
    """
    out_dir = Path(out_dir)
    items = _collect(inputs, out_dir)
    rels = [rel.with_suffix(".png") for _, rel, _ in items]
    keys = [str(r).casefold() for r in rels]
    suffixes: dict[str, set[str]] = {}
    for key, (_, rel, _) in zip(keys, items, strict=True):
        suffixes.setdefault(key, set()).add(rel.suffix.casefold())
    for i, (_, rel, _) in enumerate(items):
        # a.jpg + a.png: the extension tells them apart
        if len(suffixes[keys[i]]) > 1 and rel.suffix.casefold() != ".png":
            rels[i] = rel.with_name(rel.name + ".png")
    groups: dict[str, list[int]] = {}
    for i, rel in enumerate(rels):
        groups.setdefault(str(rel).casefold(), []).append(i)
    for group in groups.values():
        if len(group) < 2:
            continue
        # the folders' real paths without the root: prefixes of them never leave out_dir
        folders = [Path(os.path.realpath(items[i][2])).parts[1:] for i in group]
        for k in range(1, max(len(f) for f in folders) + 1):
            named = [Path(*f[-k:], rels[i]) for f, i in zip(folders, group, strict=True)]
            if len({str(p).casefold() for p in named}) == len(group):
                break
        for i, p in zip(group, named, strict=True):
            rels[i] = p
    taken: set[str] = set()
    result = []
    for (src, _, _), rel in zip(items, rels, strict=True):
        candidate, n = rel, 1
        while str(candidate).casefold() in taken:
            n += 1
            candidate = rel.with_name(f"{rel.stem}-{n}.png")
        taken.add(str(candidate).casefold())
        result.append((src, out_dir / candidate))
    _refuse_overwriting_inputs(result)
    return result


def _refuse_overwriting_inputs(plan: list[tuple[Path, Path]]) -> None:
    """One check over all outputs against all inputs (same file also through links), before anything is written."""
    inputs = {fid: src for src, _ in plan if (fid := _file_id(src)) is not None}
    for src, dst in plan:
        victim = inputs.get(_file_id(dst))
        if victim is not None:
            whose = "its own output" if victim == src else f"the output of {src}"
            raise ImageReadError(victim, f"this input would be overwritten by {whose} ({dst}); nothing was written: "
                                 "choose an output folder (-o) that holds none of the inputs")

"""Atomic file writes: a crash or Ctrl-C never leaves a half-written file under the final name."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: os.umask can only be read by setting it


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], *, fsync: bool = False) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``.

    The previous file under ``path`` stays intact until the rename. The result gets the usual permissions
    (0666 minus the umask), not mkstemp's private 0600, so outputs are readable like any other file.
    ``fsync``: flush to disk before the rename (checkpoints: survive a power cut, not only a crash).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_partials(path: str | os.PathLike) -> None:
    """Delete temporary files that an ``atomic_write`` to ``path`` killed before its rename left behind.

    Only for files a single writer owns (a run's checkpoint): a concurrent writer's temp file would go too.
    """
    path = Path(path)
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{path.name}.*.partial"):
            stale.unlink(missing_ok=True)

"""Where a run's numbers and pictures go: a JSONL log, TensorBoard, and sample-grid PNGs."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write
from ..imageio import save_png


class RunLogger:
    """Writes ``log.jsonl`` (one JSON object per logged step), TensorBoard scalars/images and samples/*.png.

    Only the main process of a distributed run should own one.
    """

    def __init__(self, run_dir: Path, tensorboard: bool = True, keep_until: int | None = None):
        """``keep_until``: the step the run (re)starts from; records of later steps, written by a run that was
        killed before its next checkpoint, are dropped so that a resumed run does not log those steps twice."""
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if keep_until is not None:
            _truncate_log(self.run_dir / "log.jsonl", keep_until)
        self._jsonl = open(self.run_dir / "log.jsonl", "a", buffering=1)  # noqa: SIM115 - closed in close()
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:  # tensorboard is a dependency, but a stripped install must still train
                self._tb = None

    def scalars(self, step: int, values: dict[str, float]) -> None:
        record: dict[str, Any] = {"step": step, "time": round(time.time(), 3)}
        for k, v in values.items():
            record[k] = None if not math.isfinite(v) else round(float(v), 6)
        self._jsonl.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, v, step)

    def image(self, step: int, name: str, pixels: np.ndarray) -> Path:
        path = self.run_dir / "samples" / f"{name}_{step:08d}.png"
        save_png(path, pixels)
        if self._tb is not None:
            self._tb.add_image(name, pixels, step, dataformats="HWC")
        return path

    def close(self) -> None:
        self._jsonl.close()
        if self._tb is not None:
            self._tb.close()


def _truncate_log(path: Path, last_step: int) -> None:
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    kept = []
    for line in lines:
        try:
            step = int(json.loads(line).get("step", -1))
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
            continue  # a line torn by the kill
        if step <= last_step:
            kept.append(line)
    if len(kept) != len(lines):
        atomic_write(path, lambda tmp: Path(tmp).write_text("".join(line + "\n" for line in kept)))


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    """Records of a run's log.jsonl, one per step, in step order.

    A torn last line from a crash is ignored; steps logged twice (after a crash, a resumed run repeats the
    steps since its last checkpoint) keep their latest record, which belongs to the run that went on.
    """
    by_step: dict[int, dict[str, Any]] = {}
    path = Path(run_dir) / "log.jsonl"
    if not path.exists():
        return []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        by_step[int(rec.get("step", -1))] = rec
    return [by_step[k] for k in sorted(by_step)]

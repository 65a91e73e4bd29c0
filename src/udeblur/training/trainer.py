"""The generic trainer: runs any training method (methods/) with one schedule, loop, logs, sample grids, Ctrl-C
rule, time limit and distributed setup; the checkpoint format and resume rule are in ``training/state.py``, the
precision switch (``train.amp``) in ``training/precision.py``.

    from udeblur import Trainer, load_config
    Trainer(load_config("small"), "runs/small").fit()

``train.method`` picks the method (methods/registry.py; "disentangled", the paper's, by default). The method owns its
networks, optimizers and one step (methods/base.py); everything around the step lives here, so every method
resumes, stops and writes its run folder the same way.

Distributed: under ``torchrun`` (RANK/WORLD_SIZE in the environment) the trainer joins the process group, splits
the GLOBAL batch ``train.batch_size`` over the ranks and the method averages each optimizer group's gradients across
ranks before clipping and stepping; only rank 0 logs and writes files. See ``training/distributed.py`` for why this
is a manual all-reduce rather than DDP, and how the noise is kept identical to a single-process run.

Speed switches (``train.*``): ``amp`` (training/precision.py); ``channels_last`` (NHWC networks and inputs);
``compile`` (``nn.Module.compile`` on what the method's step calls, which keeps state-dict keys unchanged so
checkpoints stay interchangeable).
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import ConfigError, ExperimentConfig, TrainConfig
from ..device import resolve_device as _resolve_device
from ..losses.terms import BAR_KEYS
from ..methods.base import Method, MethodContext, TrainingError
from ..methods.registry import get_method
from ..visualize import image_grid
from . import distributed
from .precision import resolve_amp, run_precision
from .run_logger import RunLogger
from .state import (
    CHECKPOINT_NAME,
    EXPORT_NAME,
    RESUMABLE_OVERRIDES,
    merge_resume_config,
    read_checkpoint,
    restore_training_state,
    save_run_state,
    training_state,
)


def resolve_device(name: str) -> torch.device:
    """udeblur.device.resolve_device, with the config key in the error."""
    try:
        return _resolve_device(name)
    except ValueError as exc:
        raise TrainingError(f"train.device: {exc}") from exc


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Constant for the first ``lr_decay_start`` of training, then decays to ``lr_final_ratio`` at the end.

    "exponential" is the paper's schedule, "linear" the authors' code (DRIT's lambda rule).
    """
    start = int(cfg.lr_decay_start * cfg.total_steps)
    if cfg.lr_decay == "none" or step < start:
        return 1.0
    frac = min(1.0, (step - start) / max(1, cfg.total_steps - 1 - start))
    if cfg.lr_decay == "exponential":
        return cfg.lr_final_ratio**frac
    return 1.0 - frac * (1.0 - cfg.lr_final_ratio)


class Trainer:
    """Runs the method ``cfg.train.method`` in ``run_dir``; ``trainer.method`` is the :class:`Method` it trains."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        run_dir: str | Path,
        resume: bool = False,
        progress: bool = True,
        data_root: str | Path | None = None,
    ):
        self.run_dir = Path(run_dir)
        # joins the torchrun job if there is one (no-op in a single process)
        self.dist = distributed.setup(cfg.train.device)
        ckpt_path = self.run_dir / CHECKPOINT_NAME
        state: dict[str, Any] | None = None
        if ckpt_path.exists():
            if not resume:
                raise TrainingError(
                    f"{self.run_dir} already holds a checkpoint ({ckpt_path}); pass --resume to continue it "
                    "or choose another output folder"
                )
            state = read_checkpoint(ckpt_path)
            cfg = merge_resume_config(state["config"], cfg)
        self.cfg = cfg
        self.progress = progress
        method_class = get_method(cfg.train.method)  # an unknown name fails before any work
        self.device = resolve_device(cfg.train.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)  # one GPU per process
        t = cfg.train
        if t.batch_size % self.dist.world_size:
            raise ConfigError(
                f"train.batch_size={t.batch_size} is the global batch and must be divisible by the world size "
                f"{self.dist.world_size} (each process takes batch_size / world_size samples)"
            )
        if t.unpaired_batch % self.dist.world_size:
            raise ConfigError(f"train.unpaired_batch={t.unpaired_batch} must be divisible by the world size "
                              f"{self.dist.world_size}")
        self.amp = run_precision(t.amp, self.device)  # "auto" is decided once, here, for the whole run
        # the same seed on every rank: identical initial weights and an identical noise RNG (see distributed.py)
        torch.manual_seed(t.seed)
        self.step = 0
        self.method: Method = method_class(cfg, MethodContext(self.device, self.amp, self.dist, ckpt_path, progress))
        if state is not None:
            self.step = restore_training_state(state, self.method, self.device, ckpt_path)
        elif t.init_from:
            self.method.init_from(Path(t.init_from).expanduser())
        # DDP's guarantee: all ranks start from rank 0's weights, whatever happened above
        for net in self.method.networks().values():
            distributed.broadcast_module(net, self.dist)
        self._compile_pending = False
        if t.compile:
            if not hasattr(nn.Module, "compile"):
                raise ConfigError("train.compile=true needs torch >= 2.2 (nn.Module.compile)")
            self.method.compile()  # lazy: failures surface at the first step
            self._compile_pending = True
        self._data_root = data_root
        self._sample_batch: Any = None
        self.interrupted = False  # fit() stopped early on Ctrl-C/SIGINT (after saving): the command exits non-zero

    # ------------------------------------------------------------------ setup
    def _data(self):
        from ..data.builtin import resolve_data_root

        # rank 0 generates the built-in data (if needed) before the others look at the folder
        if self.dist.is_main:
            root = self._data_root or resolve_data_root(self.cfg, progress=self.progress)
        distributed.barrier(self.dist)
        if not self.dist.is_main:
            root = self._data_root or resolve_data_root(self.cfg, progress=False)
        return self.method.make_data(Path(root), self.step)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The checkpoint: step, config and RNG state here, everything else the method's (training/state.py)."""
        return training_state(self.step, self.cfg, self.method, self.device)

    def save(self) -> Path:
        """Full state (atomic) plus the inference-only export beside it. Only rank 0 writes."""
        if not self.dist.is_main:
            return self.run_dir / CHECKPOINT_NAME
        return save_run_state(self.run_dir, self.state_dict(), self.method, self.cfg)

    # ------------------------------------------------------------------ one iteration
    def train_step(self, batch: Any) -> dict[str, float]:
        """One iteration of the method at the scheduled learning rate. Returns the logged numbers.

        ``batch`` is this process's share of the global batch (all of it in a single process).
        """
        lr = self.cfg.train.lr * lr_factor(self.step, self.cfg.train)
        self.method.set_lr(lr)
        if self._compile_pending:
            try:
                logs = self.method.train_step(batch, self.step)
            except TrainingError:
                raise
            except Exception as exc:  # compilation happens here, lazily; say which switch to turn off
                raise TrainingError(
                    f"train.compile=true: torch.compile failed at the first step ({type(exc).__name__}: "
                    f"{str(exc)[:500]}); set train.compile=false"
                ) from exc
            self._compile_pending = False
        else:
            logs = self.method.train_step(batch, self.step)
        self.step += 1
        return {"lr": lr, **logs}

    # ------------------------------------------------------------------ samples
    def sample_grid(self) -> Any:
        """The method's preview rows on a fixed batch, as one image (None before fit made the batch)."""
        if self._sample_batch is None:
            return None
        with torch.no_grad(), torch.random.fork_rng(devices=[]):  # samples must not shift the training RNG stream
            rows = self.method.preview(self._sample_batch)
        return image_grid(rows) if rows else None

    # ------------------------------------------------------------------ loop
    def fit(self, max_steps: int | None = None, time_limit: float | None = None) -> Path:
        """Train until ``train.total_steps`` (or ``max_steps`` more steps, or ``time_limit`` seconds).

        Returns the checkpoint path. Ctrl-C finishes the current step, saves a checkpoint and stops, so nothing is
        lost and the resumed run is still exact; a second Ctrl-C stops at once and keeps the last checkpoint.
        A run stopped early continues with ``resume=True``.
        """
        started = time.perf_counter()
        t = self.cfg.train
        end = t.total_steps if max_steps is None else min(t.total_steps, self.step + max_steps)
        main = self.dist.is_main  # only rank 0 writes files, logs and shows progress
        logger: RunLogger | None = None
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(self.cfg.to_yaml())
            logger = RunLogger(self.run_dir, tensorboard=t.tensorboard, keep_until=self.step)
        data = self._data()
        if main:
            self._sample_batch = data.preview_batch()
            self.method.on_fit_start(self.run_dir)
        bar = tqdm(total=end, initial=self.step, disable=not (self.progress and main), desc=self.cfg.name,
                   unit="it", dynamic_ncols=True)
        it = iter(data.batches)
        last_time, last_step, saved_step = time.perf_counter(), self.step, None
        stop = _GracefulStop()
        try:
            while self.step < end:
                if time_limit is not None:
                    # every rank must stop at the same step, or the others would wait forever in all-reduce
                    over = distributed.any_rank(time.perf_counter() - started > time_limit, self.dist, self.device)
                    if over:
                        bar.write(f"time limit of {time_limit:.0f} s reached at step {self.step}")
                        break
                logs = self.train_step(next(it))
                bar.update(1)
                final = self.step == end
                if logger is not None and (self.step % t.log_every == 0 or final):
                    now = time.perf_counter()
                    logs["sec_per_it"] = (now - last_time) / max(1, self.step - last_step)
                    last_time, last_step = now, self.step
                    logger.scalars(self.step, logs)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items() if k in BAR_KEYS})
                if logger is not None and (self.step % t.sample_every == 0 or final):
                    grid = self.sample_grid()
                    if grid is not None:
                        logger.image(self.step, "samples", grid)
                if (self.step % t.checkpoint_every == 0 or final
                        or (t.snapshot_every > 0 and self.step % t.snapshot_every == 0)):
                    self.save()
                    saved_step = self.step
                if distributed.any_rank(stop.requested, self.dist, self.device):
                    bar.write(f"stopping at step {self.step} (Ctrl-C); saving")
                    self.interrupted = True
                    break
            if saved_step != self.step:  # stopped early (time limit): keep a sample and the weights
                grid = self.sample_grid() if logger is not None else None
                if logger is not None and grid is not None:
                    logger.image(self.step, "samples", grid)
                self.save()
        except KeyboardInterrupt:
            # raised inside a step: weights and optimizer state may be half-updated, so keep the last checkpoint
            bar.write(f"interrupted inside step {self.step + 1}: the last checkpoint ({self.run_dir / CHECKPOINT_NAME})"
                      " is kept")
            raise
        finally:
            stop.restore()
            bar.close()
            if logger is not None:
                logger.close()
            del it
        # the others wait for rank 0's last checkpoint, so every rank returns a path that exists
        distributed.barrier(self.dist)
        bad_files = data.bad_files()
        if bad_files:
            where = f" (rank {self.dist.rank})" if self.dist.enabled else ""
            print(f"warning{where}: {len(bad_files)} unreadable image file(s) were skipped during training")
        return self.run_dir / CHECKPOINT_NAME


class _GracefulStop:
    """First Ctrl-C asks the loop to stop after the current step; a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def train(cfg: ExperimentConfig, run_dir: str | Path, resume: bool = False, progress: bool = True) -> Path:
    """Train a model and return the path of its final checkpoint (the export sits in run_dir/deblur.safetensors)."""
    return Trainer(cfg, run_dir, resume=resume, progress=progress).fit()


__all__ = ["CHECKPOINT_NAME", "EXPORT_NAME", "RESUMABLE_OVERRIDES", "Trainer", "TrainingError", "lr_factor",
           "resolve_amp", "resolve_device", "train"]

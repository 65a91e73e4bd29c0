"""The training-method contract: what a method owns, and what the generic trainer (training/trainer.py) does for it.

A method owns its networks, its optimizers and one training step; the trainer owns everything around a step:
the learning-rate schedule, the loop, checkpoints (``step``, ``config`` and the RNG state are the trainer's; every
other top-level entry is the method's ``state_dict()``), logs, sample grids, Ctrl-C, time limits and the
distributed setup. So every method gets the same resume rule, the same Ctrl-C rule and the same run folder.

Contract (see methods/template.py for a runnable, commented example):

* ``__init__(cfg, ctx)``: build the networks and optimizers, in a fixed order (the trainer has seeded torch's RNG
  just before, so the order fixes the initial weights);
* ``networks()``: the ``nn.Module``s it trains (broadcast from rank 0 under torchrun, compiled with train.compile);
* ``optimizers()``: its optimizer groups; the trainer sets their learning rate each step;
* ``train_step(batch, step) -> logs``: one iteration on this process's share of the batch; floats to log;
* ``deblur_net()``: the deblurring path the run exports (``deblur.safetensors``), a :class:`~udeblur.model.DeblurNet`;
* ``preview(batch)``: rows of images (H x W x C in [0, 1]) for the sample grids, deterministic;
* ``state_dict()`` / ``load_state_dict(state)``: everything it owns, as plain tensors and containers;
* ``make_data(root, start_step)``: its training batches (by default the unpaired sharp/blurred stream).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import ConfigError, ExperimentConfig
from ..model import DeblurNet
from ..training import distributed, precision


class TrainingError(RuntimeError):
    """Training cannot go on (diverged, or the run folder is in an unexpected state)."""


# consecutive fp16 overflow skips tolerated before the run is declared diverged (GradScaler halves the scale each
# time: 30 halvings take the default 65536 down to ~6e-5)
MAX_AMP_SKIPS = 30


@dataclass
class MethodContext:
    """What the trainer decided before building the method: where it runs and how."""

    device: torch.device
    amp: str  # "none", "bf16" or "fp16", as resolved for this run
    dist: distributed.DistInfo
    checkpoint: Path  # named in divergence messages: where to resume from
    progress: bool = True


@dataclass
class TrainData:
    """A method's training data: an endless stream of batches starting at the trainer's step, and a fixed batch
    for sample grids (made on rank 0 only, after the stream, so it never shifts the stream)."""

    batches: Iterable[Any]
    preview_batch: Callable[[], Any] = lambda: None
    bad_files: Callable[[], list] = field(default=lambda: [])
    dataset: Any = None  # what the batches come from, for callers that inspect it (its files)


class Method:
    """Base class of training methods; subclasses fill in the contract above."""

    name = "method"
    export_suffix = ""  # appended to the run's name in the exported model file's metadata

    def __init__(self, cfg: ExperimentConfig, ctx: MethodContext):
        self.cfg = cfg
        self.ctx = ctx
        self.device = ctx.device
        self.dist = ctx.dist
        self.amp = ctx.amp
        self._amp_skips = 0

    # ------------------------------------------------------------------ the contract
    def networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, batch: Any, step: int) -> dict[str, float]:
        raise NotImplementedError

    def deblur_net(self) -> DeblurNet:
        raise NotImplementedError

    def preview(self, batch: Any) -> list[list[np.ndarray]] | None:
        return None

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def make_data(self, root: Path, start_step: int) -> TrainData:
        """The unpaired sharp/blurred stream (data/datasets/), this rank's share of the global batch."""
        from ..config import replace
        from ..data.datasets import make_train_loader

        # train.batch_size is the global batch; the sampler hands each rank its share of the global key list
        world = self.dist.world_size
        unpaired = self.cfg.train.unpaired_batch
        cfg = replace(self.cfg, data={"root": str(root)},
                      train={"batch_size": self.cfg.train.batch_size // world, "unpaired_batch": unpaired // world})
        loader, dataset = make_train_loader(cfg, start_step=start_step, rank=self.dist.rank, world_size=world,
                                            unpaired_batch=unpaired)
        # DataLoader draws its workers' base seed from the global RNG unless it has its own generator;
        # that draw would shift the training RNG stream differently in a resumed run.
        loader.generator = torch.Generator().manual_seed(self.cfg.train.seed)
        return TrainData(loader, lambda: _fixed_batch(dataset, 4, self.cfg.train.seed),
                         lambda: getattr(dataset, "bad_files", None) or [], dataset)

    # ------------------------------------------------------------------ optional hooks
    def init_from(self, path: Path) -> None:
        """Warm start from a model file (``train.init_from``)."""
        raise ConfigError(f"train.init_from: the {self.name} method has no warm start")

    def compile(self) -> None:
        """torch.compile what the step calls (``Module.compile`` works in place: state-dict keys unchanged)."""
        for net in self.networks().values():
            net.compile()

    def on_fit_start(self, run_dir: Path) -> None:
        """Rank 0, before the first step of ``fit``: notes the method wants in the run folder."""

    # ------------------------------------------------------------------ helpers for subclasses
    def set_lr(self, lr: float) -> None:
        for opt in self.optimizers().values():
            for group in opt.param_groups:
                group["lr"] = lr

    def autocast(self) -> contextlib.AbstractContextManager:
        """The run's precision (``train.amp`` as the trainer resolved it) around a forward pass."""
        return precision.autocast(self.amp, self.device)

    def backward_step(self, loss: torch.Tensor, module: nn.Module, opt: torch.optim.Optimizer, group: str,
                      terms: dict[str, torch.Tensor], step: int,
                      scaler: torch.amp.GradScaler | None = None) -> tuple[float, dict[str, float]]:
        """Backward, (distributed) gradient averaging, clipping and the optimizer step of one group.

        Returns the gradient norm and the loss terms as floats (averaged over all ranks when distributed, so
        rank 0 logs global-batch numbers and every rank takes the same decision on a non-finite loss).
        """
        values = torch.stack([v.detach().float().reshape(()) for v in terms.values()])
        if not self.dist.enabled:
            self.check_finite(values, terms, group, step)  # before backward: no wasted work on a diverged loss
        opt.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        params = [p for p in module.parameters() if p.grad is not None]
        if self.dist.enabled:
            # one flat all-reduce: gradients and loss terms together (distributed.py explains why not DDP)
            values = distributed.all_reduce_gradients(params, self.dist, values)
            self.check_finite(values, terms, group, step)
        if scaler is not None:
            scaler.unscale_(opt)
        clip = self.cfg.train.grad_clip if self.cfg.train.grad_clip > 0 else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(params, clip)) if params else 0.0
        if not math.isfinite(norm):
            if scaler is not None:
                # fp16 gradient overflow: GradScaler skips this step and lowers the scale. Only a long run of
                # skips means real divergence.
                scaler.step(opt)
                scaler.update()
                self._amp_skips += 1
                if self._amp_skips <= MAX_AMP_SKIPS:
                    return norm, dict(zip(terms, values.tolist(), strict=True))
            raise TrainingError(
                f"step {step}: non-finite {group} gradient norm. Lower train.lr, set train.grad_clip, "
                f"or resume from {self.ctx.checkpoint}"
            )
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
            self._amp_skips = 0
        else:
            opt.step()
        return norm, dict(zip(terms, values.tolist(), strict=True))

    def check_finite(self, values: torch.Tensor, terms: dict[str, torch.Tensor], group: str, step: int) -> None:
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            bad = [k for k, ok in zip(terms, finite.tolist(), strict=True) if not ok]
            raise TrainingError(
                f"step {step}: {group} loss is not finite (terms {bad or list(terms)}). Lower train.lr, "
                f"set train.grad_clip, or resume from {self.ctx.checkpoint}"
            )


def _fixed_batch(dataset: Any, n: int, seed: int) -> dict[str, torch.Tensor]:
    """A batch that stays the same all run long, for comparable sample grids."""
    n_sharp, n_blurred = len(dataset.files["sharp"]), len(dataset.files["blurred"])
    items = [dataset[(i % n_sharp, i % n_blurred, seed * 1000 + i)] for i in range(n)]
    return {k: torch.stack([item[k] for item in items]) for k in ("sharp", "blurred")}


def endless(batch_of_step: Callable[[int], Any], start_step: int) -> Iterator[Any]:
    """Batches that are a pure function of the step, from ``start_step`` on (exact resume for free)."""
    step = start_step
    while True:
        yield batch_of_step(step)
        step += 1


__all__ = ["MAX_AMP_SKIPS", "Method", "MethodContext", "TrainData", "TrainingError", "endless"]

"""Data-parallel training on torch.distributed, launched by ``torchrun``.

    torchrun --nproc_per_node 4 -m udeblur.cli.main train -c paper --data faces -o runs/faces
    torchrun --nnodes 2 --node_rank 0 --rdzv_backend c10d --rdzv_endpoint host:29500 --nproc_per_node 8 \
        -m udeblur.cli.main train ...        (multi-node: the usual rendezvous flags; run folder on a shared disk)

Design (why it is not ``nn.parallel.DistributedDataParallel``):

* **Gradient synchronisation.** The objective calls sub-networks directly (``translator.content.encode_sharp``,
  ``translator.gen.to_sharp``, ``discs.sharp``, ``functional_call(translator.blur, ...)``), never the top module's
  ``forward``. DDP prepares its gradient reducer in ``DDP.forward``; calls that bypass it leave the reducer
  unprepared (errors such as "Expected to have finished reduction in the prior iteration", or silently unsynced
  gradients). The G step also runs the discriminators with ``requires_grad=False`` and the D step runs on detached
  fakes, which DDP could only follow with ``find_unused_parameters=True`` and a graph walk every step. Instead,
  after each ``backward`` and before clipping/stepping, :func:`all_reduce_gradients` averages the gradients of
  that optimizer group across ranks in ONE flat all-reduce (plus the loss terms, for a global-batch log and a
  rank-consistent NaN check). That is exactly DDP's arithmetic (mean of per-rank mean gradients = gradient of the
  global-batch mean loss, because every loss term is a per-sample mean and ranks have equal batches) and it works
  for any call pattern, both optimizer groups and any ``g_every``. What it gives up is DDP's overlap of the
  all-reduce with the backward pass; the cost is one all-reduce of the group's parameters per update
  (about 22 M generator-side / 33 M discriminator-side floats for the paper's model).
* **Batch.** ``train.batch_size`` is the GLOBAL batch; each of ``world_size`` ranks takes ``batch_size /
  world_size`` samples (it must divide). The sampler's global key stream depends only on (seed, step, global
  batch), so the data a step sees does not depend on the world size, and a checkpoint resumes in any world size.
* **Randomness.** All ranks seed the same RNG and, through ``udeblur.archs.noise.sharded_noise``, draw the noise
  of the whole global batch and keep their own rows. Every sample gets independent noise, the RNG state stays
  identical on all ranks (rank 0 saves it), and a run on N processes equals the 1-process run with the same
  global batch up to floating-point summation order (tests/test_distributed.py checks 2 vs 1 processes).
* **Side effects** (logs, sample grids, checkpoints, the progress bar, built-in data generation) happen on rank 0
  only; the other ranks wait at a barrier where they need rank 0's files.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job. ``world_size == 1``: not distributed."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """The job layout torchrun (or any launcher setting RANK / WORLD_SIZE / LOCAL_RANK) put in the environment."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise RuntimeError(f"bad RANK/WORLD_SIZE/LOCAL_RANK in the environment: {exc}") from exc
    return DistInfo(rank, local, world)


def current() -> DistInfo:
    """The layout of the initialised process group (or single-process)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), env_info().local_rank, dist.get_world_size())
    return DistInfo()


def setup(device: str = "auto", timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group described by the environment, if there is one (idempotent).

    Backend: NCCL when training on CUDA, gloo on the CPU. A single process (no WORLD_SIZE, or 1) stays as it is.
    """
    if dist.is_available() and dist.is_initialized():
        return current()
    info = env_info()
    if not info.enabled:
        return info
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        # one GPU per process: LOCAL_RANK picks it (before NCCL initialises, so it binds the right device)
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_s))
    return current()


def cleanup() -> None:
    """Leave the process group (a no-op when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_module(module: nn.Module, info: DistInfo, src: int = 0) -> None:
    """Make every rank's parameters and buffers equal to rank ``src``'s (as DDP does at construction)."""
    if not info.enabled:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src)


def all_reduce_gradients(params: Sequence[torch.nn.Parameter], info: DistInfo,
                         extra: torch.Tensor | None = None) -> torch.Tensor | None:
    """Average the gradients of ``params`` over ranks in place, in one flat all-reduce; also average ``extra``.

    Parameters whose ``grad`` is None are left out (the same set on every rank: it depends only on the config and
    on whether this is a generator turn). The number of gradients is reduced along, so a rank whose set differs is
    detected instead of silently mixing up tensors. Returns the averaged ``extra``.
    """
    if not info.enabled:
        return extra
    grads = [p.grad for p in params if p.grad is not None]
    ref = grads[0] if grads else (extra if extra is not None else torch.zeros(1))
    parts = [g.reshape(-1).to(torch.float32) for g in grads]
    if extra is not None:
        parts.append(extra.detach().reshape(-1).to(device=ref.device, dtype=torch.float32))
    count = torch.tensor([float(len(grads)), float(len(grads)) ** 2], device=ref.device)
    flat = torch.cat([*parts, count])
    flat.div_(info.world_size)
    dist.all_reduce(flat)
    n, n2 = float(flat[-2]), float(flat[-1])
    if abs(n - len(grads)) > 1e-3 or abs(n2 - len(grads) ** 2) > 1e-3:  # mean and mean square: all equal
        raise RuntimeError(f"ranks disagree on which parameters have gradients (this rank: {len(grads)}); "
                           "the objective must not depend on the rank")
    offset = 0
    for g in grads:
        size = g.numel()
        g.copy_(flat[offset:offset + size].view_as(g))
        offset += size
    if extra is None:
        return None
    return flat[offset:offset + extra.numel()].view(extra.shape)


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any rank (so all ranks take the same branch, e.g. stop)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


__all__ = [
    "DistInfo",
    "all_reduce_gradients",
    "any_rank",
    "barrier",
    "broadcast_module",
    "cleanup",
    "current",
    "env_info",
    "setup",
]

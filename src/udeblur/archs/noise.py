"""Training noise (content-code noise, reparameterisation, random blur codes) drawn per *global* sample.

Every stochastic draw of the model goes through :func:`noise_like`. In a single process it is exactly
``torch.randn`` of the tensor's shape (so results are unchanged). Inside :func:`sharded_noise` (set by the
trainer in a distributed run) each rank draws the noise of the WHOLE global batch from an RNG that is in the
same state on every rank, and keeps only its own rows. Rank ``r`` with local batch ``n`` therefore gets exactly
the rows ``[r*n, (r+1)*n)`` that a single process would draw for the global batch of ``n * world_size``:

* a distributed run equals the single-process run with the same global batch (up to float summation order),
* every sample still gets its own independent noise (no two ranks share noise),
* the RNG state is identical on all ranks, so one saved state resumes a run in ANY world size.

The price is drawing ``world_size`` times the noise per rank: a few million normal samples per step for the
paper's model on 8 GPUs, microseconds on a GPU (see training/distributed.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

_shard: tuple[int, int] | None = None  # (rank, world_size) while sharded_noise is active
_recording: list[tuple[tuple[int, ...], torch.dtype, torch.device]] | None = None  # set by recorded_noise

NoiseDraws = list[tuple[tuple[int, ...], torch.dtype, torch.device]]


def noise_like(x: torch.Tensor) -> torch.Tensor:
    """Standard normal noise with ``x``'s shape, dtype and device (logical order, whatever x's memory layout)."""
    shape = tuple(x.shape)
    if _recording is not None:
        _recording.append((shape, x.dtype, x.device))
    if _shard is None or _shard[1] == 1:
        # torch.randn, not randn_like: randn_like keeps a channels_last layout and would fill it in memory
        # order, so the noise would depend on the layout; randn fills in logical order.
        return torch.randn(shape, dtype=x.dtype, device=x.device)
    rank, world = _shard
    n = shape[0]
    full = torch.randn((n * world, *shape[1:]), dtype=x.dtype, device=x.device)
    return full[rank * n:(rank + 1) * n]


@contextlib.contextmanager
def recorded_noise() -> Iterator[NoiseDraws]:
    """Within this context, every :func:`noise_like` call is listed (shape, dtype, device), for ``replay_noise``."""
    global _recording
    previous, _recording = _recording, []
    try:
        yield _recording
    finally:
        _recording = previous


def replay_noise(draws: NoiseDraws) -> None:
    """Make the draws listed by ``recorded_noise`` again and drop them: the RNG ends where the forward passes
    that made them would have left it, without running them (bit-exact: the same calls in the same order)."""
    for shape, dtype, device in draws:
        noise_like(torch.empty(shape, dtype=dtype, device=device))


@contextlib.contextmanager
def sharded_noise(rank: int, world_size: int) -> Iterator[None]:
    """Within this context, :func:`noise_like` gives this rank's rows of the global batch's noise."""
    global _shard
    previous = _shard
    _shard = (int(rank), int(world_size))
    try:
        yield
    finally:
        _shard = previous

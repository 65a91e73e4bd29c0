"""The precision a run trains in (``train.amp``): chosen once per run, then applied by every method the same way.

``amp`` = "bf16" (autocast, CPU and GPU; no scaling needed, bf16 has fp32's range) or "fp16" (CUDA only, with
gradient scaling), or "auto": resolved once at start (``Trainer.amp``) by ``udeblur.device.auto_precision``, the rule
inference shares: bf16 on a CPU where a start-up timing shows bf16 convolutions clearly faster than fp32 or on a
CUDA device with bf16, "none" elsewhere.
"""

from __future__ import annotations

import warnings

import torch

from ..config import ConfigError
from ..device import auto_precision, autocast, cpu_has_fast_bf16


def resolve_amp(amp: str, device: torch.device) -> str:
    """``train.amp`` as run: "auto" -> "bf16" where measured clearly faster on this CPU (or a bf16-capable CUDA
    device), else "none"; the other values as they are."""
    if amp != "auto":
        return amp
    chosen = auto_precision(device, training=True)
    return "none" if chosen == "fp32" else chosen


def run_precision(amp: str, device: torch.device, stacklevel: int = 3) -> str:
    """``train.amp`` resolved for ``device``; refuses fp16 off CUDA and warns of bf16 asked for on a slow CPU
    (``stacklevel``: the warning points at the caller that many frames up; 3 is the caller of ``Trainer(...)``)."""
    resolved = resolve_amp(amp, device)
    if resolved == "fp16" and device.type != "cuda":
        raise ConfigError(f"train.amp=fp16 needs a CUDA device (gradient scaling), not {device}; "
                          "use train.amp=bf16 on the CPU")
    if amp == "bf16" and device.type == "cpu" and not cpu_has_fast_bf16():
        warnings.warn(
            "train.amp=bf16 on a CPU without native bf16 instructions (no AVX512-BF16/AMX): bf16 convolutions "
            "are emulated and run 10-100x SLOWER than fp32 here; use train.amp=none on this machine",
            stacklevel=stacklevel,
        )
    return resolved


def grad_scaler(amp: str) -> torch.amp.GradScaler | None:
    """A loss scaler for one optimizer group under fp16 (its small range needs one); None otherwise."""
    return torch.amp.GradScaler("cuda") if amp == "fp16" else None


__all__ = ["autocast", "grad_scaler", "resolve_amp", "run_precision"]

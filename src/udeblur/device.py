"""Choosing the torch device, the same way for training, evaluation and inference."""

from __future__ import annotations

import contextlib

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU. Asking for CUDA where there is none is an error, not a fallback."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here (use --device cpu)")
    return dev


# bf16 is chosen only when it beats fp32 by this factor: a near tie is not worth bf16's rounding
BF16_MIN_SPEEDUP = 1.3


def _conv_seconds(bf16: bool, channels: int, side: int, reps: int) -> float:
    """Best-of-``reps`` seconds of one 3x3 convolution (channels -> channels, side x side) on the CPU."""
    import time

    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, channels, side, side, generator=g)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
    best = float("inf")
    with torch.inference_mode(), ctx:
        conv(x)  # first call: oneDNN picks and builds its kernel
        for _ in range(reps):
            start = time.perf_counter()
            conv(x)
            best = min(best, time.perf_counter() - start)
    return best


_bf16_speedup: float | None = None


def cpu_bf16_speedup() -> float:
    """fp32 time / bf16-autocast time of representative convolutions on this CPU, measured once per process.

    A small probe first (64 channels, 16 x 16): CPUs without native bf16 emulate it 5-100x slower, and the
    probe tells so in milliseconds. Only if bf16 keeps up there, a convolution of the size the networks run
    (128 channels, 48 x 48) decides. Measured, never guessed from the CPU's name: AVX512-BF16 gives ~2x, AMX
    much more, AVX2-only CPUs a fraction. About 5-100 ms in all.
    """
    global _bf16_speedup
    if _bf16_speedup is None:
        probe = _conv_seconds(False, 64, 16, 3) / max(_conv_seconds(True, 64, 16, 2), 1e-9)
        if probe < 1.0 / BF16_MIN_SPEEDUP:
            _bf16_speedup = probe
        else:
            _bf16_speedup = _conv_seconds(False, 128, 48, 3) / max(_conv_seconds(True, 128, 48, 3), 1e-9)
    return _bf16_speedup


def cpu_prefers_bf16() -> bool:
    """Whether bf16 autocast is clearly faster than fp32 on this CPU (measured, see ``cpu_bf16_speedup``)."""
    return cpu_bf16_speedup() >= BF16_MIN_SPEEDUP


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has native bf16 instructions (oneDNN's test: AVX512-BF16 or AMX), from its flags.

    What they are worth differs by CPU, which is why ``auto`` precision measures instead of asking this
    (``udeblur.device.cpu_bf16_speedup``): on an AMD EPYC with avx512_bf16 a 256-channel 3x3 conv runs ~2x fp32
    (~220 vs ~113 GFLOP/s, one thread); Xeons with AMX gain much more; on AVX2-only CPUs (AMD EPYC without
    avx512_bf16, older Xeons) bf16 is emulated, 5-100x SLOWER than fp32 (~80 vs 0.2-10 GFLOP/s). The trainer uses it
    for a warning when bf16 is asked for explicitly.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def auto_precision(device: torch.device, *, training: bool = False) -> str:
    """What precision ``"auto"`` means on ``device``, for inference and training alike (one rule, owned here).

    CUDA: fp16 for inference; for training bf16 where the GPU has it (fp16 would need loss scaling), else fp32.
    CPU: bf16 where a start-up timing shows it clearly faster than fp32 (``cpu_prefers_bf16``), else fp32.
    Returns "fp32", "fp16" or "bf16" (``train.amp`` calls fp32 "none").
    """
    if device.type == "cuda":
        if not training:
            return "fp16"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_prefers_bf16() else "fp32"


def resolve_precision(precision: str, device: torch.device) -> str:
    """Inference precision: ``"auto"`` -> ``auto_precision(device)``; an explicit choice as it is."""
    if precision != "auto":
        return precision
    return auto_precision(device)


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context of a resolved precision: "bf16" / "fp16", or no autocast ("fp32", training's "none")."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(device.type, dtype=torch.float16)
    return contextlib.nullcontext()

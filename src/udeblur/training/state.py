"""A run's saved state: the checkpoint (save, load, resume rule) and the deblurring exports written beside it.

A checkpoint holds ``step``, ``config`` and ``rng`` (the trainer's) plus every top-level entry of the method's
``state_dict()``. Exact resume: the data stream is a pure function of (seed, step) and the global torch RNG state
is saved, so N steps + resume + M steps equals N+M steps straight (on the CPU; GPU kernels may not be
deterministic). A resumed run must be the run it was: only ``RESUMABLE_OVERRIDES`` may differ from the saved config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..config import ConfigError, ExperimentConfig, config_from_dict
from ..methods.base import Method
from ..model_files import CheckpointError, export_deblur_net, load_checkpoint, save_checkpoint

CHECKPOINT_NAME = "checkpoints/last.pt"
EXPORT_NAME = "deblur.safetensors"
# settings that may differ when a run is resumed; everything else comes from the checkpoint
RESUMABLE_OVERRIDES = {
    # init_from only matters before the first checkpoint
    "train": ("total_steps", "log_every", "sample_every", "checkpoint_every", "snapshot_every", "init_from", "device",
              "tensorboard", "amp", "channels_last", "compile"),
    "data": ("num_workers",),
}


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A training checkpoint to resume from, with the config of older formats brought up to date."""
    state = load_checkpoint(path, require=("step", "config"))
    if state.get("kind") == "supervised" and "method" not in state["config"].get("train", {}):
        state["config"].setdefault("train", {})["method"] = "supervised"  # written before train.method
    return state


def merge_resume_config(saved: dict[str, Any], given: ExperimentConfig) -> ExperimentConfig:
    """The checkpoint's config, with only RESUMABLE_OVERRIDES taken from ``given``.

    Any other difference is an error rather than being silently ignored: a resumed run must be the run it was.
    """
    saved_cfg = config_from_dict(saved).to_dict()
    given_dict = given.to_dict()
    changed = [
        f"{section}.{key}: {saved_cfg[section][key]!r} -> {value!r}"
        for section, values in given_dict.items()
        if isinstance(values, dict)
        for key, value in values.items()
        if key not in RESUMABLE_OVERRIDES.get(section, ()) and saved_cfg[section][key] != value
    ]
    if changed:
        raise ConfigError(
            "resuming a run with a different config; only "
            + ", ".join(f"{s}.{k}" for s, ks in RESUMABLE_OVERRIDES.items() for k in ks)
            + " may change. Differences: " + "; ".join(changed)
        )
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in saved_cfg.items()}
    for section, keys in RESUMABLE_OVERRIDES.items():
        for key in keys:
            merged[section][key] = given_dict[section][key]
    return config_from_dict(merged)


def training_state(step: int, cfg: ExperimentConfig, method: Method, device: torch.device) -> dict[str, Any]:
    """The checkpoint: step, config and RNG state, everything else the method's."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        # the training device's generator only: it is in the same state on every rank, so the checkpoint
        # resumes on any GPU / world size
        rng["cuda_device"] = torch.cuda.get_rng_state(device)
    return {"step": step, "config": cfg.to_dict(), **method.state_dict(), "rng": rng}


def restore_training_state(state: dict[str, Any], method: Method, device: torch.device, path: Path) -> int:
    """Load ``state`` into ``method`` and the RNGs; returns its step. A state that loads but is not a whole
    training state is a CheckpointError naming ``path``."""
    try:
        method.load_state_dict(state)
        step = int(state["step"])
        rng = state["rng"]
        if isinstance(rng, torch.Tensor):  # the supervised reference's checkpoints kept the CPU state alone
            rng = {"torch": rng}
        torch.set_rng_state(rng["torch"])
        if device.type == "cuda":
            if "cuda_device" in rng:
                torch.cuda.set_rng_state(rng["cuda_device"], device)
            elif "cuda" in rng and len(rng["cuda"]) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(rng["cuda"])  # checkpoints written before cuda_device
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())[:200]  # one line: torch's messages span several
        raise CheckpointError(path, f"damaged or foreign training checkpoint, cannot resume from it "
                              f"({type(exc).__name__}: {detail}); move it away to start anew") from exc
    return step


def save_run_state(run_dir: Path, state: dict[str, Any], method: Method, cfg: ExperimentConfig) -> Path:
    """Write the checkpoint (atomic) and the inference-only export beside it (plus a snapshot when one is due)."""
    path = run_dir / CHECKPOINT_NAME
    save_checkpoint(path, state)
    step = int(state["step"])
    name = cfg.name + method.export_suffix
    net = method.deblur_net()
    export_deblur_net(net, cfg.model, run_dir / EXPORT_NAME, step=str(step), name=name)
    every = cfg.train.snapshot_every
    if every > 0 and step % every == 0:
        export_deblur_net(net, cfg.model, run_dir / "snapshots" / f"deblur_{step:07d}.safetensors",
                          step=str(step), name=name)
    return path


__all__ = ["CHECKPOINT_NAME", "EXPORT_NAME", "RESUMABLE_OVERRIDES", "merge_resume_config", "read_checkpoint",
           "restore_training_state", "save_run_state", "training_state"]

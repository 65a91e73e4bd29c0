"""Checkpoints that are safe to load and never half-written.

* Full training state (``*.pt``): ``torch.save`` of tensors and plain containers only, so it loads with
  ``torch.load(weights_only=True)`` (no pickled code). Written to a temp file, fsynced, then renamed.
* Inference file (``*.safetensors``): the deblurring path only, with the model config in its metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..atomic import atomic_write
from ..config import ConfigError, ModelConfig, _build
from ..model import DeblurNet, Translator

TRAIN_FORMAT = "udeblur-train-state/1"
DEBLUR_FORMAT = "udeblur-deblurnet/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}")


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    state = {"format": TRAIN_FORMAT, **state}
    atomic_write(path, lambda tmp: torch.save(state, tmp), fsync=True)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a full training checkpoint with ``weights_only=True``; clear errors for bad files."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "no such checkpoint file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError for damaged files
        raise CheckpointError(path, f"not a readable checkpoint (truncated or corrupt?): {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != TRAIN_FORMAT:
        raise CheckpointError(path, f"not a udeblur training checkpoint (expected format {TRAIN_FORMAT})")
    return state


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_deblur_net(net: DeblurNet, model_cfg: ModelConfig, path: str | os.PathLike, **info: str) -> str:
    """Write the deblurring path as safetensors (+ ``.sha256`` sidecar). Returns the SHA-256."""
    from dataclasses import asdict

    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in net.state_dict().items()}
    meta = {"format": DEBLUR_FORMAT, "model_config": json.dumps(asdict(model_cfg), sort_keys=True)}
    meta.update({k: str(v) for k, v in info.items()})
    # the old sidecar goes first: a reader never pairs the new weights with the old hash
    Path(str(path) + ".sha256").unlink(missing_ok=True)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta), fsync=True)
    digest = sha256_of(path)
    atomic_write(Path(str(path) + ".sha256"), lambda tmp: Path(tmp).write_text(f"{digest}  {Path(path).name}\n"))
    return digest


def _model_config_from(meta_json: str, path: Path) -> ModelConfig:
    try:
        return _build(ModelConfig, json.loads(meta_json), "model")
    except (json.JSONDecodeError, ConfigError) as exc:
        raise CheckpointError(path, f"bad model config in file: {exc}") from exc


def load_deblur_net(
    path: str | os.PathLike, expected_sha256: str | None = None, map_location: str = "cpu"
) -> tuple[DeblurNet, ModelConfig]:
    """Load the deblurring path from an exported ``.safetensors`` file or a full training checkpoint.

    The SHA-256 is checked against ``expected_sha256`` or, if present, the ``.sha256`` sidecar file.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "no such model file")
    if path.is_dir():
        raise CheckpointError(path, "is a folder; give the model file (.safetensors or .pt)")
    sidecar = Path(str(path) + ".sha256")
    if expected_sha256 is None and sidecar.exists():
        expected_sha256 = (sidecar.read_text().split() or [None])[0]
    if expected_sha256 is not None:
        actual = sha256_of(path)
        if actual != expected_sha256:
            raise CheckpointError(path, f"SHA-256 mismatch (expected {expected_sha256}, file has {actual}): "
                                  "the file is damaged or not the one published")
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
            tensors = load_file(str(path), device=map_location)
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(path, f"not a readable safetensors file (truncated or corrupt?): {exc}") from exc
        if meta.get("format") != DEBLUR_FORMAT:
            raise CheckpointError(path, f"not a udeblur deblurring model (metadata format {meta.get('format')!r})")
        model_cfg = _model_config_from(meta.get("model_config", "{}"), path)
        net = DeblurNet.from_config(model_cfg)
        _load_state(net, tensors, path)
    else:
        state = load_checkpoint(path, map_location)
        if "translator" not in state or "model" not in state.get("config", {}):
            raise CheckpointError(path, "training checkpoint lacks the translator weights or the model config")
        try:
            model_cfg = _build(ModelConfig, state["config"]["model"], "model")
        except ConfigError as exc:
            raise CheckpointError(path, f"bad model config in checkpoint: {exc}") from exc
        translator = Translator(model_cfg)
        _load_state(translator, state["translator"], path)
        net = translator.deblur_net()
    return net.eval(), model_cfg


def _load_state(module: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(path, f"weights do not fit the model described in the file: {exc}") from exc

"""The model-file formats, read and written here only, so training, inference and evaluation share one reader.

Files are safe to load and never half-written:

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

from .atomic import atomic_write, remove_stale_partials
from .config import ConfigError, ModelConfig, build_dataclass
from .model import DeblurNet, Translator

TRAIN_FORMAT = "udeblur-train-state/1"
DEBLUR_FORMAT = "udeblur-deblurnet/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}")


def _write_or_explain(path: Path, write: Any, what: str) -> None:
    """``atomic_write`` whose failures (full disk, read-only folder) become one CheckpointError naming the file."""
    remove_stale_partials(path)  # left behind by a process killed while writing
    try:
        atomic_write(path, write, fsync=True)
    except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as RuntimeError "iostream error"
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise CheckpointError(path, f"cannot write the {what} ({problem}); the previous file is kept. Free disk "
                              "space or make the folder writable, then continue with --resume") from exc


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    state = {"format": TRAIN_FORMAT, **state}
    _write_or_explain(Path(path), lambda tmp: torch.save(state, tmp), "checkpoint")


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", require: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Load a full training checkpoint with ``weights_only=True``; clear errors for bad files.

    ``require``: top-level entries the caller needs; a file without them is refused here, naming what is missing.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "no such checkpoint file")
    if path.is_dir():
        raise CheckpointError(path, "is a folder, not a checkpoint file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError for damaged files
        raise CheckpointError(path, f"not a readable checkpoint (truncated or corrupt?): {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != TRAIN_FORMAT:
        raise CheckpointError(path, f"not a udeblur training checkpoint (expected format {TRAIN_FORMAT})")
    missing = [key for key in require if key not in state]
    if missing:
        raise CheckpointError(path, f"damaged or foreign training checkpoint: it lacks {missing}")
    config = state.get("config")
    if "config" in require and not (isinstance(config, dict) and isinstance(config.get("model"), dict)):
        raise CheckpointError(path, "damaged or foreign training checkpoint: its 'config' is not a udeblur config")
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
    _write_or_explain(Path(path), lambda tmp: save_file(tensors, tmp, metadata=meta), "model file")
    digest = sha256_of(path)
    _write_or_explain(Path(str(path) + ".sha256"),
                      lambda tmp: Path(tmp).write_text(f"{digest}  {Path(path).name}\n"), "model's .sha256 file")
    return digest


def _sidecar_sha256(sidecar: Path) -> str:
    """The hash a ``.sha256`` file states; anything else in its place is refused rather than skipped."""
    fix = f"delete it to load the model unchecked, or write the model's SHA-256 into it (sha256sum {sidecar.stem})"
    if not sidecar.is_file():
        raise CheckpointError(sidecar, f"the model's .sha256 file is not a regular file; {fix}")
    try:
        words = sidecar.read_bytes()[:4096].decode("ascii").split()
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(sidecar, f"the model's .sha256 file is unreadable or not text ({exc}); {fix}") from exc
    digest = words[0].lower() if words else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise CheckpointError(sidecar, f"the model's .sha256 file holds no SHA-256 (64 hex digits); {fix}")
    return digest


def _check_shapes(expected: torch.nn.Module, shapes: dict[str, tuple[int, ...]], path: Path) -> None:
    """Compare the tensors a file holds with those its stated config needs, before anything real is allocated.

    ``expected`` is built on the meta device (no memory), so a config claiming a huge width costs nothing here.
    """
    want = {k: tuple(v.shape) for k, v in expected.state_dict().items()}
    missing = sorted(set(want) - set(shapes))
    extra = sorted(set(shapes) - set(want))
    wrong = [f"{k}: {shapes[k]} in the file, {want[k]} by its config" for k in want if k in shapes and
             shapes[k] != want[k]]
    if missing or extra or wrong:
        notes = wrong[:2] + ([f"missing {missing[:3]}"] if missing else []) + ([f"extra {extra[:3]}"] if extra else [])
        detail = "; ".join(notes)
        raise CheckpointError(path, f"the model config in the file does not match its weights ({detail}); "
                              "the file is damaged or was not written by udeblur")


def _check_finite(tensors: dict[str, torch.Tensor], path: Path) -> None:
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(path, f"the model's weights contain NaN or infinity ({len(bad)} tensor(s), e.g. "
                              f"{bad[0]}): the training diverged or the file is damaged; use an earlier checkpoint")


def _model_config_from(meta_json: str, path: Path) -> ModelConfig:
    try:
        return build_dataclass(ModelConfig, json.loads(meta_json), "model")
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
    if expected_sha256 is None and (sidecar.exists() or sidecar.is_symlink()):
        expected_sha256 = _sidecar_sha256(sidecar)
    if expected_sha256 is not None:
        actual = sha256_of(path)
        if actual != expected_sha256:
            raise CheckpointError(path, f"SHA-256 mismatch (expected {expected_sha256}, file has {actual}): "
                                  "the file is damaged or not the one published")
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
                shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118 (not a dict)
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(path, f"not a readable safetensors file (truncated or corrupt?): {exc}") from exc
        if meta.get("format") != DEBLUR_FORMAT:
            raise CheckpointError(path, f"not a udeblur deblurring model (metadata format {meta.get('format')!r})")
        model_cfg = _model_config_from(meta.get("model_config", "{}"), path)
        _check_shapes(_on_meta(lambda: DeblurNet.from_config(model_cfg), path), shapes, path)
        try:
            tensors = load_file(str(path), device=map_location)
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(path, f"not a readable safetensors file (truncated or corrupt?): {exc}") from exc
        _check_finite(tensors, path)
        net = DeblurNet.from_config(model_cfg)
        _load_state(net, tensors, path)
    else:
        state = load_checkpoint(path, map_location, require=("config", "translator"))
        if not isinstance(state["translator"], dict):
            raise CheckpointError(path, "damaged training checkpoint: its 'translator' is not a set of weights")
        try:
            model_cfg = build_dataclass(ModelConfig, state["config"]["model"], "model")
        except ConfigError as exc:
            raise CheckpointError(path, f"bad model config in checkpoint: {exc}") from exc
        shapes = {k: tuple(v.shape) for k, v in state["translator"].items() if isinstance(v, torch.Tensor)}
        _check_shapes(_on_meta(lambda: Translator(model_cfg), path), shapes, path)
        _check_finite(state["translator"], path)
        translator = Translator(model_cfg)
        _load_state(translator, state["translator"], path)
        net = translator.deblur_net()
    return net.eval(), model_cfg


def _on_meta(build: Any, path: Path) -> torch.nn.Module:
    try:
        with torch.device("meta"):
            return build()
    except Exception as exc:  # a config the networks cannot be built from (sizes out of range)
        raise CheckpointError(path, f"the model config in the file cannot be built ({exc})") from exc


def _load_state(module: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(path, f"weights do not fit the model described in the file: {exc}") from exc

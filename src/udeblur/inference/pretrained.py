"""Models that ship inside the package, checked by SHA-256 before they are used.

    from udeblur.inference.pretrained import load_pretrained
    deblurrer = load_pretrained()            # the bundled text-document model, as a Deblurrer
    sharp = deblurrer("photo_of_a_page.png")

Each entry: file name inside ``udeblur/pretrained/`` and its SHA-256. The model card is docs/model_card_text.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PretrainedModel:
    name: str
    filename: str
    sha256: str
    summary: str


BUNDLED: dict[str, PretrainedModel] = {
    "text": PretrainedModel(
        name="text",
        filename="text.safetensors",
        sha256="382d554fea3c23a0eb06cf8252b21321346ffb515fa8c09a4f23e346c5904ba1",
        summary="text documents (built-in synthetic domain, unpaired), `text` preset; card: docs/model_card_text.md",
    ),
}
DEFAULT = "text"


def model_path(name: str = DEFAULT) -> Path:
    """Path of a bundled model file. Raises LookupError for an unknown name, FileNotFoundError if not installed."""
    if name not in BUNDLED:
        raise LookupError(f"no bundled model {name!r}; bundled: {sorted(BUNDLED)}")
    path = Path(str(resources.files("udeblur").joinpath("pretrained", BUNDLED[name].filename)))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: bundled model file missing from this installation")
    return path


def default_model_path() -> Path:
    return model_path(DEFAULT)


def load_pretrained(name: str = DEFAULT, **deblurrer_options: Any):
    """A ``Deblurrer`` for a bundled model; its SHA-256 is verified first (CheckpointError on mismatch)."""
    from .deblurrer import Deblurrer

    return Deblurrer.from_checkpoint(model_path(name), expected_sha256=BUNDLED[name].sha256, **deblurrer_options)

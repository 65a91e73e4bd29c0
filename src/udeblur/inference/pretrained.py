"""Models that ship inside the package, checked by SHA-256 before they are used.

    from udeblur.inference.pretrained import load_pretrained
    deblurrer = load_pretrained()            # the bundled text-document model, as a Deblurrer
    sharp = deblurrer("photo_of_a_page.png")

Each entry: file name inside ``udeblur/pretrained/``, its SHA-256 and the Deblurrer settings it was measured with.
The model card is docs/model_card_text.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple


@dataclass(frozen=True)
class PretrainedModel:
    name: str
    filename: str
    sha256: str
    summary: str
    tone_anchor: float = 0.0  # Deblurrer(tone_anchor=...) its quality figures were measured with


BUNDLED: dict[str, PretrainedModel] = {
    "text": PretrainedModel(
        name="text",
        filename="text.safetensors",
        sha256="6015c1a0a48361c58e9d0bb976980b9d49b5b939b21dceed16e0cc37379f09f9",
        summary="text documents (built-in synthetic domain, unpaired), `text` preset; card: docs/model_card_text.md",
        tone_anchor=16.0,
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


NO_MODEL = (
    "no model given and no bundled pretrained model in this installation: pass --model PATH "
    "(a .safetensors file exported by `udeblur train`, or a training checkpoint .pt)"
)


def bundled_model(name: str = DEFAULT) -> tuple[Path, str] | None:
    """(path, SHA-256) of a bundled model if this installation has it, else None."""
    try:
        return model_path(name), BUNDLED[name].sha256
    except (FileNotFoundError, LookupError):
        return None


class ResolvedModel(NamedTuple):
    path: Path
    sha256: str | None  # checked on load; None: a user's file (its ``.sha256`` sidecar, if any, is checked)
    tone_anchor: float  # for Deblurrer(tone_anchor=...)

    def deblurrer(self, **options: Any):
        """The ``Deblurrer`` for this model: its SHA-256 checked and its tone anchor set; ``options`` go to it."""
        from .deblurrer import Deblurrer

        return Deblurrer.from_checkpoint(self.path, expected_sha256=self.sha256, tone_anchor=self.tone_anchor,
                                         **options)


def resolve_model(path: str | os.PathLike | None, tone_anchor: float | None = None) -> ResolvedModel | None:
    """What the commands load: ``path`` or, without one, the bundled default with its SHA-256; None when neither
    exists. ``tone_anchor``: the user's choice; None takes the model's own (the bundled entry's, 0 for a file)."""
    if path:
        return ResolvedModel(Path(path), None, 0.0 if tone_anchor is None else tone_anchor)
    found = bundled_model()
    if found is None:
        return None
    return ResolvedModel(*found, BUNDLED[DEFAULT].tone_anchor if tone_anchor is None else tone_anchor)


def load_pretrained(name: str = DEFAULT, **deblurrer_options: Any):
    """A ``Deblurrer`` for a bundled model, with the settings it was measured with unless overridden; its SHA-256
    is verified first (CheckpointError on mismatch)."""
    from .deblurrer import Deblurrer

    deblurrer_options.setdefault("tone_anchor", BUNDLED[name].tone_anchor)
    return Deblurrer.from_checkpoint(model_path(name), expected_sha256=BUNDLED[name].sha256, **deblurrer_options)

"""Models that ship inside the package, checked by SHA-256 before they are used.

    import udeblur
    deblurrer = udeblur.load_pretrained("text")   # the bundled text-document model, as a Deblurrer
    sharp = deblurrer("photo_of_a_page.png")

Each entry: file name inside ``udeblur/pretrained/``, its SHA-256, the Deblurrer settings it was measured with, and
what it is for and not for (shown by the CLI help and the web page). The model card is docs/model_card_text.md.
On the command line ``--model bundled`` (or ``bundled:NAME``) names a bundled model wherever a model is taken.
This module imports nothing heavy, so the CLI can read it for its help texts; ``Deblurrer.from_resolved``
(udeblur.inference.deblurrer) turns a ``ResolvedModel`` into a Deblurrer, ``Deblurrer.from_pretrained`` a name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NamedTuple


class UnknownModelError(LookupError):
    """A name that is not a bundled model; the message lists the bundled ones."""


@dataclass(frozen=True)
class PretrainedModel:
    name: str
    filename: str
    sha256: str
    summary: str
    tone_anchor: float = 0.0  # Deblurrer(tone_anchor=...) its quality figures were measured with
    handles: str = ""  # one line: what it is good for, in a user's terms
    limits: str = ""  # one line: what it does not do (the first thing a user should know)


BUNDLED: dict[str, PretrainedModel] = {
    "text": PretrainedModel(
        name="text",
        filename="text.safetensors",
        sha256="6015c1a0a48361c58e9d0bb976980b9d49b5b939b21dceed16e0cc37379f09f9",
        summary="text documents (built-in synthetic domain, unpaired), `text` preset; card: docs/model_card_text.md",
        tone_anchor=16.0,
        handles="a mild sharpener for blurred text documents (dark print on light paper) at its training text "
        "size, 8-40 px from ascender to descender, blurred by 3-31 px kernels",
        limits="trained on synthetic text crops only; little visible effect on ordinary 11-12 pt text scanned at "
        "100 dpi; strong blur (15 px and up) gives doubled edges; photos of faces or scenes are not its domain",
    ),
}
DEFAULT = "text"
BUNDLED_WORD = "bundled"  # --model bundled, --model bundled:NAME


def model_path(name: str = DEFAULT) -> Path:
    """Path of a bundled model file. Raises LookupError for an unknown name, FileNotFoundError if not installed."""
    if name not in BUNDLED:
        raise UnknownModelError(f"no bundled model {name!r}; bundled: {', '.join(sorted(BUNDLED))}")
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
    except (FileNotFoundError, UnknownModelError):
        return None


class ResolvedModel(NamedTuple):
    path: Path
    sha256: str | None  # checked on load; None: a user's file (its ``.sha256`` sidecar, if any, is checked)
    tone_anchor: float  # for Deblurrer(tone_anchor=...)


def resolve_bundled(name: str = DEFAULT) -> ResolvedModel:
    """A bundled model with its SHA-256 and tone anchor. Raises ``UnknownModelError`` (naming the bundled models)
    for an unknown name, FileNotFoundError when the file is missing from this installation."""
    return ResolvedModel(model_path(name), BUNDLED[name].sha256, BUNDLED[name].tone_anchor)


def bundled_name(text: str | os.PathLike | None) -> str | None:
    """The bundled model a ``--model`` value names (``bundled`` or ``bundled:NAME``), else None (a file path).

    A file of that name in the working folder wins, so an existing model file is never shadowed."""
    if text is None:
        return DEFAULT
    text = str(text)
    word, _, name = text.partition(":")
    if word != BUNDLED_WORD or Path(text).exists():
        return None
    name = name or DEFAULT
    if name not in BUNDLED:
        raise UnknownModelError(f"--model {text}: no bundled model {name!r}; bundled: {', '.join(sorted(BUNDLED))}")
    return name


def resolve_model(path: str | os.PathLike | None, tone_anchor: float | None = None) -> ResolvedModel | None:
    """What the commands load: ``path``; or, for None, ``bundled`` or ``bundled:NAME``, a bundled model with its
    SHA-256; None when the bundled model is not installed. ``tone_anchor``: the user's choice; None takes the
    model's own (the bundled entry's, 0 for a file)."""
    name = bundled_name(path)
    if name is None:
        return ResolvedModel(Path(path), None, 0.0 if tone_anchor is None else tone_anchor)
    found = bundled_model(name)
    if found is None:
        return None
    return ResolvedModel(*found, BUNDLED[name].tone_anchor if tone_anchor is None else tone_anchor)

"""Example images of the web page: small blurred PNGs shipped in ``udeblur/web/examples/`` (made offline by
``docs/make_web_examples.py``), listed in ``examples.json`` with a caption each. Only listed names are served."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = ["example_bytes", "list_examples"]


@lru_cache(maxsize=1)
def _index() -> tuple[dict[str, str], ...]:
    folder = resources.files(__package__).joinpath("examples")
    try:
        entries = json.loads(folder.joinpath("examples.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):  # an installation without examples still serves the page
        return ()
    return tuple(e for e in entries if folder.joinpath(e["file"]).is_file())


def list_examples() -> list[dict[str, Any]]:
    """``[{"name", "caption", "url"}]`` for the page."""
    return [{"name": e["file"], "caption": e["caption"], "url": f"/examples/{e['file']}"} for e in _index()]


def example_bytes(name: str) -> bytes | None:
    """The PNG of a listed example, or None (unknown names and paths never reach the file system)."""
    for e in _index():
        if e["file"] == name:
            return resources.files(__package__).joinpath("examples", name).read_bytes()
    return None

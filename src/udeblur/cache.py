"""Where udeblur keeps what it makes once and reuses: the built-in data, converted VGG weights, ONNX graphs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$UDEBLUR_CACHE`` or ``~/.cache/udeblur``, read at each call (tests point it elsewhere)."""
    env = os.environ.get("UDEBLUR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "udeblur"

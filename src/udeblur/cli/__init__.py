"""The `udeblur` command line: a thin layer over the Python API."""

from __future__ import annotations

import argparse

from ..inference.pretrained import BUNDLED, DEFAULT  # a light module: no torch

# the --tone-anchor help of the commands that deblur, whose default comes from
# udeblur.inference.pretrained.resolve_model
TONE_ANCHOR_HELP = ("keep the input's tone at scales above SIGMA px (blur keeps local means; 0: off); "
                    "default: the model's own, 16 for the bundled text model, 0 for a model file")
MODEL_HELP = ("'bundled' (the bundled text model, the default), 'bundled:NAME', an exported .safetensors or a "
              "training checkpoint .pt")


def bundled_note(name: str = DEFAULT) -> str:
    """What the bundled model handles and what it does not, for command descriptions and the web page."""
    entry = BUNDLED[name]
    return f"The bundled model ({name}) is {entry.handles}. Limits: {entry.limits}."


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help unless the help already says its default ([X] or 'default');
    flags (store_true) and options without a default get nothing, so their help must say what happens."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (default is None or default is False or default == argparse.SUPPRESS or default == []
                or isinstance(action, argparse._HelpAction)
                or "default" in text or "%(default)" in text or "[" in text):
            return text
        return f"{text} (default: %(default)s)"

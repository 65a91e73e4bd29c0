"""The method registry: ``train.method`` names the training method the generic trainer runs.

An explicit dict from name to a function returning the class; the built-ins are imported only when chosen, so a
broken method file breaks only runs that choose it. A new method is one file in ``methods/`` plus one
``register_method`` line here (or in your own code before building a Trainer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config import ConfigError

if TYPE_CHECKING:
    from .base import Method

_METHODS: dict[str, Callable[[], type[Method]]] = {}


def register_method(name: str, factory: Callable[[], type[Method]]) -> None:
    """Make ``train.method: <name>`` build ``factory()``'s class (a :class:`~udeblur.methods.base.Method`)."""
    _METHODS[name] = factory


def unregister_method(name: str) -> None:
    _METHODS.pop(name, None)


def method_names() -> list[str]:
    return sorted(_METHODS)


def get_method(name: str) -> type[Method]:
    if name not in _METHODS:
        raise ConfigError(f"train.method: unknown method {name!r}; registered: {', '.join(method_names())}")
    return _METHODS[name]()


def _disentangled() -> type[Method]:
    from .disentangled import DisentangledMethod

    return DisentangledMethod


def _supervised() -> type[Method]:
    from .supervised import SupervisedMethod

    return SupervisedMethod


register_method("disentangled", _disentangled)
register_method("supervised", _supervised)

__all__ = ["get_method", "method_names", "register_method", "unregister_method"]

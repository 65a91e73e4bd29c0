"""Built-in (generated) domains as data roots: made once into the cache, then reused.

An explicit registry from name to the module that makes the domain; the module is imported only when its domain
is used, so a broken domain breaks only the runs that use it. A new built-in domain is one module (or package)
offering ``builtin_domain() -> BuiltinDomain`` plus one ``register_domain`` line below (or in your own code);
``udeblur.data.text`` is the example. Without ``data.root`` an experiment trains on the domain ``data.builtin``
names (``text`` by default).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cache import cache_dir
from ..config import ConfigError, ExperimentConfig


@dataclass(frozen=True)
class BuiltinDomain:
    """What the cache needs of a generated domain. ``Any`` below is the domain's own config object."""

    config: Callable[[ExperimentConfig], Any]  # the domain an experiment asks for (its data.builtin_* keys)
    meta: Callable[[Any], dict]  # everything the data depends on: it names the cache folder
    read_meta: Callable[[Path], dict | None]  # the meta of a folder made before, None if it has none
    make: Callable[..., Path]  # make(out, config, progress=...) -> out; reuses a complete folder with the same meta
    without_training: Callable[[Any], Any]  # the same domain's paired test split alone


_DOMAINS: dict[str, str] = {}


def register_domain(name: str, module: str) -> None:
    """Make ``module`` (importable, with a ``builtin_domain()`` function) the built-in domain ``name``."""
    _DOMAINS[name] = module


def unregister_domain(name: str) -> None:
    _DOMAINS.pop(name, None)


def domain_names() -> list[str]:
    return sorted(_DOMAINS)


def get_domain(name: str) -> BuiltinDomain:
    if name not in _DOMAINS:
        raise KeyError(f"unknown built-in domain {name!r}; registered: {', '.join(domain_names())}")
    # asked anew at each use, so the domain's functions are the ones its module holds now
    return importlib.import_module(_DOMAINS[name]).builtin_domain()


def builtin_folder(name: str, domain_cfg: Any) -> Path:
    """The cache folder of a built-in domain: its name and a hash of everything its data depends on."""
    meta = get_domain(name).meta(domain_cfg)
    key = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return cache_dir() / f"{name}-{key}"


def builtin_root(cfg: ExperimentConfig, name: str | None = None, progress: bool = True,
                 test_only: bool = False) -> Path:
    """Generate (first time) and return the folder of the built-in domain ``name`` (default: ``data.builtin``).

    The folder name hashes everything the data depends on, the installed fonts included: installing a font
    package (chromium pulls in several) gives a NEW folder instead of regenerating one that a running training
    may be reading.

    ``test_only``: only the paired test split is needed (evaluation, the demo). The test crops do not depend on
    the training counts, so a complete full domain is used when there is one; otherwise a test-only domain is
    made (seconds, not the minutes of the training crops).
    """
    name = name or cfg.data.builtin
    domain = get_domain(name)
    domain_cfg = domain.config(cfg)
    out = builtin_folder(name, domain_cfg)
    if test_only and domain.read_meta(out) != domain.meta(domain_cfg):
        domain_cfg = domain.without_training(domain_cfg)
        out = builtin_folder(name, domain_cfg)
    return domain.make(out, domain_cfg, progress=progress)


def builtin_text_root(cfg: ExperimentConfig, progress: bool = True, test_only: bool = False) -> Path:
    """`builtin_root` of the text domain."""
    return builtin_root(cfg, "text", progress=progress, test_only=test_only)


def resolve_data_root(cfg: ExperimentConfig, progress: bool = True, test_only: bool = False) -> Path:
    """``data.root`` if given, else the built-in domain ``data.builtin`` (only its test split with ``test_only``)."""
    if cfg.data.root:
        return Path(cfg.data.root).expanduser()
    if cfg.data.builtin not in _DOMAINS:
        raise ConfigError(f"data.builtin: unknown built-in domain {cfg.data.builtin!r}; registered: "
                          f"{', '.join(domain_names())} (or set data.root to a folder)")
    return builtin_root(cfg, cfg.data.builtin, progress=progress, test_only=test_only)


register_domain("text", "udeblur.data.text")

"""The built-in text-document domain as a data root: generated once into the cache, then reused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..cache import cache_dir
from ..config import ExperimentConfig


def builtin_text_config(cfg: ExperimentConfig):
    from .text import TextDomainConfig, documents_blur

    extra = {"appearance": "documents", "blur": documents_blur()} if cfg.data.builtin_appearance == "documents" else {}
    return TextDomainConfig(
        train_count=cfg.data.builtin_count,
        test_count=cfg.data.builtin_test_count,
        channels=cfg.model.channels,
        seed=cfg.train.seed,
        **extra,
    )


def _folder(text_cfg) -> Path:
    from .text import domain_meta

    key = hashlib.sha256(json.dumps(domain_meta(text_cfg), sort_keys=True, default=str).encode()).hexdigest()[:12]
    return cache_dir() / f"text-{key}"


def builtin_text_root(cfg: ExperimentConfig, progress: bool = True, test_only: bool = False) -> Path:
    """Generate (first time) and return the folder of the built-in text domain for this config.

    The folder name hashes everything the data depends on, the installed fonts included: installing a font
    package (chromium pulls in several) gives a NEW folder instead of regenerating one that a running training
    may be reading.

    ``test_only``: only the paired test split is needed (evaluation, the demo). The test crops do not depend on
    the training counts, so a complete full domain is used when there is one; otherwise a test-only domain is
    made (seconds, not the minutes of the training crops).
    """
    import dataclasses

    from .text import domain_meta, make_text_domain, read_domain_meta

    text_cfg = builtin_text_config(cfg)
    out = _folder(text_cfg)
    if test_only and read_domain_meta(out) != domain_meta(text_cfg):
        text_cfg = dataclasses.replace(text_cfg, train_count=0)
        out = _folder(text_cfg)
    return make_text_domain(out, text_cfg, progress=progress)


def resolve_data_root(cfg: ExperimentConfig, progress: bool = True, test_only: bool = False) -> Path:
    """``data.root`` if given, else the built-in text domain (only its test split with ``test_only``)."""
    if cfg.data.root:
        return Path(cfg.data.root).expanduser()
    return builtin_text_root(cfg, progress=progress, test_only=test_only)

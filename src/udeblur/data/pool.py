"""The process pools of the data generators (text domain, dataset preparation): one start method, one default size."""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.context import BaseContext


def pool_context() -> BaseContext:
    """fork where the platform has it, else its default (macOS, Windows).

    fork: workers inherit what the parent loaded (fonts, word lists), and a caller's script without a
    ``__main__`` guard still works.
    """
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def default_workers() -> int:
    """Worker processes when the caller names none: the CPU count, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))

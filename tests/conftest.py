import os

import pytest
import torch

# Tests run on the CPU with few threads: predictable speed on CI's 2 cores.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session shares one cache dir (VGG conversion, built-in data), never the user's ~/.cache."""
    cache = os.environ.get("UDEBLUR_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "udeblur-cache")
    monkeypatch.setenv("UDEBLUR_CACHE", cache)

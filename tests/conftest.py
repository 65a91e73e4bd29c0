import os

import pytest
import torch

# One thread: the test models are tiny, and OpenMP threads slow down badly when cores are shared.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session shares one cache dir (VGG conversion, built-in data), never the user's ~/.cache."""
    cache = os.environ.get("UDEBLUR_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "udeblur-cache")
    monkeypatch.setenv("UDEBLUR_CACHE", cache)


@pytest.fixture
def ctrl_c_after(monkeypatch):
    """``arm(trainer, step)``: a real Ctrl-C (SIGINT to this process) arrives at the end of that training step."""
    import signal

    def arm(trainer, step: int) -> None:
        original = trainer.train_step

        def step_then_ctrl_c(batch):
            logs = original(batch)
            if trainer.step == step:
                os.kill(os.getpid(), signal.SIGINT)
            return logs

        monkeypatch.setattr(trainer, "train_step", step_then_ctrl_c)

    return arm

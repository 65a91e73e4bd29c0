"""Speed switches (train.amp, train.channels_last, train.compile) change speed, not results beyond tolerance.

Compared: the loss terms of the first iterations (step 1: discriminator terms at identical weights; step 2: D and
the first generator terms, after one D update) on the same batch and seed. Weights are not compared elementwise:
Adam's update is discontinuous where a gradient is rounding noise (see test_distributed.py).

Tolerances (measured on this CPU, tiny preset, perceptual off):
* bf16 autocast vs fp32: bf16 keeps 8 mantissa bits (relative rounding 4e-3 per op; losses are computed in
  fp32); measured max relative difference of the logged terms 1.3e-3 -> tolerance 2e-2 relative (+1e-3
  absolute for terms near 0, e.g. kl).
* channels_last vs contiguous: the same fp32 arithmetic in another order (the training noise is drawn in
  logical order, so it is layout-independent); measured 2e-7 relative -> tolerance 1e-5.
"""

import pytest
import torch

from udeblur.config import ConfigError, load_config
from udeblur.training.trainer import Trainer, TrainingError

BASE = ["loss.perceptual=0", "train.g_every=2"]


def _batch(n: int = 4, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return {"sharp": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
            "blurred": torch.rand(n, 3, size, size, generator=g) * 2 - 1}


def _run(tmp_path, name: str, extra: list[str], steps: int = 2) -> tuple[Trainer, list[dict[str, float]]]:
    trainer = Trainer(load_config("tiny", BASE + extra), tmp_path / name, progress=False)
    batch = _batch()
    return trainer, [trainer.train_step(batch) for _ in range(steps)]


def _compare(a: list[dict[str, float]], b: list[dict[str, float]], rel: float, abs_: float) -> float:
    worst = 0.0
    for ra, rb in zip(a, b, strict=True):
        assert ra.keys() == rb.keys()
        for k in ra:
            if k.startswith("grad_norm"):
                continue  # norms include the Adam-degenerate elements' noise; the loss terms are the result
            assert ra[k] == pytest.approx(rb[k], rel=rel, abs=abs_), k
            worst = max(worst, abs(ra[k] - rb[k]) / max(abs(rb[k]), 1e-12))
    return worst


@pytest.mark.filterwarnings("ignore:train.amp=bf16 on a CPU without native bf16")  # true here, and beside the point
def test_bf16_autocast_trains_on_cpu_close_to_fp32(tmp_path):
    _, fp32 = _run(tmp_path, "fp32", [])
    trainer, bf16 = _run(tmp_path, "bf16", ["train.amp=bf16"])
    assert all(torch.isfinite(torch.tensor(list(r.values()))).all() for r in bf16)
    _compare(bf16, fp32, rel=2e-2, abs_=1e-3)
    # the weights stay fp32 (autocast changes the compute dtype, not the parameters)
    assert all(p.dtype == torch.float32 for p in trainer.method.translator.parameters())


def test_channels_last_matches_contiguous(tmp_path):
    _, ref = _run(tmp_path, "nchw", [])
    trainer, nhwc = _run(tmp_path, "nhwc", ["train.channels_last=true"])
    conv = trainer.method.translator.content.sharp.net[0][1]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    _compare(nhwc, ref, rel=1e-5, abs_=1e-6)


def test_fp16_needs_cuda(tmp_path):  # train.device=cpu: refused on a CUDA machine too
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device.*bf16"):
        Trainer(load_config("tiny", BASE + ["train.amp=fp16", "train.device=cpu"]), tmp_path, progress=False)


def test_compile_failure_is_reported_with_the_switch(tmp_path, monkeypatch):
    # A real torch.compile of the tiny model takes minutes on this CPU (inductor C++ codegen), so the
    # failure path is simulated: a backend that breaks at the first call, as a missing compiler would.
    def broken_compile(self, *args, **kwargs):
        def fail(*a, **k):
            raise RuntimeError("simulated backend failure")

        self._compiled_call_impl = fail

    monkeypatch.setattr(torch.nn.Module, "compile", broken_compile)
    trainer = Trainer(load_config("tiny", BASE + ["train.compile=true"]), tmp_path, progress=False)
    with pytest.raises(TrainingError, match="train.compile=true.*simulated backend failure.*train.compile=false"):
        trainer.train_step(_batch())

"""Speed defaults: precision/amp "auto" decided by a measurement (here monkeypatched), and training passes that
no term reads left out without changing any result (same weights, logs and RNG state, bit for bit)."""

import pytest
import torch

import udeblur.device as device_mod
import udeblur.methods.disentangled as disentangled_mod
from udeblur.archs.noise import noise_like
from udeblur.config import ConfigError, load_config
from udeblur.device import cpu_has_fast_bf16
from udeblur.inference import Deblurrer
from udeblur.model import Translator
from udeblur.training.objective import uses_random_z
from udeblur.training.trainer import Trainer, resolve_amp

CPU = torch.device("cpu")


@pytest.fixture
def fresh_measurement(monkeypatch):
    """Forget the per-process measurement before and after, so a faked timing never leaks into other tests."""
    monkeypatch.setattr(device_mod, "_bf16_speedup", None)
    yield
    device_mod._bf16_speedup = None


def _fake_timing(monkeypatch, fp32_s: float, bf16_s: float) -> list[bool]:
    calls: list[bool] = []

    def timing(bf16: bool, channels: int, side: int, reps: int) -> float:
        calls.append(bf16)
        return bf16_s if bf16 else fp32_s

    monkeypatch.setattr(device_mod, "_conv_seconds", timing)
    return calls


def test_auto_picks_bf16_where_it_measures_faster(monkeypatch, fresh_measurement):
    calls = _fake_timing(monkeypatch, fp32_s=0.010, bf16_s=0.004)
    assert device_mod.resolve_precision("auto", CPU) == "bf16"
    assert resolve_amp("auto", CPU) == "bf16"
    assert set(calls) == {True, False}  # both precisions were timed
    n = len(calls)
    device_mod.resolve_precision("auto", CPU)
    assert len(calls) == n  # measured once per process
    assert device_mod.resolve_precision("fp32", CPU) == "fp32"  # an explicit choice is kept
    assert resolve_amp("none", CPU) == "none"


def test_auto_keeps_fp32_where_bf16_is_slower_or_barely_faster(monkeypatch, fresh_measurement):
    _fake_timing(monkeypatch, fp32_s=0.010, bf16_s=0.080)  # emulated bf16 (AVX2-only CPUs)
    assert device_mod.resolve_precision("auto", CPU) == "fp32"
    assert resolve_amp("auto", CPU) == "none"
    device_mod._bf16_speedup = None
    _fake_timing(monkeypatch, fp32_s=0.010, bf16_s=0.009)  # a near tie is not worth bf16's rounding
    assert device_mod.resolve_precision("auto", CPU) == "fp32"


def test_auto_on_this_cpu_is_never_the_slower_precision(fresh_measurement):
    speedup = device_mod.cpu_bf16_speedup()  # the real measurement
    chosen = device_mod.resolve_precision("auto", CPU)
    print(f"\nbf16/fp32 conv speed here: {speedup:.3g}x -> auto = {chosen}")
    assert chosen in ("fp32", "bf16")
    if chosen == "bf16":
        assert speedup >= device_mod.BF16_MIN_SPEEDUP
    if not cpu_has_fast_bf16():  # emulated bf16 (this AVX2 machine): always many times slower
        assert chosen == "fp32" and speedup < 1.0


def test_deblurrer_and_trainer_use_the_resolved_precision(monkeypatch, fresh_measurement, tmp_path):
    cfg = load_config("tiny", ["loss.perceptual=0", "train.amp=auto"])
    net = Translator(cfg.model).deblur_net()
    _fake_timing(monkeypatch, fp32_s=0.010, bf16_s=0.080)
    assert Deblurrer(net, cfg.model, device="cpu").precision == "fp32"
    assert Trainer(cfg, tmp_path / "a", progress=False).amp == "none"
    device_mod._bf16_speedup = None
    _fake_timing(monkeypatch, fp32_s=0.010, bf16_s=0.004)
    assert Deblurrer(net, cfg.model, device="cpu").precision == "bf16"
    trainer = Trainer(cfg, tmp_path / "b", progress=False)
    assert trainer.amp == "bf16" and trainer.method.autocast().fast_dtype == torch.bfloat16
    assert trainer.cfg.train.amp == "auto"  # the config keeps the choice; the run resolves it


def test_amp_accepts_auto_and_still_refuses_typos():
    assert load_config("tiny", ["train.amp=auto"]).train.amp == "auto"
    with pytest.raises(ConfigError, match="train.amp"):
        load_config("tiny", ["train.amp=bf61"])


# ---------------------------------------------------------------------------------------------- skipped passes

def _all_passes(translator, s, b, w, **_):
    """The fakes as made before passes were skipped: every pass on every iteration."""
    out = translator.translate(s, b)
    if uses_random_z(w):
        z_rand = noise_like(out["mu"])
        out["z_rand"] = z_rand
        out["b_rand"] = translator.gen.to_blurred(out["c_s"], z_rand, translator.blurred_source(s, out.get("kernel")))
        if w.random_z_adv > 0:
            out["s_rand"] = translator.gen.to_sharp(out["c_b"], z_rand, b)
    return out


def _train(tmp_path, name: str, overrides: list[str], steps: int = 4) -> tuple[Trainer, list[dict], dict]:
    trainer = Trainer(load_config("tiny", ["loss.perceptual=0", "train.g_every=2", *overrides]), tmp_path / name,
                      progress=False)
    calls = {"translate": 0, "to_blurred": 0}
    tr = trainer.method.translator
    for attr, owner in (("translate", tr), ("to_blurred", tr.gen)):
        original = getattr(owner, attr)

        def counted(*a, _f=original, _k=attr, **kw):
            calls[_k] += 1
            return _f(*a, **kw)

        setattr(owner, attr, counted)
    g = torch.Generator().manual_seed(3)
    logs = []
    for _ in range(steps):
        batch = {k: torch.rand(2, 3, 32, 32, generator=g) * 2 - 1 for k in ("sharp", "blurred")}
        logs.append(trainer.train_step(batch))
    return trainer, logs, calls


CASES = {
    # D-only iterations have no D term: no pass at all there
    "no_adversarial": ["loss.adv=0", "loss.random_z_adv=0"],
    # the random-z blurred image feeds only G's latent regression: not made on D-only iterations
    "latent_regression_only": ["loss.random_z_adv=0", "loss.latent_regression=10"],
    # only the blur prior's terms: the unpaired passes are never read
    "prior_only": ["loss.adv=0", "loss.kl=0", "loss.cycle=0", "loss.self_recon=0", "loss.random_z_adv=0",
                   "loss.latent_regression=0", "model.kernel_size=7", "loss.kernel_prior=10", "loss.prior_cycle=10"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_skipped_passes_change_no_result(tmp_path, monkeypatch, case):
    new, new_logs, new_calls = _train(tmp_path, "new", CASES[case])
    monkeypatch.setattr(disentangled_mod, "make_fakes", _all_passes)
    ref, ref_logs, ref_calls = _train(tmp_path, "ref", CASES[case])
    print(f"\n{case}: calls with skipping {new_calls}, without {ref_calls}")
    key = "to_blurred" if case == "latent_regression_only" else "translate"
    assert new_calls[key] < ref_calls[key]  # something was skipped...
    assert new_logs == ref_logs  # ...and nothing changed: logs, weights, optimizer and RNG state, bit for bit
    for part in ("translator", "discriminators"):
        a, b = new.state_dict()[part], ref.state_dict()[part]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    assert torch.equal(new.state_dict()["rng"]["torch"], ref.state_dict()["rng"]["torch"])

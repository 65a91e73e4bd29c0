"""Trainer: learning happens, resume is exact, checkpoints survive interruptions, divergence is caught."""

import json
import os

import pytest
import torch

from udeblur.config import load_config
from udeblur.model_files import CheckpointError, load_checkpoint, load_deblur_net, save_checkpoint
from udeblur.training.run_logger import read_log
from udeblur.training.trainer import CHECKPOINT_NAME, EXPORT_NAME, Trainer, TrainingError, lr_factor


@pytest.fixture(scope="module")
def tiny_cfg():
    # perceptual off keeps these tests fast; the perceptual path is covered by test_vgg and one run below
    return load_config("tiny", ["loss.perceptual=0", "train.log_every=5", "train.sample_every=5"])


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    sd = {f"t.{k}": v for k, v in trainer.method.translator.state_dict().items()}
    sd.update({f"d.{k}": v for k, v in trainer.method.discs.state_dict().items()})
    return sd


# the text preset's additions too: the blur prior's draws must follow the step, not a generator that resets
TEXT_ADDITIONS = ["model.global_skip=true", "model.kernel_size=7",
                  "model.blur_from_kernel=true", "loss.reblur=10",
                  "loss.kernel_prior=10", "loss.prior_cycle=10", "train.g_every=1"]


@pytest.mark.parametrize("extra", [[], TEXT_ADDITIONS], ids=["paper", "text-additions"])
def test_resume_is_exact(tmp_path, extra):
    cfg = load_config("tiny", ["loss.perceptual=0", "train.total_steps=6", "train.checkpoint_every=3", *extra])
    straight = Trainer(cfg, tmp_path / "straight", progress=False)
    straight.fit()
    first = Trainer(cfg, tmp_path / "split", progress=False)
    first.fit(max_steps=3)
    assert first.step == 3
    resumed = Trainer(cfg, tmp_path / "split", resume=True, progress=False)
    assert resumed.step == 3
    resumed.fit()
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # optimizer state too
    sa, sb = straight.method.opt_g.state_dict()["state"], resumed.method.opt_g.state_dict()["state"]
    assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)


def test_existing_run_is_not_overwritten_without_resume(tiny_cfg, tmp_path):
    cfg = load_config("tiny", ["loss.perceptual=0", "train.total_steps=2"])
    Trainer(cfg, tmp_path, progress=False).fit()
    with pytest.raises(TrainingError, match="--resume"):
        Trainer(cfg, tmp_path, progress=False)


def test_tiny_run_lowers_cycle_loss_and_writes_artifacts(tmp_path):
    cfg = load_config("tiny", ["loss.perceptual=0", "train.total_steps=240", "train.log_every=10",
                               "train.sample_every=120", "train.checkpoint_every=120"])
    trainer = Trainer(cfg, tmp_path, progress=False)
    trainer.fit()
    log = [r for r in read_log(tmp_path) if "cycle" in r]
    first = sum(r["cycle"] for r in log[:3]) / 3
    last = sum(r["cycle"] for r in log[-3:]) / 3
    assert last < 0.7 * first, (first, last)
    assert (tmp_path / CHECKPOINT_NAME).exists() and (tmp_path / EXPORT_NAME).exists()
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["samples_00000120.png", "samples_00000240.png"]
    assert (tmp_path / "config.yaml").exists()
    net, model_cfg = load_deblur_net(tmp_path / EXPORT_NAME)
    assert model_cfg == cfg.model
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.allclose(net(x), trainer.method.translator.deblur(x))


def test_perceptual_training_step_runs(tmp_path):
    cfg = load_config("tiny", ["train.total_steps=2", "train.g_every=1"])
    trainer = Trainer(cfg, tmp_path, progress=False)
    trainer.fit()
    rec = read_log(tmp_path)[-1]
    assert rec["perceptual"] > 0


def test_interrupted_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(3)})

    def crash(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    state = load_checkpoint(path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temp file left behind


def test_truncated_or_foreign_checkpoint_gives_clear_error(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(1000)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="ckpt.pt.*truncated or corrupt"):
        load_checkpoint(path)
    other = tmp_path / "other.pt"
    torch.save({"model": torch.ones(1)}, other)
    with pytest.raises(CheckpointError, match="not a udeblur training checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_loads_with_weights_only(tmp_path):
    cfg = load_config("tiny", ["loss.perceptual=0", "train.total_steps=2"])
    Trainer(cfg, tmp_path, progress=False).fit()
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert state["step"] == 2 and {"translator", "discriminators", "optim_g", "optim_d", "rng"} <= set(state)
    assert json.dumps(state["config"])  # the config is plain data


def test_divergence_is_reported_with_a_clear_message(tmp_path):
    cfg = load_config("tiny", ["loss.perceptual=0", "train.total_steps=4"])
    trainer = Trainer(cfg, tmp_path, progress=False)
    with torch.no_grad():
        next(trainer.method.discs.parameters()).fill_(float("nan"))
    batch = {"sharp": torch.zeros(2, 3, 32, 32), "blurred": torch.zeros(2, 3, 32, 32)}
    with pytest.raises(TrainingError, match="not finite.*lr"):
        trainer.train_step(batch)


def test_lr_schedule_paper_and_linear():
    cfg = load_config("paper", ["train.total_steps=101"]).train
    assert lr_factor(0, cfg) == 1.0 and lr_factor(49, cfg) == 1.0
    assert lr_factor(100, cfg) == pytest.approx(cfg.lr_final_ratio)
    mid = lr_factor(75, cfg)
    assert mid == pytest.approx(cfg.lr_final_ratio**0.5, rel=1e-6)  # exponential: geometric halfway
    lin = load_config("paper", ["train.total_steps=101", "train.lr_decay=linear"]).train
    assert lr_factor(75, lin) == pytest.approx(1 - 0.5 * (1 - lin.lr_final_ratio), rel=1e-6)


def test_ctrl_c_stops_after_the_step_and_resume_stays_exact(tmp_path, ctrl_c_after):
    cfg = load_config("tiny", ["loss.perceptual=0", "train.total_steps=6", "train.checkpoint_every=1000"])
    straight = Trainer(cfg, tmp_path / "straight", progress=False)
    straight.fit()

    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    ctrl_c_after(trainer, 3)  # a real Ctrl-C, arriving at the end of step 3
    trainer.fit()
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)["step"] == 3
    assert os.path.exists(tmp_path / "run" / EXPORT_NAME)
    resumed = Trainer(cfg, tmp_path / "run", resume=True, progress=False)
    resumed.fit()
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_interrupt_inside_a_step_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    cfg = load_config("tiny", ["loss.perceptual=0", "train.total_steps=50", "train.checkpoint_every=2"])
    trainer = Trainer(cfg, tmp_path, progress=False)
    original = trainer.train_step

    def half_step(batch):
        if trainer.step == 3:
            trainer.method.opt_d.step()  # state already touched when the interrupt lands
            raise KeyboardInterrupt
        return original(batch)

    monkeypatch.setattr(trainer, "train_step", half_step)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["step"] == 2


def test_resume_refuses_a_changed_config(tmp_path):
    from udeblur.config import ConfigError

    cfg = load_config("tiny", ["loss.perceptual=0", "train.total_steps=2"])
    Trainer(cfg, tmp_path, progress=False).fit()
    changed = load_config("tiny", ["loss.perceptual=0", "train.total_steps=4", "loss.kl=0"])
    with pytest.raises(ConfigError, match="loss.kl"):
        Trainer(changed, tmp_path, resume=True, progress=False)
    longer = load_config("tiny", ["loss.perceptual=0", "train.total_steps=4"])
    assert Trainer(longer, tmp_path, resume=True, progress=False).cfg.train.total_steps == 4


@pytest.mark.parametrize("split", [False, True], ids=["every-image", "random-z-split"])
def test_random_z_split_gives_the_random_z_terms_the_second_half(tmp_path, monkeypatch, split):
    from udeblur.methods import disentangled

    cfg = load_config("tiny", ["loss.perceptual=0", "train.total_steps=2", "train.g_every=1", "train.log_every=1",
                               f"train.random_z_split={str(split).lower()}"])
    seen: list[dict[str, torch.Tensor]] = []
    objective = disentangled.discriminator_objective

    def spy(discs, s, b, fakes, w, random_real=None):
        real = random_real if random_real is not None else (s, b)
        seen.append({"s": s, "real_s": real[0], "real_b": real[1], "s_rand": fakes["s_rand"]})
        return objective(discs, s, b, fakes, w, random_real)

    monkeypatch.setattr(disentangled, "discriminator_objective", spy)
    trainer = Trainer(cfg, tmp_path, progress=False)
    batches: list[dict[str, torch.Tensor]] = []
    step = trainer.method.train_step
    monkeypatch.setattr(trainer.method, "train_step", lambda batch, i: batches.append(batch) or step(batch, i))
    before = {k: v.clone() for k, v in trainer.method.translator.state_dict().items()}
    trainer.fit()
    for batch, got in zip(batches, seen, strict=True):  # tiny's batch is 4
        if split:  # encoded branch: images 0-1; the random-z discriminators' real images: 2-3
            assert torch.equal(got["s"], batch["sharp"][:2]) and torch.equal(got["real_s"], batch["sharp"][2:])
            assert torch.equal(got["real_b"], batch["blurred"][2:]) and got["s_rand"].shape[0] == 2
        else:
            assert torch.equal(got["s"], batch["sharp"]) and torch.equal(got["real_s"], batch["sharp"])
            assert got["s_rand"].shape[0] == 4
    log = read_log(tmp_path)
    assert len(log) == 2 and all(r["random_z_adv"] > 0 and r["latent_regression"] > 0 for r in log)
    after = trainer.method.translator.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_random_z_split_needs_the_random_z_branch_and_an_even_batch():
    from udeblur.config import ConfigError

    with pytest.raises(ConfigError, match="random_z_split needs the random-z branch"):
        load_config("tiny", ["train.random_z_split=true", "loss.random_z_adv=0", "loss.latent_regression=0"])
    with pytest.raises(ConfigError, match="random_z_split needs the random-z branch"):  # half the batch unread
        load_config("tiny", ["train.random_z_split=true", "loss.random_z_adv=0"])
    with pytest.raises(ConfigError, match="make it even"):
        load_config("tiny", ["train.random_z_split=true", "train.batch_size=3"])
    assert load_config("tiny", ["train.random_z_split=true", "loss.latent_regression=0"]).train.random_z_split

"""The Method contract: the generic trainer reproduces the numbers of the code before it, runs every method the
same way (resume rule, Ctrl-C rule, run folder), and the template method trains through it."""

import hashlib
import json
from pathlib import Path

import pytest
import torch

from udeblur.config import ConfigError, load_config
from udeblur.methods.base import Method
from udeblur.methods.registry import get_method, method_names
from udeblur.model_files import load_checkpoint
from udeblur.training.run_logger import read_log
from udeblur.training.trainer import CHECKPOINT_NAME, EXPORT_NAME, Trainer

GOLDEN = Path(__file__).parent / "data" / "golden_logs"
# the text preset's additions (as in test_training.py); NAFNet also takes the unpaired/prior batch split
TEXT_ADDITIONS = ["model.global_skip=true", "model.kernel_size=7",
                  "model.blur_from_kernel=true", "loss.reblur=10", "loss.kernel_prior=10", "loss.prior_cycle=10",
                  "train.g_every=1"]
BASE = ["loss.perceptual=0", "train.total_steps=6", "train.log_every=1", "train.checkpoint_every=3",
        "train.sample_every=1000", "train.tensorboard=false"]
CASES = {
    "tiny_text": [*BASE, *TEXT_ADDITIONS],
    "tiny_nafnet": [*BASE, *TEXT_ADDITIONS, "model.generator=nafnet", "model.width=8",
                    "data.crop_size=32", "train.batch_size=4", "train.unpaired_batch=2"],
}
WALL_CLOCK = {"time", "sec_per_it"}


def _digest(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the golden numbers were recorded with one thread
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("case", sorted(CASES))
def test_numbers_equal_the_recorded_ones(case, tmp_path, one_thread):
    """Logs of 6 steps and the checkpoint's keys and weights, recorded with the trainer before methods/ existed
    (tests/data/golden_logs): equal to the last digit, so checkpoints of running jobs resume unchanged."""
    Trainer(load_config("tiny", CASES[case]), tmp_path, progress=False).fit()
    want = [json.loads(line) for line in (GOLDEN / f"{case}.jsonl").read_text().splitlines()]
    got = read_log(tmp_path)
    assert [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in got] == \
        [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in want]
    assert [list(r) for r in got] == [list(r) for r in want]  # same keys in the same order
    ck = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    rec = json.loads((GOLDEN / f"{case}.checkpoint.json").read_text())
    assert sorted(ck) == rec["top_level_keys"] and sorted(ck["rng"]) == rec["rng_keys"]
    assert list(ck["translator"]) == rec["translator_keys"]
    assert list(ck["discriminators"]) == rec["discriminators_keys"]
    assert ck["optim_g"]["param_groups"][0]["params"] == rec["optim_g_params"]
    assert ck["optim_d"]["param_groups"][0]["params"] == rec["optim_d_params"]
    assert _digest(ck["translator"]) == rec["translator_sha256"]
    assert _digest(ck["discriminators"]) == rec["discriminators_sha256"]
    assert _digest({str(k): v["exp_avg"] for k, v in ck["optim_g"]["state"].items()}) == rec["optim_g_exp_avg_sha256"]


def test_a_checkpoint_from_before_train_method_resumes_exactly(tmp_path):
    """Checkpoints of running jobs have no train.method in their config: they resume as the default method."""
    cfg = load_config("tiny", CASES["tiny_text"])
    straight = Trainer(cfg, tmp_path / "straight", progress=False)
    straight.fit()
    Trainer(cfg, tmp_path / "split", progress=False).fit(max_steps=3)
    path = tmp_path / "split" / CHECKPOINT_NAME
    state = torch.load(path, weights_only=True)
    del state["config"]["train"]["method"]
    torch.save(state, path)
    resumed = Trainer(load_config("tiny", CASES["tiny_text"]), tmp_path / "split", resume=True, progress=False)
    assert resumed.cfg.train.method == "disentangled" and resumed.step == 3
    resumed.fit()
    a, b = straight.method.state_dict(), resumed.method.state_dict()
    for net in ("translator", "discriminators"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net
    assert [r["g_total"] for r in read_log(tmp_path / "straight")] == \
        [r["g_total"] for r in read_log(tmp_path / "split")]


def test_the_registry_names_the_key(tmp_path):
    assert {"disentangled", "supervised"} <= set(method_names())
    assert issubclass(get_method("supervised"), Method)
    with pytest.raises(ConfigError, match="train.method.*'nope'.*disentangled"):
        Trainer(load_config("tiny", ["train.method=nope"]), tmp_path, progress=False)


def test_resume_refuses_another_method(tmp_path):
    Trainer(load_config("tiny", [*BASE, "train.total_steps=1"]), tmp_path, progress=False).fit()
    with pytest.raises(ConfigError, match="train.method: 'disentangled' -> 'supervised'"):
        Trainer(load_config("tiny", [*BASE, "train.method=supervised"]), tmp_path, resume=True, progress=False)


SUPERVISED = [*BASE, "train.method=supervised", "train.checkpoint_every=1000"]


def test_supervised_method_follows_the_main_resume_and_ctrl_c_rules(tmp_path, monkeypatch, ctrl_c_after):
    cfg = load_config("tiny", SUPERVISED)
    straight = Trainer(cfg, tmp_path / "straight", progress=False)
    straight.fit()
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    ctrl_c_after(trainer, 3)  # a real Ctrl-C at the end of step 3: that step is saved
    trainer.fit()
    assert trainer.interrupted and load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)["step"] == 3
    # a changed loss is refused, as for the main method (the old supervised trainer took the saved config)
    with pytest.raises(ConfigError, match="loss.perceptual"):
        Trainer(load_config("tiny", [*SUPERVISED, "loss.perceptual=0.1"]), tmp_path / "run", resume=True,
                progress=False)
    resumed = Trainer(cfg, tmp_path / "run", resume=True, progress=False)
    resumed.fit()
    a, b = straight.method.net.state_dict(), resumed.method.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "run" / EXPORT_NAME).is_file()

    # an interrupt inside a step keeps the last checkpoint instead of saving half-updated state
    inside = Trainer(load_config("tiny", [*SUPERVISED, "train.checkpoint_every=2"]), tmp_path / "inside",
                     progress=False)
    step = inside.train_step

    def half_step(batch):
        if inside.step == 3:
            inside.method.opt.step()
            raise KeyboardInterrupt
        return step(batch)

    monkeypatch.setattr(inside, "train_step", half_step)
    with pytest.raises(KeyboardInterrupt):
        inside.fit()
    assert load_checkpoint(tmp_path / "inside" / CHECKPOINT_NAME)["step"] == 2


def test_a_supervised_checkpoint_of_the_old_trainer_resumes(tmp_path):
    """The supervised reference's own trainer wrote net/optim, the CPU RNG state alone and kind: supervised."""
    cfg = load_config("tiny", [*SUPERVISED, "train.total_steps=2"])
    Trainer(cfg, tmp_path, progress=False).fit()
    path = tmp_path / CHECKPOINT_NAME
    state = torch.load(path, weights_only=True)
    del state["config"]["train"]["method"]
    state["rng"], state["kind"] = state["rng"]["torch"], "supervised"
    torch.save(state, path)
    resumed = Trainer(load_config("tiny", [*SUPERVISED, "train.total_steps=3"]), tmp_path, resume=True,
                      progress=False)
    assert resumed.step == 2 and resumed.cfg.train.method == "supervised"
    resumed.fit()
    assert resumed.step == 3


def test_the_template_method_trains_two_steps_through_the_trainer(tmp_path):
    from udeblur.inference.deblurrer import Deblurrer
    from udeblur.methods.registry import register_method, unregister_method
    from udeblur.methods.template import TemplateMethod
    from udeblur.model_files import load_deblur_net

    register_method("template", lambda: TemplateMethod)
    try:
        cfg = load_config("tiny", [*BASE, "train.total_steps=2", "train.method=template", "train.sample_every=2"])
        trainer = Trainer(cfg, tmp_path, progress=False)
        trainer.fit()
        assert trainer.step == 2 and isinstance(trainer.method, TemplateMethod)
        log = read_log(tmp_path)
        assert [r["step"] for r in log] == [1, 2] and all(r["l1"] > 0 and "lr" in r for r in log)
        assert (tmp_path / "samples" / "samples_00000002.png").is_file()
        net, model_cfg = load_deblur_net(tmp_path / EXPORT_NAME)
        x = torch.rand(1, 3, 37, 53) * 2 - 1
        assert torch.equal(net(x), trainer.method.net.eval()(x))
        out = Deblurrer(net, model_cfg, device="cpu")(x.permute(0, 2, 3, 1)[0].add(1).div(2).numpy())
        assert out.shape == (37, 53, 3)
    finally:
        unregister_method("template")


SUPERVISED_GOLDEN = ["loss.perceptual=0", "train.total_steps=6", "train.log_every=1", "train.sample_every=1000",
                     "train.checkpoint_every=1000", "train.tensorboard=false", "loss.prior_cycle_norm=l2",
                     "train.lr_decay=linear", "train.method=supervised"]


def test_supervised_numbers_equal_those_of_its_old_trainer(tmp_path, one_thread):
    from udeblur.data.builtin import resolve_data_root

    root = resolve_data_root(load_config("tiny"), progress=False)
    Trainer(load_config("tiny", SUPERVISED_GOLDEN), tmp_path, progress=False, data_root=root).fit()
    want = [json.loads(line) for line in (GOLDEN / "tiny_supervised.jsonl").read_text().splitlines()]
    strip = [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in want]
    assert [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in read_log(tmp_path)] == strip

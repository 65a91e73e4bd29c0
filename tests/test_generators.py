"""Generator registry and the NAFNet-style generator: any size, identity at init, tiling, export, a toy plug-in."""

import numpy as np
import pytest
import torch
from torch import nn

from udeblur.archs.blur_encoder import apply_kernel
from udeblur.archs.registry import GeneratorType, generator_types, register_generator, unregister_generator
from udeblur.config import ConfigError, load_config
from udeblur.inference.deblurrer import Deblurrer
from udeblur.model import Translator, count_parameters
from udeblur.model_files import export_deblur_net, load_deblur_net
from udeblur.training.trainer import EXPORT_NAME, Trainer

NAF = ["model.generator=nafnet", "model.width=8", "model.content_res_blocks=1", "model.gen_res_blocks=1"]


def test_unknown_generator_type_is_a_config_error():
    with pytest.raises(ConfigError, match="model.generator"):
        load_config("tiny", ["model.generator=resnet9000"])
    assert {"drit", "nafnet"} <= set(generator_types())


def test_nafnet_deblur_net_takes_any_size_and_starts_as_identity():
    cfg = load_config("text_nafnet", ["model.width=8"]).model
    net = Translator(cfg).deblur_net().eval()
    assert net.size_multiple == 8 and net.min_size % 8 == 0
    x = torch.rand(2, 3, 37, 53) * 1.8 - 0.9
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    # the global skip and zero-initialised output conv: a fresh generator returns its input
    assert torch.allclose(y, x, atol=1e-5)


def test_nafnet_is_much_smaller_than_drit_at_the_text_recipe():
    naf = count_parameters(Translator(load_config("text_nafnet").model))
    drit = count_parameters(Translator(load_config("text").model))
    assert naf < drit / 4


def _trained_naf_net():
    torch.manual_seed(0)
    cfg = load_config("tiny", NAF + ["model.global_skip=true"])
    tr = Translator(cfg.model)
    for p in tr.parameters():  # move away from the identity so the test sees the network
        p.data.add_(0.05 * torch.randn_like(p))
    return tr.deblur_net().eval(), cfg.model


def test_nafnet_tiled_equals_whole_image_pass():
    # every layer is local and z is computed once for the image, so tiles agree with one pass
    net, cfg = _trained_naf_net()
    rng = np.random.default_rng(0)
    img = rng.random((120, 176, 3)).astype(np.float32)
    whole = Deblurrer(net, cfg, device="cpu", tile=1024)(img)
    tiled = Deblurrer(net, cfg, device="cpu", tile=64, overlap=24)(img)
    diff = np.abs(whole - tiled)
    assert diff.mean() < 2e-4 and diff.max() < 5e-3  # tiles misaligned with the 8-px grid give ~5e-3 mean


def test_nafnet_export_roundtrip_and_onnx(tmp_path):
    net, cfg = _trained_naf_net()
    path = tmp_path / "naf.safetensors"
    export_deblur_net(net, cfg, path)
    loaded, cfg2 = load_deblur_net(path)
    assert cfg2.generator == "nafnet"
    x = torch.rand(1, 3, 40, 48) * 2 - 1
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))
    import onnxruntime as ort  # part of the test extra: a missing install fails here rather than skipping

    from udeblur.inference.export import export_onnx

    onnx_path = tmp_path / "naf.onnx"
    export_onnx(loaded, onnx_path)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        ref = loaded(x).numpy()
    assert np.abs(out - ref).max() < 1e-4


def test_apply_kernel_is_a_true_convolution_with_reflected_borders():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 20, 23)
    k = torch.rand(3, 7, 7)
    k /= k.sum((1, 2), keepdim=True)
    pad = 3
    xp = torch.nn.functional.pad(x.reshape(1, 6, 20, 23), (pad,) * 4, mode="reflect")
    weight = k.flip(-1, -2).repeat_interleave(2, dim=0).unsqueeze(1)
    direct = torch.nn.functional.conv2d(xp, weight, groups=6).view_as(x)
    assert torch.allclose(apply_kernel(x, k), direct, atol=1e-5)
    delta = torch.zeros(3, 7, 7)
    delta[:, 3, 4] = 1  # one pixel right of the centre: a shift by one pixel
    shifted = apply_kernel(x, delta)
    assert torch.allclose(shifted[..., 1:], x[..., :-1], atol=1e-5)


# ------------------------------------------------------------------ a toy generator, plugged in from outside


class _ToyContent(nn.Module):
    def __init__(self, channels: int, width: int):
        super().__init__()
        self.sharp = nn.Conv2d(channels, width, 3, padding=1)
        self.blurred = nn.Conv2d(channels, width, 3, padding=1)
        self.shared = nn.Conv2d(width, width, 1)
        self.blurred_last = self.shared
        self.out_channels = width

    def encode_sharp(self, s):
        return self.shared(self.sharp(s))

    def encode_blurred(self, b):
        return self.blurred_last(self.blurred(b))


class _ToyBranch(nn.Module):
    def __init__(self, width: int, latent: int, channels: int):
        super().__init__()
        self.latent = latent
        self.film = nn.Linear(latent, width)
        self.out = nn.Conv2d(width, channels, 3, padding=1)

    def forward(self, c, z, src=None):
        return torch.tanh(self.out(c + self.film(z)[:, :, None, None]))


class _ToyGenerators(nn.Module):
    def __init__(self, width: int, latent: int, channels: int):
        super().__init__()
        self.shared = nn.Identity()
        self.sharp = _ToyBranch(width, latent, channels)
        self.blurred = _ToyBranch(width, latent, channels)

    def to_sharp(self, c, z, src=None):
        return self.sharp(self.shared(c), z, src)

    def to_blurred(self, c, z, src=None):
        return self.blurred(self.shared(c), z, src)


@pytest.fixture
def toy_generator():
    register_generator("toy", GeneratorType(
        lambda cfg: _ToyContent(cfg.channels, cfg.width),
        lambda cfg, content: _ToyGenerators(cfg.width, cfg.blur_latent, cfg.channels),
    ), replace=True)
    yield "toy"
    unregister_generator("toy")


def test_a_registered_toy_generator_trains_exports_and_deblurs(tmp_path, toy_generator):
    cfg = load_config("tiny", [f"model.generator={toy_generator}", "loss.perceptual=0", "train.total_steps=2",
                               "train.checkpoint_every=2", "train.g_every=1"])
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    before = {k: v.clone() for k, v in trainer.method.translator.gen.state_dict().items()}
    trainer.fit()
    after = trainer.method.translator.gen.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the toy generator was trained
    model = tmp_path / "run" / EXPORT_NAME
    out = Deblurrer.from_checkpoint(model, device="cpu")(np.full((21, 30, 3), 0.5, np.float32))
    assert out.shape == (21, 30, 3) and np.isfinite(out).all()


def test_unpaired_batch_must_fit_the_batch():
    with pytest.raises(ConfigError, match="unpaired_batch"):
        load_config("tiny", ["train.unpaired_batch=5"])  # tiny's batch is 4


def test_unpaired_batch_splits_the_batch_between_unpaired_and_prior_terms(tmp_path, monkeypatch):
    from udeblur.training import objective

    cfg = load_config("tiny", NAF + ["loss.perceptual=0", "model.global_skip=true", "model.kernel_size=7",
                                     "model.blur_from_kernel=true", "loss.reblur=10", "loss.kernel_prior=10",
                                     "loss.prior_cycle=10", "train.g_every=1", "train.unpaired_batch=2",
                                     "train.total_steps=3", "train.snapshot_every=2", "train.checkpoint_every=100"])
    seen: dict[str, list[int]] = {"unpaired": [], "prior": []}
    translate, prior = objective.make_fakes, objective.blur_with_prior

    def spy_fakes(tr, s, b, w, **kw):
        seen["unpaired"].append(s.shape[0])
        return translate(tr, s, b, w, **kw)

    def spy_prior(s, *args):
        seen["prior"].append(s.shape[0])
        return prior(s, *args)

    monkeypatch.setattr("udeblur.methods.disentangled.make_fakes", spy_fakes)
    monkeypatch.setattr(objective, "blur_with_prior", spy_prior)
    trainer = Trainer(cfg, tmp_path, progress=False)
    trainer.fit()
    assert seen["unpaired"] == [2, 2, 2] and seen["prior"] == [4, 4, 4]  # tiny's batch is 4
    # snapshots at their own steps, not only when a checkpoint is due
    snaps = sorted(p.name for p in (tmp_path / "snapshots").glob("*.safetensors"))
    assert snaps == ["deblur_0000002.safetensors"]


def test_distributed_ranks_take_the_single_process_unpaired_images():
    from udeblur.data.datasets import UnpairedStepSampler

    single = UnpairedStepSampler(50, 60, 8, seed=1, unpaired_batch=2).batch(7)
    ranks = [UnpairedStepSampler(50, 60, 4, seed=1, rank=r, world_size=2, unpaired_batch=2).batch(7)
             for r in range(2)]
    assert ranks[0][:1] + ranks[1][:1] == single[:2]  # what the unpaired terms see
    assert sorted(ranks[0] + ranks[1]) == sorted(single)  # and the whole batch is the same


def test_old_presets_keep_their_initial_weights():
    # hashes of Translator(preset) at seed 0 before the generator registry existed: same seed, same start
    import hashlib

    expected = {"paper": "57a4a9acefb21606", "text": "f63d082ccc810e37", "tiny": "beeb4aef2f2fb83d"}
    for preset, digest in expected.items():
        torch.manual_seed(0)
        h = hashlib.sha256()
        for k, v in Translator(load_config(preset).model).state_dict().items():
            h.update(k.encode())
            h.update(v.detach().numpy().tobytes())
        assert h.hexdigest()[:16] == digest, preset


def test_nafnet_crop_size_must_fit_its_size_multiple():
    with pytest.raises(ConfigError, match="multiple of 8"):
        load_config("tiny", NAF + ["data.crop_size=36"])


def test_init_from_an_export_starts_from_its_weights(tmp_path):
    cfg = load_config("tiny", NAF + ["loss.perceptual=0", "train.total_steps=1", "train.seed=3"])
    first = Trainer(cfg, tmp_path / "a", progress=False)
    first.fit()
    export = tmp_path / "a" / EXPORT_NAME
    warm_cfg = load_config("tiny", NAF + ["loss.perceptual=0", "train.total_steps=1", "train.seed=4",
                                          f"train.init_from={export}"])
    warm = Trainer(warm_cfg, tmp_path / "b", progress=False)
    a, b = first.method.translator.deblur_net().state_dict(), warm.method.translator.deblur_net().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    for k, v in warm.method.translator.content.sharp.state_dict().items():  # E_S^c starts as a copy of E_B^c
        assert torch.equal(v, warm.method.translator.content.blurred.state_dict()[k])
    other = load_config("tiny", ["loss.perceptual=0", f"train.init_from={export}"])  # drit, not nafnet
    with pytest.raises(ConfigError, match="model.generator"):
        Trainer(other, tmp_path / "c", progress=False)


def test_init_from_a_checkpoint_checks_its_model_settings(tmp_path):
    cfg = load_config("tiny", ["loss.perceptual=0", "train.total_steps=1"])
    Trainer(cfg, tmp_path / "a", progress=False).fit()
    ckpt = tmp_path / "a" / "checkpoints" / "last.pt"
    warm = Trainer(load_config("tiny", ["loss.perceptual=0", f"train.init_from={ckpt}"]), tmp_path / "b",
                   progress=False)
    first = Trainer(cfg, tmp_path / "a", resume=True, progress=False)
    for k, v in first.method.discs.state_dict().items():  # a checkpoint brings the discriminators too
        assert torch.equal(v, warm.method.discs.state_dict()[k])
    with pytest.raises(ConfigError, match="model.global_skip"):
        Trainer(load_config("tiny", ["loss.perceptual=0", "model.global_skip=true", f"train.init_from={ckpt}"]),
                tmp_path / "c", progress=False)

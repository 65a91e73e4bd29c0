"""Inference engines: onnxruntime on the exported graph gives PyTorch's output within ONNX_TOLERANCE (the bundled
model, tiled images, grey and colour), the graph is exported once per model file and cached by its SHA-256, and
"auto" falls back to PyTorch wherever onnxruntime cannot or must not run (missing, in-memory net, norm=image)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import udeblur.inference.export as export_mod
from udeblur.cache import cache_dir
from udeblur.cli.main import main
from udeblur.config import load_config
from udeblur.inference import Deblurrer
from udeblur.inference.engine import ONNX_TOLERANCE
from udeblur.model import Translator
from udeblur.model_files import export_deblur_net, sha256_of

# outputs are in [0, 1], half the [-1, 1] scale the tolerance is stated on
TOL01 = ONNX_TOLERANCE / 2


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    cfg = load_config("tiny").model
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("engine") / "tiny.safetensors"
    export_deblur_net(Translator(cfg).deblur_net(), cfg, path)
    return path


def _image(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.5 + 0.4 * np.sin(9 * x + 5 * y)[..., None] + 0.05 * rng.standard_normal((h, w, c))
    return np.clip(base, 0, 1).astype(np.float32)


def test_onnx_matches_torch_on_the_bundled_model():
    img = _image(70, 90, 3)
    torch_out = Deblurrer.from_pretrained("text", engine="torch")(img)
    onnx_d = Deblurrer.from_pretrained("text", engine="onnx")
    onnx_out = onnx_d(img)
    diff = float(np.abs(torch_out - onnx_out).max())
    print(f"\nbundled model, onnxruntime vs PyTorch: max |diff| {diff:.2e} (tolerance {TOL01:.0e})")
    assert onnx_d.engine == "onnx" and diff <= TOL01
    assert np.abs(torch_out - img).max() > 100 * TOL01  # the model does something: the comparison is not vacuous


@pytest.mark.parametrize("shape", [(150, 230, 3), (97, 61, 1)])
def test_onnx_matches_torch_on_tiled_images(tiny_file, shape):
    img = _image(*shape, seed=shape[0])
    kw = {"device": "cpu", "tile": 64, "overlap": 16, "batch": 2}
    ref = Deblurrer.from_checkpoint(tiny_file, engine="torch", **kw)(img)
    out = Deblurrer.from_checkpoint(tiny_file, engine="onnx", **kw)(img)
    assert out.shape == ref.shape == img.shape
    assert float(np.abs(out - ref).max()) <= TOL01


def test_graph_is_exported_once_and_cached_by_the_file_hash(tiny_file, monkeypatch):
    Deblurrer.from_checkpoint(tiny_file, device="cpu", engine="onnx")(_image(40, 40, 3))
    cached = sorted((cache_dir() / "onnx").glob(f"{sha256_of(tiny_file)}.*.onnx"))
    assert [p.name.split(".")[1] for p in cached] == ["code", "decode"]

    def no_export(*a, **kw):
        raise AssertionError("exported again although the graph is cached")

    monkeypatch.setattr(export_mod, "export_graph", no_export)
    d = Deblurrer.from_checkpoint(tiny_file, device="cpu")
    assert d.engine == "onnx"  # auto: a model file on the CPU in fp32 with onnxruntime installed
    d(_image(40, 40, 3))


def test_auto_is_torch_where_onnx_must_not_run(tiny_file):
    cfg = load_config("tiny").model
    net = Translator(cfg).deblur_net()
    assert Deblurrer(net, cfg, device="cpu").engine == "torch"  # in memory: no file to key a cache by
    assert Deblurrer.from_checkpoint(tiny_file, device="cpu", norm="image").engine == "torch"
    assert Deblurrer.from_checkpoint(tiny_file, device="cpu", precision="bf16").engine == "torch"
    with pytest.raises(ValueError, match="engine onnx needs norm='tile'"):
        Deblurrer.from_checkpoint(tiny_file, device="cpu", norm="image", engine="onnx")
    with pytest.raises(ValueError, match="engine must be auto, torch or onnx"):
        Deblurrer(net, cfg, device="cpu", engine="tensorrt")
    # an in-memory net runs in onnxruntime when asked, exported into memory
    img = _image(36, 44, 3)
    out = Deblurrer(net, cfg, device="cpu", engine="onnx")(img)
    assert float(np.abs(out - Deblurrer(net, cfg, device="cpu")(img)).max()) <= TOL01


def test_without_onnxruntime_auto_is_torch_and_onnx_says_what_is_missing(tiny_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails, as when it is not installed
    d = Deblurrer.from_checkpoint(tiny_file, device="cpu")
    assert d.engine == "torch"
    assert d(_image(40, 40, 3)).shape == (40, 40, 3)
    with pytest.raises(ValueError, match="needs onnxruntime"):
        Deblurrer.from_checkpoint(tiny_file, device="cpu", engine="onnx")


def test_cli_engines_write_the_same_images(tiny_file, tmp_path, capsys):
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray((_image(50, 70, 3) * 255).astype(np.uint8)).save(src)
    outs = {}
    for engine in ("torch", "onnx"):
        assert main(["deblur", str(src), "-o", str(tmp_path / engine), "-m", str(tiny_file), "--engine", engine,
                     "--quiet"]) == 0
        outs[engine] = np.asarray(Image.open(tmp_path / engine / "in.png"), dtype=np.int16)
    assert np.abs(outs["torch"] - outs["onnx"]).max() <= 1  # 8-bit rounding of outputs within TOL01
    assert main(["deblur", str(src), "-o", str(tmp_path / "x"), "-m", str(tiny_file), "--engine", "onnx",
                 "--norm", "image", "--quiet"]) == 2
    assert "engine onnx needs norm='tile'" in capsys.readouterr().err

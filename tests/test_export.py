"""ONNX export of the deblurring path: onnxruntime gives PyTorch's output on several sizes (dynamic H, W, N)."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from udeblur.cli.main import main
from udeblur.config import load_config
from udeblur.inference.export import exportable
from udeblur.model import Translator
from udeblur.model_files import export_deblur_net


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    cfg = load_config("tiny").model
    torch.manual_seed(0)
    translator = Translator(cfg)
    with torch.no_grad():  # away from the N(0, 0.02) init, so every layer (norm affine, biases) matters
        for p in translator.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("export") / "deblur.safetensors"
    export_deblur_net(translator.deblur_net(), cfg, path)
    return path, translator.deblur_net().eval()


def test_exportable_copy_is_the_same_function(model_file):
    _, net = model_file
    x = torch.rand(2, 3, 32, 40) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(exportable(net)(x), net(x), atol=1e-5)


def test_onnx_matches_pytorch_on_several_sizes(model_file, tmp_path, capsys):
    path, net = model_file
    out = tmp_path / "deblur.onnx"
    assert main(["export", "--onnx", str(path), "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    proto = onnx.load(str(out))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["size_multiple"] == "4" and "model_config" in meta
    ops = {n.op_type for n in proto.graph.node}
    assert {"Pad", "InstanceNormalization"} <= ops  # reflection padding and InstanceNorm exported as such
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(1)
    for shape in [(1, 3, 32, 48), (2, 3, 68, 36)]:  # neither is the traced 64 x 64
        x = torch.rand(*shape, generator=g) * 2 - 1
        with torch.no_grad():
            ref = net(x).numpy()
        got = session.run(None, {"blurred": x.numpy()})[0]
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


def test_global_skip_model_exports(tmp_path):
    # the global-skip generator uses atanh, which needs its own ONNX mapping
    from udeblur.inference.export import export_onnx
    from udeblur.model import DeblurNet

    torch.manual_seed(0)
    net = DeblurNet.from_config(load_config("tiny", ["model.global_skip=true"]).model).eval()
    torch.nn.init.normal_(net.gen_sharp.to_image.weight, 0, 0.02)  # not the identity, so the skips matter
    session = ort.InferenceSession(str(export_onnx(net, tmp_path / "g.onnx")), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    with torch.no_grad():
        ref = net(x).numpy()
    np.testing.assert_allclose(session.run(None, {"blurred": x.numpy()})[0], ref, atol=1e-4, rtol=0)


def test_export_from_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["export", "--onnx", str(tmp_path / "nope.safetensors"), "-o", str(tmp_path / "x.onnx")]) == 2
    assert "no such model file" in capsys.readouterr().err

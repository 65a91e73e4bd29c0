"""Every command against the bad-input corpus (tests/bad_inputs.py): a one-line error naming the file or key, a
non-zero exit code, no traceback and no changed input; or, for awkward but valid inputs, the right result."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bad_inputs import (
    BAD_OVERRIDES,
    GOOD_OVERRIDES,
    exif_upright_pixels,
    header_only_png,
    image_cases,
    model_cases,
    rgb16_pixels,
    smooth_rgb,
    wrong_structure_train_state,
)
from udeblur.cli import main as cli
from udeblur.config import ConfigError, load_config
from udeblur.imageio import decode_image, list_images, read_image
from udeblur.inference import Deblurrer
from udeblur.model import Translator
from udeblur.model_files import CheckpointError, export_deblur_net, load_deblur_net, save_checkpoint
from udeblur.training.run_logger import read_log
from udeblur.training.trainer import CHECKPOINT_NAME, Trainer
from udeblur.web import DeblurService, make_server
from udeblur.web import server as server_module


@pytest.fixture(scope="module")
def model_cfg():
    return dataclasses.replace(load_config("tiny").model, init_std=0.1)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, model_cfg) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    export_deblur_net(Translator(model_cfg).eval().deblur_net(), model_cfg, path)
    return path


@pytest.fixture(scope="module")
def deblurrer(model_file) -> Deblurrer:
    return Deblurrer.from_checkpoint(model_file, device="cpu")


def tree_digest(folder: Path) -> dict[str, str]:
    """Every regular file under ``folder`` (links not followed) -> its SHA-256."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def one_line_error(err: str, *names: str) -> str:
    """The last stderr line, which must be the command's error; no traceback anywhere."""
    assert "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert "error:" in line, err
    for name in names:
        assert name in line, (name, line)
    return line


# ---------------------------------------------------------------------------------------------- images


def test_deblur_tries_every_bad_image_and_changes_no_input(tmp_path, model_file, capsys):
    cases = image_cases(tmp_path / "in")
    before = tree_digest(tmp_path / "in")
    rc = cli.main(["deblur", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(model_file),
                   "--device", "cpu", "--quiet", "--max-megapixels", "100"])
    err = capsys.readouterr().err
    refused = [c for c in cases if c.expect != "ok"]
    assert rc == 2
    assert f"{len(refused)} of {len(cases)} image(s) could not be deblurred" in one_line_error(err)
    for case in refused:  # each skipped file named, with its problem, on its own line
        assert any(str(case.path) in line and case.expect in line for line in err.splitlines()), (case.name, err)
    assert tree_digest(tmp_path / "in") == before
    written = {p.relative_to(tmp_path / "out").as_posix() for p in list_images(tmp_path / "out")}
    assert written == {"exif_rotated.png", "cmyk.png", "rgb16.png", "jpeg_named.png"}


def test_each_bad_image_is_refused_by_the_server_with_its_own_message(tmp_path, deblurrer):
    service = DeblurService(deblurrer, "tiny", max_upload_mb=2.0, max_megapixels=0.5)
    for case in image_cases(tmp_path / "in"):
        payload = b"" if case.path.is_symlink() else case.path.read_bytes()
        if case.expect == "ok":
            assert service.deblur_bytes(payload, case.name)["output"].startswith("data:image/png")
            continue
        expect = "the file is empty" if case.name in ("empty.png", "loop.png") else case.expect
        with pytest.raises(server_module.ServiceError) as info:
            service.deblur_bytes(payload, case.name)
        assert case.name in str(info.value) and expect in str(info.value), (case.name, str(info.value))
        too_large = case.name in ("huge.png", "bomb.png")
        assert info.value.status == (413 if too_large else 400), case.name
        assert "not an image" not in str(info.value) or not too_large


def test_exif_orientation_is_applied(tmp_path, deblurrer):
    case = next(c for c in image_cases(tmp_path / "in") if c.name == "exif_rotated.jpg")
    data = read_image(case.path)
    upright = exif_upright_pixels().astype(np.float32) / 255
    assert data.pixels.shape == upright.shape  # 40 high, 24 wide, as displayed
    assert np.abs(data.pixels - upright).mean() < 0.02  # the gradient runs the right way (JPEG noise aside)
    assert deblurrer(case.path).size == (24, 40)


def test_16bit_colour_png_comes_back_16bit(tmp_path, deblurrer):
    import cv2

    case = next(c for c in image_cases(tmp_path / "in") if c.name == "rgb16.png")
    data = read_image(case.path)
    assert data.bits == 16 and data.pixels.shape == (16, 20, 3)
    assert np.array_equal(np.round(data.pixels * 65535).astype(np.uint16), rgb16_pixels())  # all 16 bits, RGB
    deblurrer.deblur_paths([case.path], tmp_path / "out", progress=False)
    out = cv2.imread(str(tmp_path / "out" / "rgb16.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (16, 20, 3)


def test_symlink_loops_end_and_list_nothing_twice(tmp_path):
    image_cases(tmp_path / "in")
    names = [p.name for p in list_images(tmp_path / "in")]
    assert len(names) == len(set(names)) and "loop.png" in names


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(header_only_png(12_000, 10_000))
    with pytest.raises(Exception, match="120.0 megapixels is over the limit of 100"):
        decode_image(path, max_megapixels=100)


# ---------------------------------------------------------------------------------------------- deblur outputs


def test_an_output_never_replaces_another_input(tmp_path, model_file, capsys):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        Image.fromarray(smooth_rgb(16, 16, seed=ord(folder))).save(tmp_path / folder / "a.png")
    before = tree_digest(tmp_path)
    args = ["--model", str(model_file), "--device", "cpu", "--quiet"]
    # same names from two folders keep their folders, so y/a.png is neither replaced nor renamed a-2.png
    assert cli.main(["deblur", str(tmp_path / "x" / "a.png"), str(tmp_path / "y" / "a.png"), "-o",
                     str(tmp_path / "y"), *args]) == 0
    assert {k: v for k, v in tree_digest(tmp_path).items() if k in before} == before
    assert (tmp_path / "y" / "x" / "a.png").exists() and (tmp_path / "y" / "y" / "a.png").exists()
    # an output that would replace an input (its own or another's) stops the run before anything is written
    (tmp_path / "photos" / "k").mkdir(parents=True)
    (tmp_path / "photos" / "k" / "a.png").write_bytes((tmp_path / "x" / "a.png").read_bytes())
    (tmp_path / "y" / "k").mkdir()
    (tmp_path / "y" / "k" / "a.png").write_bytes((tmp_path / "y" / "a.png").read_bytes())
    before = tree_digest(tmp_path)
    capsys.readouterr()  # photos/k/a.png -> y/k/a.png, which is the other input y/k/a.png
    assert cli.main(["deblur", str(tmp_path / "photos"), str(tmp_path / "y" / "k" / "a.png"), "-o",
                     str(tmp_path / "y"), *args]) == 2
    one_line_error(capsys.readouterr().err, str(tmp_path / "y" / "k" / "a.png"), "photos")
    assert cli.main(["deblur", str(tmp_path / "y" / "a.png"), "-o", str(tmp_path / "y"), *args]) == 2
    one_line_error(capsys.readouterr().err, str(tmp_path / "y" / "a.png"), "overwritten by its own output")
    assert tree_digest(tmp_path) == before


def test_output_folder_equal_to_the_input_folder_says_so(tmp_path, model_file, capsys):
    (tmp_path / "same").mkdir()
    Image.fromarray(smooth_rgb(16, 16)).save(tmp_path / "same" / "a.png")
    assert cli.main(["deblur", str(tmp_path / "same"), "-o", str(tmp_path / "same"), "--model",
                     str(model_file)]) == 2
    line = one_line_error(capsys.readouterr().err, "inside the output folder")
    assert "no image files" not in line


def test_nan_output_is_an_error_not_a_black_image(tmp_path, model_cfg):
    net = Translator(model_cfg).eval().deblur_net()
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(float("nan"))
    deblurrer = Deblurrer(net, model_cfg, device="cpu")
    with pytest.raises(ValueError, match="NaN"):
        deblurrer.deblur_pixels(np.full((16, 16, 3), 0.5, dtype=np.float32))
    Image.fromarray(smooth_rgb(16, 16)).save(tmp_path / "a.png")
    with pytest.raises(Exception, match="1 of 1"):
        deblurrer.deblur_paths([tmp_path / "a.png"], tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "a.png").exists()


# ---------------------------------------------------------------------------------------------- model files


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory, model_file, model_cfg):
    return model_cases(tmp_path_factory.mktemp("models"), model_file, dataclasses.asdict(model_cfg))


def test_every_bad_model_file_is_refused_by_deblur_and_export(tmp_path, bad_models, capsys):
    Image.fromarray(smooth_rgb(16, 16)).save(tmp_path / "a.png")
    for case in bad_models:
        assert cli.main(["deblur", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model",
                         str(case.path), "--device", "cpu", "--quiet"]) == 2, case.name
        one_line_error(capsys.readouterr().err, case.name, case.expect)
        assert not (tmp_path / "out").exists(), case.name
    for case in bad_models[:3]:  # NaN weights, claimed widths
        assert cli.main(["export", str(case.path), "--onnx", "-o", str(tmp_path / "m.onnx")]) == 2, case.name
        one_line_error(capsys.readouterr().err, case.name, case.expect)


def test_model_metadata_is_checked_against_the_tensors_before_building(bad_models, monkeypatch):
    from udeblur.model import DeblurNet

    built = []
    original = DeblurNet.from_config.__func__

    def spy(cls, cfg):
        built.append((cfg.width, torch.get_default_device().type))
        return original(cls, cfg)

    monkeypatch.setattr(DeblurNet, "from_config", classmethod(spy))
    case = next(c for c in bad_models if c.name == "huge_width.safetensors")
    with pytest.raises(CheckpointError, match="does not match its weights"):
        load_deblur_net(case.path)
    assert built == [(200_000, "meta")]  # only ever built without memory


# ---------------------------------------------------------------------------------------------- configs


@pytest.mark.parametrize(("override", "key"), BAD_OVERRIDES)
def test_bad_config_values_are_one_line_naming_the_key(tmp_path, capsys, override, key):
    assert cli.main(["train", "--config", "tiny", "--out", str(tmp_path / "run"), override]) == 2
    one_line_error(capsys.readouterr().err, key)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("override", "want"), GOOD_OVERRIDES)
def test_scientific_notation_is_a_number(override, want):
    section, key, value = want
    got = getattr(getattr(load_config("tiny", [override]), section), key)
    assert got == value and type(got) is type(value)


def test_scientific_notation_in_a_yaml_file(tmp_path):
    (tmp_path / "c.yaml").write_text("base: tiny\ntrain: {lr: 2e-4, total_steps: 1e3}\n")
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg.train.lr == 2e-4 and cfg.train.total_steps == 1000
    (tmp_path / "d.yaml").write_text("base: tiny\nloss: {kl: .nan}\n")
    with pytest.raises(ConfigError, match="loss.kl"):
        load_config(tmp_path / "d.yaml")


# ---------------------------------------------------------------------------------------------- training faults


TINY = ["--config", "tiny", "--quiet", "loss.perceptual=0", "train.checkpoint_every=2", "train.log_every=1"]


def test_resume_without_a_checkpoint_and_unusable_out_folders(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["train", "--out", str(tmp_path / "empty"), "--resume", *TINY]) == 2
    one_line_error(capsys.readouterr().err, "holds no checkpoint", "leave out --resume")
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file", tmp_path / "file" / "run"):
        assert cli.main(["train", "--out", str(out), *TINY]) == 2
        one_line_error(capsys.readouterr().err, str(out))


def test_resume_from_a_wrong_structure_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "run" / CHECKPOINT_NAME
    ckpt.parent.mkdir(parents=True)
    torch.save(wrong_structure_train_state(load_config("tiny", ["loss.perceptual=0"])), ckpt)
    before = ckpt.read_bytes()
    assert cli.main(["train", "--out", str(tmp_path / "run"), "--resume", "--quiet"]) == 2
    one_line_error(capsys.readouterr().err, str(ckpt), "cannot resume")
    assert ckpt.read_bytes() == before


def test_full_disk_while_saving_is_one_line_and_keeps_the_checkpoint(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert cli.main(["train", "--out", str(run), "--steps", "2", *TINY]) == 0
    before = (run / CHECKPOINT_NAME).read_bytes()

    def full(obj, f, *a, **k):
        Path(f).write_bytes(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 1 vs 0\nbasic_ios::clear")

    monkeypatch.setattr(torch, "save", full)
    capsys.readouterr()
    assert cli.main(["train", "--out", str(run), "--resume", "--steps", "4", "--quiet"]) == 2
    one_line_error(capsys.readouterr().err, str(run / CHECKPOINT_NAME), "disk space")
    assert (run / CHECKPOINT_NAME).read_bytes() == before
    assert not list((run / "checkpoints").glob("*.partial"))


def test_stale_partial_files_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "checkpoints" / "last.pt"
    path.parent.mkdir()
    stale = path.parent / ".last.pt.k1ll3d.partial"
    stale.write_bytes(b"half a checkpoint")
    other = path.parent / ".other.pt.x.partial"  # another file's: not ours to remove
    other.write_bytes(b"x")
    save_checkpoint(path, {"step": 1})
    assert not stale.exists() and other.exists()


def test_log_has_each_step_once_after_a_kill_and_resume(tmp_path):
    cfg = load_config("tiny", ["loss.perceptual=0", "train.total_steps=4", "train.checkpoint_every=2",
                               "train.log_every=1"])
    Trainer(cfg, tmp_path, progress=False).fit(max_steps=2)
    with open(tmp_path / "log.jsonl", "a") as fh:  # steps 3 and 4 logged by a run killed before its checkpoint
        fh.write(json.dumps({"step": 3, "g_total": 1.0}) + "\n" + json.dumps({"step": 4, "g_total": 1.0}) + "\n")
        fh.write('{"step": 5, "g_to')  # torn by the kill
    Trainer(cfg, tmp_path, resume=True, progress=False).fit()
    steps = [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4] and [r["step"] for r in read_log(tmp_path)] == steps


def test_ctrl_c_saves_and_exits_130(tmp_path, capsys, monkeypatch):
    import signal

    original = Trainer.train_step

    def step_then_ctrl_c(self, batch):
        logs = original(self, batch)
        if self.step == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return logs

    monkeypatch.setattr(Trainer, "train_step", step_then_ctrl_c)
    assert cli.main(["train", "--out", str(tmp_path / "run"), "--steps", "5", *TINY]) == 130
    assert "--resume" in capsys.readouterr().err
    assert torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=True)["step"] == 1


# ---------------------------------------------------------------------------------------------- the server


@pytest.fixture()
def serve(deblurrer):
    servers = []

    def start(**options) -> tuple[DeblurService, str]:
        service = DeblurService(deblurrer, "tiny", max_upload_mb=2.0, max_megapixels=0.5)
        server = make_server(service, "127.0.0.1", 0, **options)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return service, f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def png(h: int = 16, w: int = 16) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(smooth_rgb(h, w)).save(buf, "PNG")
    return buf.getvalue()


def post(url: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url + "/api/deblur", data=body, method="POST",
                                     headers={"X-Filename": "x.png", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def raw_request(url: str, head: bytes) -> bytes:
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_fifty_concurrent_uploads_are_all_answered(serve):
    _, url = serve(workers=2)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(post(url, png())[0])) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 50


def test_the_excess_beyond_workers_and_queue_gets_503_with_a_message(serve):
    service, url = serve(workers=1, waiting=1)
    results: list[tuple[int, dict]] = []
    with service._lock:  # the one worker blocks inside the first request
        threads = [threading.Thread(target=lambda: results.append(post(url, png()))) for _ in range(5)]
        for t in threads:
            t.start()
        for _ in range(2400):  # one in the worker, one queued: the other three are refused at once
            if sum(1 for code, _ in results if code == 503) >= 3:
                break
            time.sleep(0.05)
    for t in threads:
        t.join()
    refused = [body for code, body in results if code == 503]
    assert len(results) == 5 and len(refused) >= 3 and all("busy" in b["error"] for b in refused)
    assert all(code in (200, 503) for code, _ in results)


def test_decoding_happens_inside_the_one_at_a_time_section(serve, monkeypatch):
    service, url = serve()
    held = []
    original = server_module.decode_image

    def spy(*args, **kwargs):
        held.append(service._lock.locked())
        return original(*args, **kwargs)

    monkeypatch.setattr(server_module, "decode_image", spy)
    assert post(url, png())[0] == 200 and held == [True]


def test_bad_lengths_huge_lengths_and_multipart(serve):
    _, url = serve()
    answer = raw_request(url, b"POST /api/deblur HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 400") and b"Content-Length" in answer
    # 10^12 bytes announced, none sent: refused at once, nothing read
    answer = raw_request(url, b"POST /api/deblur HTTP/1.1\r\nHost: x\r\nX-Filename: big.png\r\n"
                              b"Content-Length: 1000000000000\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 413") and b"big.png" in answer
    boundary = "----udeblur"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"page.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + png(20, 24) + f"\r\n--{boundary}--\r\n".encode()
    code, result = post(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}", "X-Filename": ""})
    assert code == 200 and result["name"] == "page.png" and (result["width"], result["height"]) == (24, 20)
    empty_form = f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--{boundary}--\r\n"
    code, result = post(url, empty_form.encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert code == 400 and "no file" in result["error"]


def test_a_silent_client_is_disconnected(serve):
    _, url = serve(workers=1, timeout=0.5)
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /api/deblur HTTP/1.1\r\n")  # and then nothing
        assert sock.recv(65536) == b""  # the server hangs up instead of waiting forever
    assert post(url, png())[0] == 200  # and the only worker is free again

"""`udeblur serve`: the service on its own, over HTTP, and end to end in a real headless Chromium (Selenium)."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from udeblur.config import load_config
from udeblur.data.blur import camera_shake_kernel, convolve
from udeblur.inference import Deblurrer
from udeblur.model import Translator
from udeblur.web import DeblurService, ServiceError, make_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def service() -> DeblurService:
    torch.manual_seed(0)
    cfg = dataclasses.replace(load_config("tiny").model, init_std=0.1)  # visibly input-dependent random weights
    deblurrer = Deblurrer(Translator(cfg).eval().deblur_net(), cfg, device="cpu")
    return DeblurService(deblurrer, "tiny-test", max_upload_mb=2.0, max_megapixels=0.5)


@pytest.fixture(scope="module")
def server_url(service, tmp_path_factory):
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("server-cwd"))  # anything the server wrote would land here
    server = make_server(service, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        written = os.listdir(".")
        os.chdir(cwd)
        assert written == [], f"the server wrote files: {written}"


@pytest.fixture(scope="module")
def blurred_text_png(tmp_path_factory) -> Path:
    """A real photographed page (scikit-image's `text`), blurred by a 15 px camera-shake kernel."""
    from skimage import data

    sharp = data.text().astype(np.float32) / 255.0
    kernel = camera_shake_kernel(15, np.random.default_rng(3))
    blurred = np.clip(convolve(sharp[..., None], kernel), 0, 1)[..., 0]
    path = tmp_path_factory.mktemp("upload") / "blurred text.png"
    Image.fromarray((blurred * 255).round().astype(np.uint8)).save(path)
    return path


def png_bytes(h: int, w: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def decode_data_url(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def post(url: str, body: bytes, name: str = "x.png") -> tuple[int, dict]:
    req = urllib.request.Request(url + "/api/deblur", data=body, method="POST", headers={"X-Filename": name})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# ---------------------------------------------------------------------------------------------- service, HTTP


def test_service_deblurs_to_the_same_size(service):
    out = service.deblur_bytes(png_bytes(37, 53), "a.png")
    assert (out["width"], out["height"]) == (53, 37)
    before, after = decode_data_url(out["input"]), decode_data_url(out["output"])
    assert before.size == after.size == (53, 37)
    assert np.abs(np.asarray(before, np.int16) - np.asarray(after, np.int16)).mean() > 1


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        (b"hello, this is text", 400, "notes.txt: not an image"),
        (b"", 400, "notes.txt: the file is empty"),
        (png_bytes(800, 800), 413, "640000 px|0.6 megapixels is over"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * (3 * 2**20), 413, "upload limit of 2 MB"),
    ],
    ids=["not-an-image", "empty", "too-many-pixels", "too-many-bytes"],
)
def test_refusals_name_the_file_and_the_limit(service, server_url, payload, status, message):
    with pytest.raises(ServiceError) as info:
        service.deblur_bytes(payload, "notes.txt")
    assert info.value.status == status
    code, body = post(server_url, payload, "notes.txt")
    assert code == status
    assert any(m in body["error"] for m in message.split("|")), body["error"]


def test_truncated_image_is_a_clear_error(service):
    data = png_bytes(60, 60)
    with pytest.raises(ServiceError, match="cut.png: corrupt or truncated image"):
        service.deblur_bytes(data[: len(data) // 2], "cut.png")


def test_http_page_info_and_unknown_paths(server_url):
    with urllib.request.urlopen(server_url + "/", timeout=10) as resp:
        assert b"udeblur" in resp.read() and resp.headers["Content-Type"].startswith("text/html")
    with urllib.request.urlopen(server_url + "/api/info", timeout=10) as resp:
        assert json.loads(resp.read()) == {"model": "tiny-test", "max_upload_mb": 2.0, "max_megapixels": 0.5}
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server_url + "/../../etc/passwd", timeout=10)
    assert info.value.code == 404


def test_server_binds_to_localhost_by_default(service):
    server = make_server(service, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


# ---------------------------------------------------------------------------------------------- real browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):  # the README's test command installs them: a missing step fails, not skips
        pytest.fail("the browser test needs Debian's chromium and chromium-driver on PATH (see the README's test "
                    "command: apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1200,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_browser_upload_shows_the_result_and_rejects_a_non_image(browser, server_url, blurred_text_png, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server_url + "/")
    wait = WebDriverWait(browser, 120)
    wait.until(lambda d: "tiny-test" in d.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "files").send_keys(str(blurred_text_png))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#list button"))
    wait.until(lambda d: d.execute_script("return document.getElementById('after').naturalWidth") > 0)
    sizes = browser.execute_script(
        "const a = document.getElementById('after'), b = document.getElementById('before');"
        "return [a.naturalWidth, a.naturalHeight, b.naturalWidth, b.naturalHeight];"
    )
    source = Image.open(blurred_text_png)
    assert sizes == [*source.size, *source.size]
    result = decode_data_url(browser.find_element(By.ID, "download").get_attribute("href"))
    assert result.size == source.size
    diff = np.abs(np.asarray(result.convert("L"), np.int16) - np.asarray(source, np.int16)).mean()
    assert diff > 1, "the returned image should differ from the upload"
    assert "1 of 1 deblurred" in browser.find_element(By.ID, "progress-text").text
    assert browser.find_element(By.ID, "error").text == ""
    # slider and zoom act on the view
    browser.execute_script("const z = document.getElementById('zoom'); z.value = 200; z.oninput();")
    assert "scale(2)" in browser.find_element(By.ID, "stack").get_attribute("style")

    not_image = tmp_path / "notes.txt"
    not_image.write_text("this is not an image")
    browser.find_element(By.ID, "files").send_keys(str(not_image))
    wait.until(lambda d: "not an image" in d.find_element(By.ID, "error").text)
    assert "notes.txt" in browser.find_element(By.ID, "error").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#list button")) == 1  # the failed file added nothing


def test_serve_command_starts_with_a_given_model(tmp_path):
    """`udeblur serve --model PATH --port 0` prints its URL and serves; SIGTERM stops it cleanly (SIGINT may be
    ignored in a process started from a non-interactive shell's background job, as CI runners do)."""
    import signal
    import subprocess
    import sys

    from udeblur.training.checkpoint import export_deblur_net

    cfg = load_config("tiny").model
    model = tmp_path / "m.safetensors"
    export_deblur_net(Translator(cfg).deblur_net(), cfg, model)
    cmd = [sys.executable, "-m", "udeblur.cli.main", "serve", "--model", str(model), "--port", "0", "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line + proc.stderr.read() if proc.poll() is not None else line
        url = line.split()[2].rstrip("/")
        with urllib.request.urlopen(url + "/api/info", timeout=30) as resp:
            assert json.loads(resp.read())["model"] == "m.safetensors"
        code, body = post(url, png_bytes(24, 32))
        assert code == 200 and (body["width"], body["height"]) == (32, 24)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "m.safetensors.sha256"]  # wrote nothing


def test_serve_command_reports_a_bad_model_in_one_line(tmp_path, capsys):
    from udeblur.cli import main as cli

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    assert cli.main(["serve", "--model", str(bad), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "bad.safetensors" in err and "Traceback" not in err

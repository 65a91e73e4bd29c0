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
        info = json.loads(resp.read())
    examples = info.pop("examples")
    assert info == {"model": "tiny-test", "max_upload_mb": 2.0, "max_megapixels": 0.5, "about": {}}
    assert len(examples) >= 3 and all(e["caption"] for e in examples)
    with urllib.request.urlopen(server_url + examples[0]["url"], timeout=10) as resp:
        assert resp.headers["Content-Type"] == "image/png" and Image.open(io.BytesIO(resp.read())).size[0] > 32
    for path in ("/examples/examples.json", "/examples/../server.py", "/examples/nope.png"):
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(server_url + path, timeout=10)
        assert missing.value.code == 404
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

    from udeblur.model_files import export_deblur_net

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


def test_shipped_examples_are_small_blurred_images():
    from udeblur.web.examples import example_bytes, list_examples

    examples = list_examples()
    sizes = [len(example_bytes(e["name"])) for e in examples]
    assert len(examples) >= 3 and sum(sizes) < 200 * 1024  # package data stays small


def test_browser_example_click_deblurs_it_and_labels_stay_put_when_zooming(browser, server_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server_url + "/")
    wait = WebDriverWait(browser, 120)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#examples button.example"))
    assert browser.find_element(By.ID, "description").text.startswith("udeblur removes blur")
    before = len(browser.find_elements(By.CSS_SELECTOR, "#list button"))
    example = browser.find_elements(By.CSS_SELECTOR, "#examples button.example")[0]
    name = example.get_attribute("data-name")
    example.click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#list button")) == before + 1)
    wait.until(lambda d: name in d.find_element(By.ID, "meta").text)
    assert browser.find_element(By.ID, "error").text == ""
    shipped = Image.open(io.BytesIO(urllib.request.urlopen(f"{server_url}/examples/{name}", timeout=10).read()))
    result = decode_data_url(browser.find_element(By.ID, "download").get_attribute("href"))
    assert result.size == shipped.size

    def label_boxes() -> list[tuple[float, float, float, float]]:
        # relative to the viewer's box: a page scrollbar appearing with the taller view may shift the whole page
        return [tuple(browser.execute_script(
            "const r = document.getElementById(arguments[0]).getBoundingClientRect(),"
            " v = document.getElementById('frame').getBoundingClientRect();"
            "return [r.left - v.left, r.top - v.top, r.width, v.right - r.right];", tag))
            for tag in ("tag-before", "tag-after")]

    def anchors(boxes: list) -> list:
        return [boxes[0][:3], boxes[1][1:]]  # the left label by its left edge, the right one by its right edge

    at_100 = label_boxes()
    browser.execute_script("const z = document.getElementById('zoom'); z.value = 400; z.oninput();")
    assert "scale(4)" in browser.find_element(By.ID, "stack").get_attribute("style")
    assert anchors(label_boxes()) == anchors(at_100)  # neither scaled nor pushed away by the zoom
    for left, top, _, right in at_100:
        assert left >= 0 and right >= 0 and 0 <= top < 20  # both on screen, at the top of the picture


def test_browser_demo_page_shows_labelled_before_after_at_a_readable_scale(browser, tmp_path_factory):
    """`udeblur demo` (bundled model, the tiny preset's 8 test crops): labelled columns, crops at 2-3x drawn
    pixelated, a working slider on a whole photograph, the gain with its interval; a screenshot is kept."""
    from selenium.webdriver.common.by import By

    from udeblur.cli import main as cli

    out = tmp_path_factory.mktemp("demo")
    assert cli.main(["demo", "--config", "tiny", "--out", str(out), "--quiet"]) == 0
    browser.set_window_size(1280, 1600)
    browser.get((out / "index.html").as_uri())
    heads = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "table.crops th")]
    assert heads == ["blurred input", "udeblur", "sharp (truth)"]
    crops = browser.find_elements(By.CSS_SELECTOR, "table.crops img")
    assert len(crops) == 3 * 8
    for img in crops[:3]:
        natural, shown = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].width]", img)
        assert 2 * natural <= shown <= 3 * natural
        assert img.value_of_css_property("image-rendering") == "pixelated"
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "PSNR gain" in text and "95% interval" in text and "What it does not do" in text
    top = browser.find_element(By.CSS_SELECTOR, ".compare .top")
    assert {t.text for t in browser.find_elements(By.CSS_SELECTOR, ".compare .tag")} == {"blurred", "udeblur"}
    browser.execute_script("const r = document.getElementById('page-slider'); r.value = 20;"
                           "r.dispatchEvent(new Event('input'));")
    assert "80%" in top.value_of_css_property("clip-path")
    natural = browser.execute_script("return arguments[0].naturalWidth", top)
    assert natural == Image.open(out / "page" / "sharp.png").size[0]  # the whole photograph, not a crop
    assert browser.save_screenshot(str(out / "screenshot.png"))
    assert Image.open(out / "screenshot.png").size[0] >= 1000

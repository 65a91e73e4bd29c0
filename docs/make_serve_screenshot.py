"""Make docs/serve.png: `udeblur serve` in headless Chromium after one upload (the README's screenshot).

    python docs/make_serve_screenshot.py [--model PATH] [--out docs/serve.png]

Needs Debian's chromium + chromium-driver and selenium (test extras). The upload is scikit-image's `page`
(a real scanned page), blurred by a 17 px camera-shake kernel.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from skimage import data

from udeblur.data.blur import camera_shake_kernel, convolve
from udeblur.inference import Deblurrer
from udeblur.inference.deblurrer import load_pretrained
from udeblur.web import DeblurService, make_server


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="model file; default: the bundled one")
    ap.add_argument("--out", default=str(Path(__file__).with_name("serve.png")))
    args = ap.parse_args()
    deblurrer = Deblurrer.from_checkpoint(args.model, device="cpu") if args.model else load_pretrained(device="cpu")
    service = DeblurService(deblurrer, Path(args.model).name if args.model else "bundled (text.safetensors)")
    server = make_server(service, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        sharp = data.page().astype(np.float32) / 255.0
        blurred = np.clip(convolve(sharp[..., None], camera_shake_kernel(17, np.random.default_rng(5))), 0, 1)
        upload = Path(tmp) / "page-blurred.png"
        Image.fromarray((blurred[..., 0] * 255).round().astype(np.uint8)).save(upload)
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--no-first-run", "--window-size=1100,760", f"--user-data-dir={tmp}/profile"):
            opts.add_argument(flag)
        driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
        try:
            driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
            driver.find_element(By.ID, "files").send_keys(str(upload))
            WebDriverWait(driver, 300).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#list button"))
            driver.execute_script("const z = document.getElementById('zoom'); z.value = 175; z.oninput();")
            time.sleep(0.5)
            driver.save_screenshot(args.out)
        finally:
            driver.quit()
            server.shutdown()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""The same pipeline on a face domain: CelebA layout -> prepare -> train -> deblur -> eval, on real face photos.

No face training set exists offline; the real faces that installed packages ship (scikit-image's astronaut,
matplotlib's grace_hopper) are cut into a small CelebA-like folder. This checks the plumbing, not quality.
"""

import csv
import json
from pathlib import Path

import matplotlib.cbook
import numpy as np
from PIL import Image
from skimage import data as skdata

from udeblur.cli.main import main
from udeblur.config import load_config
from udeblur.data.prepare import prepare_celeba
from udeblur.evaluation.test_set import is_face_data
from udeblur.imageio import list_images, read_image
from udeblur.inference.deblurrer import Deblurrer
from udeblur.metrics.face import SAME_PERSON_THRESHOLD
from udeblur.training.trainer import EXPORT_NAME, Trainer


def _faces() -> list[np.ndarray]:
    hopper = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
    astronaut = skdata.astronaut()
    return [astronaut[0:300, 100:320], hopper[40:400, 80:420]]


def _celeba_folder(root: Path, n: int = 12, size: tuple[int, int] = (89, 109)) -> Path:
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    faces = _faces()
    for i in range(n):
        face = faces[i % 2]
        dy, dx = rng.integers(0, 20, size=2)
        crop = face[dy : dy + face.shape[0] - 20, dx : dx + face.shape[1] - 20]
        img = Image.fromarray(crop).resize(size, Image.BICUBIC)  # default: CelebA's aligned 178x218, halved
        if i % 3 == 0:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        img.save(folder / f"{i + 1:06d}.jpg", quality=92)
    return root


def test_face_pipeline_end_to_end(tmp_path):
    src = _celeba_folder(tmp_path / "celeba")
    out = tmp_path / "prepared"
    prepare_celeba(src, out, seed=0, n_sharp=5, n_blurred=5, n_test=2, workers=1, progress=False)
    assert len(list_images(out / "train" / "sharp")) == 5 and len(list_images(out / "test" / "blurred")) == 2

    cfg = load_config("tiny", ["loss.perceptual=0", "train.total_steps=4", "data.load_size=48"])
    trainer = Trainer(cfg, tmp_path / "run", progress=False, data_root=out)
    trainer.fit()

    deblur = Deblurrer.from_checkpoint(tmp_path / "run" / EXPORT_NAME, device="cpu")
    blurred = list_images(out / "test" / "blurred")[0]
    result = deblur(blurred)
    assert result.size == Image.open(blurred).size  # exactly the input's size, no resizing
    assert read_image(blurred).pixels.shape[:2] == (result.size[1], result.size[0])


def test_eval_measures_face_identity_on_face_data(tmp_path):
    # CelebA's full aligned size: dlib's detector finds these faces (halved, some are missed)
    src = _celeba_folder(tmp_path / "celeba", size=(178, 218))
    data = tmp_path / "prepared"
    prepare_celeba(src, data, seed=0, n_sharp=4, n_blurred=4, n_test=4, workers=1, progress=False)
    assert is_face_data(data) and is_face_data(data / "test")

    out = tmp_path / "eval"
    assert main(["eval", "-d", str(data), "-b", "blurred", "-b", "oracle_wiener", "--no-feature-distance",
                 "-o", str(out), "--quiet"]) == 0  # no --face: the manifest says CelebA
    summary = json.loads((out / "summary.json").read_text())
    blurred, oracle = (summary["methods"][m]["face_id_dist"] for m in ("blurred", "oracle_wiener"))
    assert blurred["n"] == oracle["n"] == 4  # a face in every sharp test image
    # deconvolution with the true kernel brings every face closer to its sharp self than the blurred input
    assert 0 < oracle["mean"] < blurred["mean"] < SAME_PERSON_THRESHOLD
    assert summary["vs_blurred"]["oracle_wiener"]["face_id_dist"]["better"] == 4

    assert main(["eval", "-d", str(data), "-b", "blurred", "--no-feature-distance", "--no-face", "--limit", "1",
                 "-o", str(tmp_path / "plain"), "--quiet"]) == 0
    with open(tmp_path / "plain" / "per_image.csv", newline="") as fh:
        assert "face_id_dist" not in next(csv.reader(fh))


def test_other_data_is_not_face_data(tmp_path):
    for sub in ("sharp", "blurred"):
        (tmp_path / "test" / sub).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "test" / sub / "a.png")
    assert not is_face_data(tmp_path)  # no manifest
    (tmp_path / "manifest.json").write_text(json.dumps({"dataset": "folder"}))
    assert not is_face_data(tmp_path)

"""The same pipeline on a face domain: CelebA layout -> prepare -> train -> deblur, on real face photos.

No face training set exists offline; the real faces that installed packages ship (scikit-image's astronaut,
matplotlib's grace_hopper) are cut into a small CelebA-like folder. This checks the plumbing, not quality.
"""

from pathlib import Path

import matplotlib.cbook
import numpy as np
from PIL import Image
from skimage import data as skdata

from udeblur.config import load_config
from udeblur.data.prepare import prepare_celeba
from udeblur.imageio import list_images, read_image
from udeblur.inference.deblurrer import Deblurrer
from udeblur.training.trainer import EXPORT_NAME, Trainer


def _faces() -> list[np.ndarray]:
    hopper = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
    astronaut = skdata.astronaut()
    return [astronaut[0:300, 100:320], hopper[40:400, 80:420]]


def _celeba_folder(root: Path, n: int = 12) -> Path:
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    faces = _faces()
    for i in range(n):
        face = faces[i % 2]
        dy, dx = rng.integers(0, 20, size=2)
        crop = face[dy : dy + face.shape[0] - 20, dx : dx + face.shape[1] - 20]
        img = Image.fromarray(crop).resize((89, 109), Image.BICUBIC)  # CelebA's aligned 178x218, halved
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

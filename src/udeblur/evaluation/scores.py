"""Per-image scores of a restored image against its sharp truth, measured the same way for every method.

Metrics per image (restored vs sharp, RGB in [0, 1], no border crop, the restored image rounded to 8 bits as a
saved PNG would be, :func:`quantise`):
    * ``psnr`` (dB), ``ssim``: :mod:`udeblur.metrics.image_quality` (Wang et al. Gaussian SSIM).
    * ``feat_dist``: L2 distance of ImageNet VGG-16 pool5 features (the Keras/Caffe VGG-16 of
      :mod:`udeblur.archs.vgg`, features divided by their RMS on natural images;
      :mod:`udeblur.metrics.feature_distance`). The paper used VGG-19 pool5 for text; its weights are not
      available offline here. Lower is better; NaN for images under 32 px.
    * with ``face=True``: ``face_id_dist``, the distance of dlib's 128-D face descriptors
      (:mod:`udeblur.metrics.face`), both taken at the face box found in the SHARP image (a blurred face is often
      not detected at all). It stands in for the paper's VGG-Face feature distance on faces (VGG-Face weights are
      not available offline). Lower is better, < 0.6 is the same person by dlib's rule; NaN where the sharp image
      shows no face.
    * with ``ocr=True``: ``ocr_char_acc``, ``ocr_word_acc``, ``ocr_char_acc_nospace`` from RapidOCR
      (:mod:`udeblur.metrics.ocr`) against the TRUE text (``test/text.jsonl``) when present, else against the
      OCR of the sharp image. The sharp image itself is scored too (method ``sharp``): the OCR engine's ceiling.
      The true text lists only fully visible characters, so even the sharp image rarely scores 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .test_set import TestItem

__all__ = ["METRICS", "Scorer", "quantise"]

# metric -> (label, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "psnr": ("PSNR (dB)", True),
    "ssim": ("SSIM", True),
    "feat_dist": ("VGG-16 pool5 feature distance", False),
    "face_id_dist": ("face identity distance (dlib)", False),
    "ocr_char_acc": ("OCR character accuracy", True),
    "ocr_word_acc": ("OCR word accuracy", True),
    "ocr_char_acc_nospace": ("OCR char. accuracy (no spaces)", True),
}


def quantise(img: np.ndarray) -> np.ndarray:
    """What a saved 8-bit PNG holds, so numbers match files on disk (and the blurred input's)."""
    return (np.round(np.clip(img, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


class Scorer:
    """Scores restored images of ``items``; what the sharp images give (OCR reference, face box) is computed once.

    ``sharp_rows``: the OCR ceiling rows (method ``sharp``) for the images whose true text is known.
    """

    def __init__(self, items: Sequence[TestItem], *, feature_distance: bool = True, ocr: bool = False,
                 face: bool = False, progress: bool = True):
        self.feat_net = None
        if feature_distance:
            from ..archs.vgg import load_perceptual_net

            self.feat_net = load_perceptual_net("vgg16", "pool5")
        self.ocr, self.face = ocr, face
        self.sharp_ocr: dict[str, str] = {}
        self.sharp_rows: list[dict[str, Any]] = []
        if ocr:
            self._read_sharp_text(items, progress)
        self.sharp_faces: dict[str, tuple[Any, np.ndarray | None]] = {}  # name -> (box, descriptor)
        if face:
            from ..metrics.face import face_box, face_descriptor

            for item in tqdm(items, desc="faces sharp", unit="img", disable=not progress):
                box = face_box(item.sharp)
                self.sharp_faces[item.name] = (box, None if box is None else face_descriptor(item.sharp, box))

    def _read_sharp_text(self, items: Sequence[TestItem], progress: bool) -> None:
        from ..metrics.ocr import character_accuracy, ocr_text, word_accuracy

        # each sharp image is read once: it is the reference where the true text is unknown, and scored
        # against the true text (the OCR ceiling) where it is known
        for item in tqdm(items, desc="OCR sharp", unit="img", disable=not progress):
            read = self.sharp_ocr[item.name] = ocr_text(item.sharp)
            if item.text is not None:
                self.sharp_rows.append({
                    "method": "sharp", "image": item.name, "ocr_char_acc": character_accuracy(read, item.text),
                    "ocr_word_acc": word_accuracy(read, item.text),
                    "ocr_char_acc_nospace": character_accuracy(read, item.text, ignore_spaces=True),
                    "ocr_reference": "truth", "ocr_text": read})

    def score(self, method: str, item: TestItem, restored: np.ndarray) -> dict[str, Any]:
        """The row of ``restored`` (quantised, ``item.sharp``'s shape): method, image and every metric asked for."""
        from ..metrics.image_quality import psnr, ssim

        row: dict[str, Any] = {"method": method, "image": item.name,
                               "psnr": psnr(restored, item.sharp), "ssim": ssim(restored, item.sharp)}
        if self.feat_net is not None:
            from ..metrics.feature_distance import image_feature_distance

            row["feat_dist"] = image_feature_distance(self.feat_net, restored, item.sharp, "pool5")
        if self.face:
            from ..metrics.face import identity_distance

            box, sharp_descriptor = self.sharp_faces[item.name]
            row["face_id_dist"] = (float("nan") if sharp_descriptor is None else
                                   identity_distance(restored, sharp_descriptor, box=box))
        if self.ocr:
            from ..metrics.ocr import ocr_scores

            sc = ocr_scores(restored, item.text, reference_text=self.sharp_ocr[item.name])
            row.update({"ocr_char_acc": sc.character_accuracy, "ocr_word_acc": sc.word_accuracy,
                        "ocr_char_acc_nospace": sc.character_accuracy_ignoring_spaces,
                        "ocr_reference": sc.reference, "ocr_text": sc.text})
        return row

"""Evaluation metrics.

* :mod:`udeblur.metrics.image_quality`: PSNR and SSIM (RGB or BT.601 Y, border crop; numpy images and
  batched torch tensors; SSIM equal to scikit-image's Wang et al. settings), :func:`evaluate_pairs` for
  large test sets with a progress bar.
* :mod:`udeblur.metrics.feature_distance`: the paper's VGG feature distance (pool5, deblurred vs sharp).
* :mod:`udeblur.metrics.ocr`: OCR with RapidOCR (``pip install rapidocr-onnxruntime``), character and word
  accuracy.
* :mod:`udeblur.metrics.face`: dlib 128-D face identity distance (``pip install dlib-bin
  face_recognition_models``).

The OCR and face engines are optional: importing this package needs neither; calling them without the
engine installed raises an ImportError subclass whose message gives the install command.
"""

from udeblur.metrics.face import (
    SAME_PERSON_THRESHOLD,
    FaceModelsNotAvailableError,
    face_box,
    face_descriptor,
    identity_distance,
)
from udeblur.metrics.feature_distance import feature_distance, image_feature_distance
from udeblur.metrics.image_quality import evaluate_pairs, psnr, rgb_to_y, ssim
from udeblur.metrics.ocr import (
    OCRNotAvailableError,
    OCRScores,
    character_accuracy,
    ocr_scores,
    ocr_text,
    ocr_texts,
    word_accuracy,
)

__all__ = [
    "psnr",
    "ssim",
    "rgb_to_y",
    "evaluate_pairs",
    "feature_distance",
    "image_feature_distance",
    "ocr_text",
    "ocr_texts",
    "ocr_scores",
    "OCRScores",
    "character_accuracy",
    "word_accuracy",
    "OCRNotAvailableError",
    "face_box",
    "face_descriptor",
    "identity_distance",
    "SAME_PERSON_THRESHOLD",
    "FaceModelsNotAvailableError",
]

"""Face identity distance with dlib's 128-D face descriptor (the model behind ``face_recognition``).

Pipeline: dlib's HOG frontal face detector (image upsampled once, so faces down to about 40 px are found)
-> the 5-point landmark model ``shape_predictor_5_face_landmarks.dat`` -> an aligned 150 x 150 chip ->
``dlib_face_recognition_resnet_model_v1.dat`` (a ResNet-29 giving a 128-D embedding, 99.38% on LFW). Two
faces whose descriptors are closer than 0.6 in Euclidean distance are the same person by dlib's rule
(:data:`SAME_PERSON_THRESHOLD`).

Optional dependency: ``pip install dlib-bin==20.0.1.post1 face_recognition_models==0.3.0`` (dlib-bin is a
prebuilt dlib; face_recognition_models carries the model files). The model folder is found with
``importlib.util.find_spec`` and the package is never imported: its ``__init__`` uses ``pkg_resources``,
which new setuptools no longer has. Models load once per process, on first use.

For deblurring evaluation pass the face box found in the SHARP image (:func:`face_box`) to
:func:`identity_distance` / :func:`face_descriptor`: the detector often finds no face in a blurred (or
badly deblurred) image, and the images of a pair are aligned, so the sharp image's box is the right place.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..imageio import to_rgb_uint8

SAME_PERSON_THRESHOLD = 0.6
INSTALL_HINT = 'pip install "udeblur[face]" (or dlib-bin==20.0.1.post1 face_recognition_models==0.3.0)'
_SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"
_RECOG_MODEL = "dlib_face_recognition_resnet_model_v1.dat"

Box = tuple[int, int, int, int]  # (left, top, right, bottom) in pixels, dlib's rectangle convention

_models: tuple[Any, Any, Any, Any] | None = None
_models_lock = threading.Lock()

__all__ = [
    "Box",
    "FaceModelsNotAvailableError",
    "SAME_PERSON_THRESHOLD",
    "face_box",
    "face_descriptor",
    "identity_distance",
    "model_dir",
]


class FaceModelsNotAvailableError(ImportError):
    """dlib or the face_recognition_models files are not installed."""


def model_dir() -> Path:
    """The ``models`` folder of the installed ``face_recognition_models`` package (without importing it)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelsNotAvailableError(
            f"face identity distance needs the dlib face models (package face_recognition_models), which "
            f"are not installed. Install them with: {INSTALL_HINT}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    missing = [name for name in (_SHAPE_MODEL, _RECOG_MODEL) if not (folder / name).is_file()]
    if missing:
        raise FaceModelsNotAvailableError(
            f"{folder}: missing {', '.join(missing)}; reinstall with: {INSTALL_HINT}"
        )
    return folder


def _get_models() -> tuple[Any, Any, Any, Any]:
    """(dlib module, face detector, 5-point shape predictor, recognition net), loaded once per process."""
    global _models
    if _models is None:
        with _models_lock:
            if _models is None:
                try:
                    import dlib
                except ImportError as exc:
                    raise FaceModelsNotAvailableError(
                        f"face identity distance needs dlib, which is not installed ({exc}). "
                        f"Install it with: {INSTALL_HINT}"
                    ) from exc
                folder = model_dir()
                _models = (
                    dlib,
                    dlib.get_frontal_face_detector(),
                    dlib.shape_predictor(str(folder / _SHAPE_MODEL)),
                    dlib.face_recognition_model_v1(str(folder / _RECOG_MODEL)),
                )
    return _models


def _detect(rgb: np.ndarray, upsample: int) -> Box | None:
    _, detector, _, _ = _get_models()
    rects, scores, _ = detector.run(rgb, upsample, 0.0)
    if len(rects) == 0:
        return None
    # Several detections (e.g. a face printed on a badge): keep the most confident one.
    r = rects[int(np.argmax(scores))]
    return (r.left(), r.top(), r.right(), r.bottom())


def face_box(image: np.ndarray, *, upsample: int = 1) -> Box | None:
    """The most confident face in ``image`` as (left, top, right, bottom), or None when there is none.

    ``image``: H x W x C (C = 1, 3, 4) or H x W, float in [0, 1] or uint8, RGB.
    """
    return _detect(to_rgb_uint8(image), upsample)


def face_descriptor(image: np.ndarray, box: Box | None = None, *, upsample: int = 1) -> np.ndarray | None:
    """dlib's 128-D descriptor (float64) of the face in ``image``.

    ``box=None``: the most confident detected face; returns None when no face is found. With ``box`` (e.g.
    from :func:`face_box` on the sharp image) detection is skipped and the landmarks are fitted inside that
    box, so a blurred face still gets a descriptor.
    """
    dlib, _, shape_predictor, recognizer = _get_models()
    rgb = to_rgb_uint8(image)
    if box is None:
        box = _detect(rgb, upsample)
        if box is None:
            return None
    rect = dlib.rectangle(*(int(v) for v in box))
    shape = shape_predictor(rgb, rect)
    return np.asarray(recognizer.compute_face_descriptor(rgb, shape), dtype=np.float64)


def identity_distance(
    a: np.ndarray, b: np.ndarray, *, box: Box | None = None, upsample: int = 1
) -> float:
    """Euclidean distance between the dlib face descriptors of ``a`` and ``b`` (< 0.6: same person).

    ``a``/``b``: images (H x W x C or H x W, float [0, 1] or uint8) or ready 128-D descriptors. With
    ``box`` both images are described at that box (aligned pairs, e.g. deblurred vs sharp); without it each
    image uses its own most confident face. ``nan`` when a face is not found.
    """

    def describe(x: np.ndarray) -> np.ndarray | None:
        x = np.asarray(x)
        if x.shape == (128,):
            return x.astype(np.float64)
        return face_descriptor(x, box, upsample=upsample)

    da, db = describe(a), describe(b)
    if da is None or db is None:
        return float("nan")
    return float(np.linalg.norm(da - db))

"""OCR of (deblurred) text images and the accuracy of what was read.

Engine: RapidOCR (PyPI ``rapidocr-onnxruntime``), PaddleOCR's PP-OCRv4 detection + recognition networks
run with onnxruntime; the model files ship inside the wheel, so nothing is downloaded. Install with
``pip install rapidocr-onnxruntime==1.4.4``. The engine is created on first use and kept for the process
(loading takes about half a second).

Settings chosen for document crops, and why:
    * no text-angle classifier: it sometimes turned upright lines upside down, and our text is never rotated;
    * text detection at the image's own scale (``det_limit_type="max"``), not upscaled to 736 px: the
      recogniser then kept the spaces between words far more often (space recall on 11-16 px text
      went from about half to about 0.9 in our trial) and it is several times faster;
    * a 16 px border in the image's background colour (the median of its outermost pixels): lines touching
      the edge are otherwise cut short.

Accuracy (both functions compare a prediction with a reference string):
    * whitespace normalisation: leading/trailing whitespace is removed and every run of whitespace
      (spaces, tabs, newlines) becomes one space; nothing else is changed (case and punctuation count).
    * :func:`character_accuracy` = ``max(0, 1 - CER)``, ``CER = Levenshtein(pred, truth) / len(truth)``
      on the normalised strings (unit cost insert/delete/substitute, over Unicode code points).
    * :func:`word_accuracy` = ``H / N``: ``N`` words in the truth (split on whitespace), ``H`` of them aligned
      to an identical predicted word in a minimum word-level edit-distance alignment (ties broken towards more
      such hits). This is NIST sclite's "percent correct": the fraction of truth words read correctly and in
      order; extra predicted words do not lower it (they do lower character accuracy).
    * Empty truth: both are 1.0 when the prediction is empty too, else 0.0.

Known weakness of the engine: PP-OCR's recogniser (trained mostly on Chinese) often drops the spaces of a
moderately blurred English line while still reading every letter (Gaussian sigma 2 on 24 px DejaVu text:
character accuracy 0.81, word accuracy 0). Word accuracy therefore falls faster than legibility;
:func:`character_accuracy` with ``ignore_spaces=True`` (also reported by :func:`ocr_scores`) measures the
letters alone.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..imageio import to_rgb_uint8

INSTALL_HINT = 'pip install "udeblur[ocr]" (or rapidocr-onnxruntime==1.4.4 alone)'
_PAD = 16

_engine: Any = None
_engine_lock = threading.Lock()

__all__ = [
    "OCRNotAvailableError",
    "OCRScores",
    "ocr_text",
    "ocr_texts",
    "character_accuracy",
    "word_accuracy",
    "edit_distance",
    "normalize_whitespace",
    "ocr_scores",
]


class OCRNotAvailableError(ImportError):
    """The OCR engine is not installed."""


def _get_engine() -> Any:
    """The RapidOCR engine, created once per process (thread-safe)."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                try:
                    from rapidocr_onnxruntime import RapidOCR
                except ImportError as exc:
                    raise OCRNotAvailableError(
                        f"OCR metrics need the RapidOCR engine, which is not installed ({exc}). "
                        f"Install it with: {INSTALL_HINT}"
                    ) from exc
                _engine = RapidOCR(use_cls=False, det_limit_type="max", det_limit_side_len=960)
    return _engine


def _to_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] or uint8 image, H x W or H x W x {1, 3, 4}, -> padded uint8 BGR for RapidOCR."""
    arr = to_rgb_uint8(image)
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]], axis=0)
    background = np.median(border, axis=0).astype(np.uint8)
    padded = np.empty((arr.shape[0] + 2 * _PAD, arr.shape[1] + 2 * _PAD, 3), dtype=np.uint8)
    padded[:] = background
    padded[_PAD:-_PAD, _PAD:-_PAD] = arr
    return np.ascontiguousarray(padded[..., ::-1])  # RapidOCR takes numpy input as BGR (OpenCV order)


def _reading_order(results: Sequence[Any]) -> str:
    """Group detected boxes into lines (vertical overlap), order lines top-down and boxes left-right."""
    items = []
    for box, text, _score in results:
        pts = np.asarray(box, dtype=np.float64)
        items.append((pts[:, 1].min(), pts[:, 1].max(), pts[:, 0].min(), str(text)))
    items.sort(key=lambda t: (t[0] + t[1]) / 2)
    lines: list[list[tuple[float, float, float, str]]] = []
    for item in items:
        top, bottom = item[0], item[1]
        if lines:
            cur = lines[-1]
            ctop = min(t[0] for t in cur)
            cbot = max(t[1] for t in cur)
            overlap = min(bottom, cbot) - max(top, ctop)
            # Same line when the boxes share at least half the height of the shorter one.
            if overlap >= 0.5 * min(bottom - top, cbot - ctop):
                cur.append(item)
                continue
        lines.append([item])
    return "\n".join(" ".join(t[3] for t in sorted(line, key=lambda t: t[2])) for line in lines)


def ocr_text(image: np.ndarray) -> str:
    """Read the text in an image: lines in reading order joined with ``"\\n"``, boxes on one line with ``" "``.

    ``image``: ``H x W x C`` (C = 1, 3 or 4; alpha ignored) or ``H x W``, float in [0, 1] or uint8, RGB.
    The engine's output is NFKC-normalised (the PP-OCR model often answers with full-width punctuation, e.g.
    "，" for ","). Returns "" when no text is found. Raises :class:`OCRNotAvailableError` with the install
    command when RapidOCR is missing.
    """
    engine = _get_engine()
    results, _ = engine(_to_bgr_uint8(image))
    if not results:
        return ""
    text = _reading_order(results)
    return unicodedata.normalize("NFKC", text)


def ocr_texts(images: Iterable[np.ndarray], *, progress: bool = True, total: int | None = None) -> list[str]:
    """:func:`ocr_text` for many images, with a tqdm progress bar."""
    if total is None and hasattr(images, "__len__"):
        total = len(images)  # type: ignore[arg-type]
    return [ocr_text(img) for img in tqdm(images, total=total, desc="OCR", unit="img", disable=not progress)]


_WS = re.compile(r"\s+")


def normalize_whitespace(text: str) -> str:
    """Strip the ends and replace every run of whitespace (including newlines) with one space."""
    return _WS.sub(" ", text).strip()


def edit_distance(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Levenshtein distance (unit-cost insertion, deletion, substitution) between two sequences."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def character_accuracy(pred: str, truth: str, *, ignore_spaces: bool = False) -> float:
    """``max(0, 1 - CER)`` with ``CER = Levenshtein(pred, truth) / len(truth)`` after whitespace normalisation
    (see the module doc). 1.0 for an exact read; 1.0/0.0 for an empty truth with an empty/non-empty pred.

    ``ignore_spaces=True`` removes all whitespace from both strings first, so only the visible characters
    count (RapidOCR's recogniser tends to drop the spaces of blurred lines while reading the letters right).
    """
    p, t = normalize_whitespace(pred), normalize_whitespace(truth)
    if ignore_spaces:
        p, t = p.replace(" ", ""), t.replace(" ", "")
    if not t:
        return 1.0 if not p else 0.0
    return max(0.0, 1.0 - edit_distance(p, t) / len(t))


def _word_hits(pred: list[str], truth: list[str]) -> int:
    """Truth words matched exactly in a minimum-edit-distance word alignment, ties broken to more matches."""
    # Each cell holds (edit cost, -hits); tuple comparison minimises the cost first, then maximises hits.
    prev = [(j, 0) for j in range(len(pred) + 1)]
    for i, tw in enumerate(truth, 1):
        cur = [(i, 0)]
        for j, pw in enumerate(pred, 1):
            diag = prev[j - 1]
            match = (diag[0], diag[1] - 1) if tw == pw else (diag[0] + 1, diag[1])
            up = (prev[j][0] + 1, prev[j][1])  # truth word deleted
            left = (cur[j - 1][0] + 1, cur[j - 1][1])  # extra predicted word
            cur.append(min(match, up, left))
        prev = cur
    return -prev[-1][1]


def word_accuracy(pred: str, truth: str) -> float:
    """Fraction of truth words read correctly and in order: ``H / N`` (NIST sclite's "percent correct").

    Words are whitespace-separated tokens (exact, case-sensitive match). ``H`` is the number of truth words
    aligned to an identical predicted word in a minimum word-level Levenshtein alignment, ties broken
    towards more hits; ``N`` is the number of truth words. Extra predicted words do not lower it.
    1.0/0.0 for an empty truth with an empty/non-empty prediction.
    """
    p, t = normalize_whitespace(pred).split(), normalize_whitespace(truth).split()
    if not t:
        return 1.0 if not p else 0.0
    return _word_hits(p, t) / len(t)


@dataclass(frozen=True)
class OCRScores:
    text: str  # what the OCR read in the scored image
    reference_text: str  # the string it was compared with
    reference: str  # "truth" (known text) or "sharp_ocr" (OCR of the sharp reference image)
    character_accuracy: float
    word_accuracy: float
    character_accuracy_ignoring_spaces: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ocr_scores(
    image: np.ndarray,
    truth: str | None = None,
    reference_image: np.ndarray | None = None,
    *,
    reference_text: str | None = None,
) -> OCRScores:
    """OCR ``image`` and score it against the true text when known, else against the sharp image's OCR.

    Priority: ``truth`` (the text that was rendered) -> ``reference_text`` (an already computed
    ``ocr_text(sharp)``; pass it to score several methods against one sharp image without re-reading it)
    -> ``reference_image`` (OCR'd here). At least one must be given.
    """
    if truth is not None:
        ref, kind = truth, "truth"
    elif reference_text is not None:
        ref, kind = reference_text, "sharp_ocr"
    elif reference_image is not None:
        ref, kind = ocr_text(reference_image), "sharp_ocr"
    else:
        raise ValueError("ocr_scores needs truth, reference_text or reference_image to compare with")
    text = ocr_text(image)
    return OCRScores(
        text,
        ref,
        kind,
        character_accuracy(text, ref),
        word_accuracy(text, ref),
        character_accuracy(text, ref, ignore_spaces=True),
    )

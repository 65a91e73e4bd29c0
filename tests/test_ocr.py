"""OCR accuracy functions on hand cases, and the RapidOCR engine on rendered text."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import gaussian_filter

from udeblur.metrics import ocr
from udeblur.metrics.ocr import (
    character_accuracy,
    edit_distance,
    normalize_whitespace,
    ocr_scores,
    ocr_text,
    word_accuracy,
)

_FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
LINE = "Sharp text is easy to read, blurred text is not."


def _render(text: str, size: int, width: int, height: int, xy: tuple[int, int] = (8, 6)) -> np.ndarray:
    """Black DejaVu Sans text on white, float32 H x W x 1 in [0, 1]."""
    img = Image.new("L", (width, height), 255)
    ImageDraw.Draw(img).multiline_text(xy, text, font=ImageFont.truetype(str(_FONT), size), fill=0, spacing=5)
    return (np.asarray(img, dtype=np.float32) / 255.0)[..., None]


# --- accuracy functions --------------------------------------------------------------------------------


def test_edit_distance() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3
    assert edit_distance(["a", "b"], ["a", "b"]) == 0


def test_character_accuracy_hand_cases() -> None:
    assert character_accuracy("hello world", "hello world") == 1.0
    assert character_accuracy("abd", "abc") == pytest.approx(2 / 3)
    assert character_accuracy("", "abc") == 0.0
    assert character_accuracy("abcdefghij", "abc") == 0.0  # CER 7/3 > 1, clipped at 0
    assert character_accuracy("  hello\n\tworld ", "hello world") == 1.0  # whitespace runs -> one space
    assert character_accuracy("Hello", "hello") == pytest.approx(0.8)  # case counts
    assert character_accuracy("", "") == 1.0 and character_accuracy("x", " ") == 0.0
    assert character_accuracy("helloworld", "hello world") == pytest.approx(10 / 11)
    assert character_accuracy("helloworld", "hello world", ignore_spaces=True) == 1.0
    assert normalize_whitespace(" a \n\n b\tc ") == "a b c"


def test_word_accuracy_hand_cases() -> None:
    assert word_accuracy("the cat sat", "the cat sat") == 1.0
    assert word_accuracy("the sat", "the cat sat") == pytest.approx(2 / 3)  # one word missed
    assert word_accuracy("the cot sat", "the cat sat") == pytest.approx(2 / 3)  # one word misread
    assert word_accuracy("sat cat the", "the cat sat") == pytest.approx(1 / 3)  # order matters
    assert word_accuracy("x the y cat z sat", "the cat sat") == 1.0  # extra words do not count
    assert word_accuracy("b c", "a b") == 0.5  # of the equal-cost alignments, the one with the hit
    assert word_accuracy("thecat sat", "the cat sat") == pytest.approx(1 / 3)  # a lost space costs both words
    assert word_accuracy("the\ncat  sat", "the cat sat") == 1.0
    assert word_accuracy("", "the cat") == 0.0
    assert word_accuracy("", "  ") == 1.0 and word_accuracy("a", "") == 0.0


def test_missing_engine_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("rapidocr_onnxruntime"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(ocr, "_engine", None)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ocr.OCRNotAvailableError, match=r"pip install \"udeblur\[ocr\]\""):
        ocr_text(np.ones((32, 32, 1), dtype=np.float32))


def test_ocr_scores_needs_a_reference() -> None:
    with pytest.raises(ValueError, match="truth, reference_text or reference_image"):
        ocr_scores(np.ones((32, 32, 3), dtype=np.float32))


# --- the engine ----------------------------------------------------------------------------------------


def test_clean_line_is_read_and_heavily_blurred_line_is_not() -> None:
    sharp = _render(LINE, 24, 640, 44)
    read = ocr_text(sharp)
    assert character_accuracy(read, LINE) > 0.9, read
    blurred = gaussian_filter(sharp, sigma=(4, 4, 0))
    read_blurred = ocr_text(blurred)
    assert character_accuracy(read_blurred, LINE) < 0.5, read_blurred

    scores = ocr_scores(sharp, truth=LINE)
    assert scores.reference == "truth" and scores.character_accuracy > 0.9 and scores.word_accuracy > 0.8
    vs_sharp = ocr_scores(blurred, reference_image=sharp)
    assert vs_sharp.reference == "sharp_ocr" and vs_sharp.reference_text == read
    assert vs_sharp.character_accuracy < 0.5
    assert set(vs_sharp.as_dict()) >= {"text", "character_accuracy", "word_accuracy"}


def test_lines_come_out_in_reading_order() -> None:
    text = "first line here\nsecond line below\nthird and last"
    img = _render(text, 14, 180, 80)
    # A word far to the right on the first line is a separate box; it must join that line, after it.
    img[6:24, 150:] = 1.0
    side = _render("end", 14, 40, 20, xy=(2, 0))
    img[6:26, 138:178] = side[:20, :40]
    img_rgb = np.repeat(img, 3, axis=2)
    read = ocr_text(img_rgb)
    lines = read.split("\n")
    assert len(lines) == 3, read
    assert lines[0].startswith("first") and lines[0].endswith("end")
    assert word_accuracy(read, "first line here end\nsecond line below\nthird and last") >= 0.8, read
    assert ocr_text(np.ones((40, 120, 3), dtype=np.float32)) == ""  # blank page


def test_skimage_page_is_read() -> None:
    from skimage import data

    read = ocr_text(data.page())  # uint8 grey scan with uneven lighting
    assert "Region-based segmentation" in read
    assert "markers of the coins" in read

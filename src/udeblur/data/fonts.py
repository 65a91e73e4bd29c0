"""Fonts for the text-document domain: matplotlib's bundled TrueType fonts plus usable system fonts.

Bundled (every install has them): DejaVu Sans / Serif / Sans Mono with bold and oblique/italic, STIX General
(a Times-like serif) in four styles, and Computer Modern roman, bold, italic, sans and typewriter. System
fonts under /usr/share/fonts are added when they cover the characters the text generator writes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Every character the text generator may write; a font is used only if it has glyphs for all of them.
CHARSET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    " .,;:!?'\"()-/%$&"
)
# Letters with ascenders and descenders: their ink extent defines the "text height" of a line.
HEIGHT_PROBE = "Hdlbkgjpqy"

_BUNDLED = {
    # file: (family, bold, italic)
    "DejaVuSans.ttf": ("DejaVu Sans", False, False),
    "DejaVuSans-Bold.ttf": ("DejaVu Sans", True, False),
    "DejaVuSans-Oblique.ttf": ("DejaVu Sans", False, True),
    "DejaVuSans-BoldOblique.ttf": ("DejaVu Sans", True, True),
    "DejaVuSerif.ttf": ("DejaVu Serif", False, False),
    "DejaVuSerif-Bold.ttf": ("DejaVu Serif", True, False),
    "DejaVuSerif-Italic.ttf": ("DejaVu Serif", False, True),
    "DejaVuSerif-BoldItalic.ttf": ("DejaVu Serif", True, True),
    "DejaVuSansMono.ttf": ("DejaVu Sans Mono", False, False),
    "DejaVuSansMono-Bold.ttf": ("DejaVu Sans Mono", True, False),
    "DejaVuSansMono-Oblique.ttf": ("DejaVu Sans Mono", False, True),
    "DejaVuSansMono-BoldOblique.ttf": ("DejaVu Sans Mono", True, True),
    "STIXGeneral.ttf": ("STIX General", False, False),
    "STIXGeneralBol.ttf": ("STIX General", True, False),
    "STIXGeneralItalic.ttf": ("STIX General", False, True),
    "STIXGeneralBolIta.ttf": ("STIX General", True, True),
    "cmr10.ttf": ("Computer Modern Roman", False, False),
    "cmb10.ttf": ("Computer Modern Roman", True, False),
    "cmti10.ttf": ("Computer Modern Roman", False, True),
    "cmss10.ttf": ("Computer Modern Sans", False, False),
    "cmtt10.ttf": ("Computer Modern Typewriter", False, False),
}
# System font files that are not running Latin text (symbols, maths, hairline weights, other scripts, ...);
# skipping them by name spares opening hundreds of files on a desktop install.
_SKIP = re.compile(r"math|symbol|emoji|dingbat|icon|braille|extralight|thin|hairline|light|fallback|lastresort"
                   r"|display|wingding|webding|opensymbol|awesome|cjk|arab|hebrew|devanagari|bengali|thai"
                   r"|tamil|telugu|kannada|malayalam|gujarati|gurmukhi|khmer|myanmar|sinhala|tibetan"
                   r"|ethiopic|georgian|armenian|syriac|thaana|mongolian", re.IGNORECASE)
SYSTEM_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
MAX_SYSTEM_FONTS = 64  # enough variety; the first ones in name order, so the choice is stable


@dataclass(frozen=True)
class FontSpec:
    name: str  # file stem, e.g. "DejaVuSerif-Bold"
    path: str
    family: str
    bold: bool
    italic: bool
    bundled: bool


def _covers_charset(path: str) -> bool:
    """True when the font maps every CHARSET character, letters to real letter glyphs (symbol fonts map
    ASCII codes to pictures)."""
    from matplotlib import ft2font

    try:
        font = ft2font.FT2Font(path)
        cmap = font.get_charmap()
    except (OSError, RuntimeError, ValueError):
        return False
    if any(ord(c) not in cmap for c in CHARSET):
        return False
    return all(font.get_glyph_name(cmap[ord(c)]) == c for c in "aQz")


def _bundled_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _system_fonts(known: set[str]) -> list[FontSpec]:
    from matplotlib import ft2font

    found: list[FontSpec] = []
    for root in SYSTEM_FONT_DIRS:
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, files in os.walk(root):
            dirnames.sort()  # a stable walk: the same file wins when two folders hold one name
            for fname in sorted(files):
                if not fname.lower().endswith((".ttf", ".otf")) or fname in known or _SKIP.search(fname):
                    continue
                path = os.path.join(dirpath, fname)
                if not _covers_charset(path):
                    continue
                font = ft2font.FT2Font(path)
                style = (font.style_name or "").lower()
                if _SKIP.search(style) or _SKIP.search(font.family_name or ""):
                    continue
                known.add(fname)
                family = font.family_name or Path(fname).stem
                for width in ("Condensed", "Expanded", "Narrow", "Wide"):
                    # Width variants read as different typefaces; keep them a family of their own.
                    if width.lower() in fname.lower() and width.lower() not in family.lower():
                        family = f"{family} {width}"
                found.append(FontSpec(Path(fname).stem, path, family,
                                      "bold" in style or "black" in style or "heavy" in style,
                                      "italic" in style or "oblique" in style, False))
    found.sort(key=lambda f: f.name)
    return found[:MAX_SYSTEM_FONTS]


@lru_cache(maxsize=4)
def available_fonts(system: bool = True) -> tuple[FontSpec, ...]:
    """Fonts the text domain draws from, sorted by name (bundled first) so a seed picks the same font."""
    base = _bundled_dir()
    fonts = [FontSpec(Path(f).stem, str(base / f), fam, bold, italic, True)
             for f, (fam, bold, italic) in sorted(_BUNDLED.items()) if (base / f).is_file()]
    if system:
        fonts += _system_fonts({Path(f.path).name for f in fonts})
    if not fonts:
        raise RuntimeError(f"no usable fonts found (looked in {base} and {SYSTEM_FONT_DIRS})")
    return tuple(fonts)


def families(fonts: tuple[FontSpec, ...]) -> dict[str, list[FontSpec]]:
    out: dict[str, list[FontSpec]] = {}
    for f in fonts:
        out.setdefault(f.family, []).append(f)
    return out


@lru_cache(maxsize=1024)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    # Basic layout: plenty for English, and faster than raqm per call.
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


@lru_cache(maxsize=256)
def height_ratio(path: str) -> float:
    """Ink height of HEIGHT_PROBE (ascender top to descender bottom) per pixel of font size."""
    _, top, _, bottom = load_font(path, 200).getbbox(HEIGHT_PROBE, anchor="ls")
    return (bottom - top) / 200.0


def size_for_height(path: str, text_height: float) -> int:
    """Font size (pixels per em) whose ascender-to-descender ink extent is about `text_height` pixels."""
    size = max(3, round(text_height / height_ratio(path)))
    # Hinting makes small sizes deviate from the linear estimate: nudge to the closest measured height.
    best, best_err = size, None
    for cand in (size - 1, size, size + 1):
        if cand < 3:
            continue
        _, top, _, bottom = load_font(path, cand).getbbox(HEIGHT_PROBE, anchor="ls")
        err = abs((bottom - top) - text_height)
        if best_err is None or err < best_err:
            best, best_err = cand, err
    return best


@lru_cache(maxsize=1024)
def advances(path: str, size: int) -> dict[str, float]:
    """Advance width of every CHARSET character at this size (to locate characters inside a crop)."""
    font = load_font(path, size)
    return {c: float(font.getlength(c)) for c in CHARSET}


class GlyphCache:
    """Coverage bitmaps of one font at one size, rasterised on first use.

    Through PIL, FreeType costs ~10-30 us a glyph plus ~40 us a call; a page repeats the same few dozen
    glyphs hundreds of times, and pasting a cached bitmap with numpy costs a few microseconds. PIL's
    hinted rendering puts every glyph on a whole pixel anyway (the pen position is rounded), so one bitmap
    per character reproduces it.
    """

    def __init__(self, path: str, size: int):
        self.font = load_font(path, size)
        # Scratch cell with room for a bold W, accents above and descenders below the pen.
        self._pen = (size + 6, 2 * size + 6)
        self._scratch = Image.new("L", (3 * size + 12, 3 * size + 12), 0)
        self._draw = ImageDraw.Draw(self._scratch)
        self._glyphs: dict[str, tuple[np.ndarray, int, int]] = {}

    def get(self, char: str) -> tuple[np.ndarray, int, int]:
        """(coverage uint8 h x w, dx, dy): the bitmap's top-left offset from the pen on the baseline."""
        glyph = self._glyphs.get(char)
        if glyph is None:
            self._scratch.paste(0, (0, 0, *self._scratch.size))
            px, py = self._pen
            self._draw.text((px, py), char, font=self.font, fill=255, anchor="ls")
            box = self._scratch.getbbox()
            if box is None:
                glyph = (np.zeros((0, 0), np.uint8), 0, 0)
            else:
                bmp = np.array(self._scratch.crop(box), dtype=np.uint8)
                glyph = (bmp, box[0] - px, box[1] - py)
            self._glyphs[char] = glyph
        return glyph


@lru_cache(maxsize=64)
def glyph_cache(path: str, size: int) -> GlyphCache:
    return GlyphCache(path, size)

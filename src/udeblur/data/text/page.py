"""Text pages: lines of the stream's text set in one font, inked from cached glyphs, turned a little, and cut
into crops whose visible text is known.

Speed: a page of 3 x 3 crops (plus a margin for the blur support) is rendered once and cut; glyphs are
rasterised by FreeType once per font and size and pasted with numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..fonts import (
    HEIGHT_PROBE,
    FontSpec,
    GlyphCache,
    advances,
    available_fonts,
    families,
    glyph_cache,
    load_font,
    size_for_height,
)
from .config import TextDomainConfig
from .paper import compose_page
from .vocab import TextStream

_GRID = 3  # crops per page side


@dataclass
class _Line:
    text: str
    words: list[tuple[float, str]]  # (x, word) in canvas coordinates
    baseline: float
    xheight: float
    ascent: float
    descent: float
    adv: dict[str, float]
    _chars: tuple[np.ndarray, np.ndarray] | None = None

    def char_boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """Left and right x of every character of `text` (spaces span the gap between words)."""
        if self._chars is None:
            x0: list[float] = []
            x1: list[float] = []
            for j, (x, word) in enumerate(self.words):
                if j:
                    x0.append(x1[-1])
                    x1.append(x)
                for c in word:
                    a = self.adv.get(c, 0.0)
                    x0.append(x)
                    x1.append(x + a)
                    x += a
            self._chars = (np.array(x0), np.array(x1))
        return self._chars


@dataclass
class Page:
    pixels: np.ndarray  # H x W x C uint8
    lines: list[_Line]
    cells: list[tuple[int, int]]  # top-left corners of the crops
    size: int
    pad: int  # canvas offset of the page (rotation margin)
    angle: float  # degrees, counter-clockwise
    canvas_centre: tuple[float, float]  # (x, y)
    font: str
    text_height: int

    def crop8(self, cell: tuple[int, int], margin: int = 0) -> np.ndarray:
        y, x = cell
        s = self.size
        return self.pixels[y - margin : y + s + margin, x - margin : x + s + margin]

    def crop(self, cell: tuple[int, int], margin: int = 0) -> np.ndarray:
        """float32 in [0, 1]; `margin` extra pixels of real surroundings on every side."""
        return self.crop8(cell, margin).astype(np.float32) * np.float32(1 / 255)

    def visible(self, cell: tuple[int, int]) -> tuple[str, list[str]]:
        """(visible text, full source lines) of a crop. Lines count when their x-height band is inside; a
        character when its advance box is; rotation is undone at the crop centre (best effort)."""
        s = self.size
        cx, cy = self.canvas_centre
        px, py = cell[1] + s / 2 + self.pad - cx, cell[0] + s / 2 + self.pad - cy
        a = math.radians(self.angle)
        # Inverse of PIL's counter-clockwise rotation (image y axis points down).
        ux = cx + px * math.cos(a) - py * math.sin(a)
        uy = cy + px * math.sin(a) + py * math.cos(a)
        left, right, top, bottom = ux - s / 2, ux + s / 2, uy - s / 2, uy + s / 2
        shown, sources = [], []
        for line in self.lines:
            if line.baseline + line.descent <= top or line.baseline - line.ascent >= bottom:
                continue
            x0, x1 = line.char_boxes()
            if len(x0) == 0 or x1[-1] < left or x0[0] > right:
                continue
            sources.append(line.text)
            if line.baseline - line.xheight < top - 0.5 or line.baseline > bottom + 0.5:
                continue
            inside = np.flatnonzero((x0 >= left - 0.5) & (x1 <= right + 0.5))
            if len(inside):
                frag = line.text[inside[0] : inside[-1] + 1].strip()
                if frag:
                    shown.append(frag)
        return "\n".join(shown), sources


def _pick_font(rng: np.random.Generator, fonts: tuple[FontSpec, ...]) -> FontSpec:
    # Families uniformly (DejaVu's many files must not dominate), then regular > bold > italic > both.
    fams = families(fonts)
    names = sorted(fams)
    members = fams[names[int(rng.integers(len(names)))]]
    w = np.array([{(False, False): 0.55, (True, False): 0.2, (False, True): 0.15, (True, True): 0.1}
                  [(f.bold, f.italic)] for f in members])
    return members[int(rng.choice(len(members), p=w / w.sum()))]


def _blur_margin(cfg: TextDomainConfig) -> int:
    k = cfg.blur.max_kernel if cfg.blur.max_kernel % 2 else cfg.blur.max_kernel - 1
    return k // 2 + 1


def _paste(canvas: np.ndarray, glyphs: GlyphCache, line: _Line) -> None:
    """Ink a line into the uint8 coverage canvas from cached glyph bitmaps (max where glyphs touch)."""
    h, w = canvas.shape
    baseline = int(line.baseline)
    x0s, _ = line.char_boxes()
    pens = np.floor(x0s + 0.5).astype(np.int64)  # whole pixels, as PIL rounds a glyph's pen position
    get = glyphs.get
    for c, ix in zip(line.text, pens.tolist(), strict=True):
        if c == " ":
            continue
        bmp, dx, dy = get(c)
        bh, bw = bmp.shape
        gx, gy = ix + dx, baseline + dy
        if gx >= 0 and gy >= 0 and gx + bw <= w and gy + bh <= h:
            view = canvas[gy : gy + bh, gx : gx + bw]
            np.maximum(view, bmp, out=view)
        else:  # clipped at the canvas border
            xa, xb, ya, yb = max(gx, 0), min(gx + bw, w), max(gy, 0), min(gy + bh, h)
            if xa < xb and ya < yb:
                view = canvas[ya:yb, xa:xb]
                np.maximum(view, bmp[ya - gy : yb - gy, xa - gx : xb - gx], out=view)


def render_page(rng: np.random.Generator, cfg: TextDomainConfig, stream: int | None, grid: int = _GRID) -> Page:
    """One page of ``grid`` x ``grid`` crops (plus the blur margin) of one stream's text (None: any word)."""
    s = cfg.size
    margin = _blur_margin(cfg)
    width = height = grid * s + 2 * margin
    angle = 0.0 if rng.random() < 1 / 3 else float(rng.uniform(-cfg.max_rotation, cfg.max_rotation))
    pad = int(math.ceil(max(width, height) * math.sin(math.radians(abs(angle))) / 2)) + 2
    cw, ch = width + 2 * pad, height + 2 * pad

    spec = _pick_font(rng, available_fonts(cfg.system_fonts))
    lo, hi = cfg.text_height
    # Log-uniform: small print is as common as headline sizes.
    text_height = int(min(hi, math.floor(math.exp(rng.uniform(math.log(lo), math.log(hi + 1))))))
    fsize = size_for_height(spec.path, text_height)
    font = load_font(spec.path, fsize)
    adv = advances(spec.path, fsize)
    _, xtop, _, _ = font.getbbox("x", anchor="ls")
    _, atop, _, abottom = font.getbbox(HEIGHT_PROBE, anchor="ls")
    xheight, ascent, descent = float(-xtop), float(-atop), float(abottom)
    pitch = text_height * rng.uniform(*cfg.line_spacing)
    space = adv[" "]
    justify = rng.random() < 0.35
    indent = rng.random() < 0.6  # paragraphs start indented, else separated by a blank line

    # Text usually runs past the crop grid (crops full of text); sometimes a page margin shows.
    x_left = pad + (rng.uniform(-0.6 * s, -1) if rng.random() < 0.75 else rng.uniform(3, 0.3 * s))
    x_right = pad + width + (rng.uniform(1, 0.6 * s) if rng.random() < 0.75 else -rng.uniform(3, 0.3 * s))
    y = pad + (rng.uniform(-2 * pitch, 0) if rng.random() < 0.8 else rng.uniform(3, 0.3 * s))
    y_stop = pad + height + (pitch if rng.random() < 0.9 else -rng.uniform(3, 0.3 * s))

    stream_text = TextStream(rng, stream)
    glyphs = glyph_cache(spec.path, fsize)
    canvas = np.zeros((ch, cw), dtype=np.uint8)
    lines: list[_Line] = []
    widths: dict[str, float] = {}
    new_paragraph = False
    while y < y_stop:
        start = x_left + (rng.uniform(2, 4) * xheight * 2 if new_paragraph and indent else 0.0)
        limit = x_right - start
        for _attempt in range(50):
            words: list[str] = []
            specific = stream is None
            used = 0.0
            para_end = False
            while True:
                tok = stream_text.next()
                if tok is None:
                    para_end = bool(words)
                    if not words:
                        continue
                    break
                w = widths.get(tok[0])
                if w is None:
                    w = widths[tok[0]] = sum(adv[c] for c in tok[0])
                need = w + (space if words else 0.0)
                if words and used + need > limit:
                    stream_text.push_back(tok)
                    break
                words.append(tok[0])
                specific = specific or tok[1]
                used += need
            if specific:
                break
            # A line of shared words only could repeat in another stream: drop it, compose another.
        else:
            break
        gap = space
        if justify and not para_end and len(words) > 1:
            gap = space + (limit - used) / (len(words) - 1)
        placed: list[tuple[float, str]] = []
        x = start
        baseline = float(round(y + ascent))  # whole pixels: glyph bitmaps are placed on integer rows
        for word in words:
            placed.append((x, word))
            x += widths[word] + gap
        line = _Line(" ".join(words), placed, baseline, xheight, ascent, descent, adv)
        _paste(canvas, glyphs, line)
        lines.append(line)
        y += pitch
        new_paragraph = para_end
        if para_end and not indent:
            y += pitch

    if angle:
        # Bilinear: bicubic costs twice as much and the difference is invisible at a 1-2 degree turn.
        canvas = np.asarray(Image.fromarray(canvas).rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=0))
    pixels = compose_page(rng, canvas[pad : pad + height, pad : pad + width], cfg.channels, cfg.appearance)
    cells = [(margin + r * s, margin + c * s) for r in range(grid) for c in range(grid)]
    return Page(pixels, lines, cells, s, pad, angle, (cw / 2, ch / 2), spec.name, text_height)


def render_text_crop(rng: np.random.Generator, cfg: TextDomainConfig) -> tuple[np.ndarray, str]:
    """One sharp crop (size x size x channels, float32 in [0, 1]) and the text visible in it (lines
    joined by newlines; partial characters at the borders left out; best effort)."""
    page = render_page(rng, cfg, None, grid=1)
    cell = page.cells[0]
    text, _ = page.visible(cell)
    return np.ascontiguousarray(page.crop(cell)), text

"""The built-in text-document domain: synthetic document crops of English text, sharp and blurred.

Modelled on the BMVC text deblurring data of Hradis et al. (2015): crops of document pages in many fonts,
sizes, line spacings, ink and paper tones, slightly rotated, with paper texture; blurred with camera shake,
defocus and noise. Everything is generated offline from matplotlib's bundled fonts (plus usable system
fonts) and `wordfreq`'s English word list.

Unpaired by construction. The text comes in three streams (train/sharp, train/blurred, test): the most
frequent words ("the", "of", ...) are shared, every other word (and number) belongs to exactly one stream
by a stable hash, and every line must contain one such stream-specific token. So the sharp and blurred
training sets share no line of text (nor any uncommon word), and the test text is unseen in training,
while all three streams have the same word statistics.

Speed: a page of 3 x 3 crops (plus a margin for the blur support) is rendered once and cut; glyphs are
rasterised by FreeType once per font and size and pasted with numpy; chunks of crops are
generated in worker processes from per-chunk seeds, so the result does not depend on the number of workers.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import zlib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .blur import BlurConfig, degrade_with_kernel, sample_kernel
from .fonts import (
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

TEXT_DOMAIN_VERSION = 1  # bump whenever rendering changes, so cached domains are regenerated
GENERATOR = "udeblur.text"
STREAMS = {"train_sharp": 0, "train_blurred": 1, "test": 2}
_N_STREAMS = len(STREAMS)
_HEAD = 100  # the most frequent words, shared by all streams
_GRID = 3  # crops per page side
_CHUNK = 48  # crops per worker job
_SEED_TAG = 0x74657874  # "text"


def _text_blur() -> BlurConfig:
    # Hradis et al. mix camera shake and defocus with noise; a little linear/Gaussian for variety.
    return BlurConfig(
        kinds={"shake": 0.65, "defocus": 0.25, "linear": 0.05, "gaussian": 0.05},
        max_kernel=31,
        min_kernel=7,
        noise_std=(0.0, 0.02),
        poisson_peak=None,
        jpeg_quality=None,
    )


def documents_blur() -> BlurConfig:
    """The blur of the ``documents`` appearance: the same kernels, plus shot noise and JPEG, as phone photos have."""
    cfg = _text_blur()
    return BlurConfig(kinds=cfg.kinds, max_kernel=cfg.max_kernel, min_kernel=cfg.min_kernel, noise_std=(0.0, 0.03),
                      poisson_peak=(200.0, 3000.0), jpeg_quality=(70, 95))


APPEARANCES = ("plain", "documents")


@dataclass
class TextDomainConfig:
    size: int = 128  # crop side
    train_count: int = 2000  # crops in EACH of train/sharp and train/blurred
    test_count: int = 64  # paired crops in test/
    channels: int = 3
    text_height: tuple[int, int] = (8, 40)  # ascender-to-descender ink height of a line, pixels
    blur: BlurConfig = field(default_factory=_text_blur)
    seed: int = 0
    line_spacing: tuple[float, float] = (1.0, 1.8)  # baseline distance / text height
    max_rotation: float = 1.5  # degrees; a third of the pages are straight
    system_fonts: bool = True  # also use fonts under /usr/share/fonts (the data then depends on the machine)
    # "plain": mostly dark ink on light paper, mild shading (the bundled model's data). "documents": also coloured
    # and grey paper, coloured and light-on-dark print, strong shading and vignetting, as photographed pages have
    appearance: str = "plain"

    def __post_init__(self) -> None:
        if self.appearance not in APPEARANCES:
            raise ValueError(f"TextDomainConfig.appearance must be one of {APPEARANCES}, got {self.appearance!r}")
        if isinstance(self.blur, dict):  # read back from meta.json / YAML
            self.blur = BlurConfig(**self.blur)
        self.text_height = (int(self.text_height[0]), int(self.text_height[1]))
        self.line_spacing = (float(self.line_spacing[0]), float(self.line_spacing[1]))
        if self.size < 8:
            raise ValueError(f"TextDomainConfig.size must be >= 8, got {self.size}")
        if self.train_count < 0 or self.test_count < 0:
            raise ValueError("TextDomainConfig: train_count and test_count must be >= 0")
        if self.channels not in (1, 3):
            raise ValueError(f"TextDomainConfig.channels must be 1 or 3, got {self.channels}")
        if not 4 <= self.text_height[0] <= self.text_height[1]:
            raise ValueError(f"TextDomainConfig.text_height: need 4 <= low <= high, got {self.text_height}")
        if not 0.8 <= self.line_spacing[0] <= self.line_spacing[1]:
            raise ValueError(f"TextDomainConfig.line_spacing: need 0.8 <= low <= high, got {self.line_spacing}")


# ------------------------------------------------------------------------------------------------- text

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# wordfreq lower-cases everything; these read wrong in lower case.
_PROPER = (
    "monday tuesday wednesday thursday friday saturday sunday january february april june july august "
    "september october november december america american americans english british french german germany "
    "china chinese japan japanese india indian canada canadian europe european africa african australia "
    "australian russia russian mexico mexican italy italian spain spanish ireland irish scotland scottish "
    "england israel iran iraq korea korean texas california florida london paris york washington chicago "
    "boston jesus god christian christmas easter muslim islam jewish catholic facebook google twitter youtube "
    "instagram microsoft john james david michael mary paul peter george tom mike chris steve sarah jim joe "
    "robert richard william thomas charles smith"
).split()
_ACRONYMS = "tv uk usa nfl nba ceo dvd pc ok dj bbc cnn fbi cia nasa eu ii iii iv dc la nyc".split()
_DISPLAY = {**{w: w.capitalize() for w in _PROPER}, **{w: w.upper() for w in _ACRONYMS}, "i": "I"}
# Conversational words that wordfreq's social-media and subtitle sources over-count for documents.
_DAMPEN = {"i": 0.25, "you": 0.5, "my": 0.5, "me": 0.5, "lol": 0.1, "omg": 0.1, "im": 0.2, "dont": 0.2}
# Kept out of a dataset that demos display; prefixes, so inflections go too.
_BLOCKLIST = ("fuck", "shit", "bitch", "cunt", "nigg", "fag", "whore", "slut", "dick", "pussy", "cock", "porn",
          "rape", "retard", "bastard", "asshole", "twat", "wank", "nazi", "penis", "vagina", "sex")


@dataclass(frozen=True)
class _Vocab:
    words: tuple[str, ...]
    cdf: np.ndarray  # cumulative Zipf weights over `words`
    specific: np.ndarray  # bool: word belongs to this stream only (not a shared head word)


def _stream_of(token: str) -> int:
    return zlib.crc32(token.encode("utf-8")) % _N_STREAMS


@lru_cache(maxsize=1)
def _all_words() -> tuple[tuple[str, ...], np.ndarray]:
    import wordfreq

    words = [w for w in wordfreq.top_n_list("en", 40000)
             if _WORD.fullmatch(w) and (len(w) > 1 or w in ("a", "i")) and len(w) <= 16
             and not w.startswith(_BLOCKLIST)]
    weights = 1.0 / (np.arange(len(words)) + 2.7)  # Zipf-Mandelbrot: close to running-text frequencies
    weights *= np.array([_DAMPEN.get(w, 1.0) for w in words])
    return tuple(words), weights


@lru_cache(maxsize=_N_STREAMS + 1)
def _vocab(stream: int | None) -> _Vocab:
    words, weights = _all_words()
    head = np.arange(len(words)) < _HEAD
    if stream is None:
        keep = np.ones(len(words), dtype=bool)
    else:
        keep = head | np.array([_stream_of(w) == stream for w in words])
    idx = np.flatnonzero(keep)
    cdf = np.cumsum(weights[idx])
    return _Vocab(tuple(words[i] for i in idx), cdf / cdf[-1], ~head[idx])


def _number(u) -> str:
    """A number as running text has them: counts, years, decimals, percentages, money, ranges.
    u() returns uniforms in [0, 1)."""
    r = u()

    def n(lo: int, hi: int) -> int:
        return lo + int(u() * (hi - lo))

    if r < 0.3:
        return str(n(1, 100))
    if r < 0.45:
        return str(n(1850, 2031))
    if r < 0.58:
        return f"{n(0, 100)}.{n(0, 100)}"
    if r < 0.68:
        return f"{n(1, 100)}%"
    if r < 0.78:
        return f"${n(1, 1000):,}" if u() < 0.6 else f"${n(1000, 99999):,}"
    if r < 0.88:
        a = n(1, 200)
        return f"{a}-{a + n(1, 50)}"
    return f"{n(1000, 1000000):,}"


_ENDS = ((0.86, "."), (0.92, "?"), (0.96, "!"), (0.98, ":"), (1.01, "..."))


class _TextStream:
    """Endless sentence-like English for one stream: tokens (display text, stream-specific?) and paragraph
    breaks (None). Random numbers come from the generator in blocks: one call per number cost more than
the rest of the sentence."""

    _BLOCK = 1024

    def __init__(self, rng: np.random.Generator, stream: int | None):
        self.rng = rng
        self.stream = stream
        self.vocab = _vocab(stream)
        self.buffer: list[tuple[str, bool] | None] = []
        self._uni: list[float] = []
        self._picks: list[int] = []

    def u(self) -> float:
        if not self._uni:
            self._uni = self.rng.random(self._BLOCK).tolist()
        return self._uni.pop()

    def _word(self) -> tuple[str, bool]:
        if not self._picks:
            picks = np.searchsorted(self.vocab.cdf, self.rng.random(self._BLOCK), side="right")
            self._picks = np.minimum(picks, len(self.vocab.words) - 1).tolist()
        i = self._picks.pop()
        return self.vocab.words[i], bool(self.vocab.specific[i])

    def _stream_number(self) -> tuple[str, bool]:
        for _ in range(64):
            tok = _number(self.u)
            if self.stream is None or _stream_of(tok) == self.stream:
                return tok, True
        return "", False

    def _sentence(self) -> list[tuple[str, bool]]:
        u = self.u
        # Sentence length: roughly log-normal around 11 words (Box-Muller from two uniforms).
        z = math.sqrt(-2.0 * math.log(1.0 - u())) * math.cos(2 * math.pi * u())
        n = min(40, max(2, round(11 * math.exp(0.5 * z))))
        toks = [self._word() for _ in range(n)]
        out: list[tuple[str, bool]] = []
        i = 0
        while i < n:
            (w, spec), r = toks[i], u()
            i += 1
            if r < 0.03:
                w, spec = self._stream_number()
                if not w:
                    continue
            elif r < 0.045 and i < n:
                nxt, nspec = toks[i]
                w, spec = f"{w}-{nxt}", spec or nspec  # hyphenated compound
                i += 1
            elif spec and r < 0.085 and w not in _DISPLAY:
                w = w.capitalize()  # reads like a name or a term
            elif spec and r < 0.09 and len(w) <= 4:
                w = w.upper()  # acronym
            else:
                w = _DISPLAY.get(w, w)
            if w.startswith("i'"):
                w = "I" + w[1:]
            r = u()  # inner punctuation
            if r < 0.08:
                w += ","
            elif r < 0.09:
                w += ";"
            elif r < 0.095:
                w += ":"
            out.append((w, spec))
        if not out:
            return out
        first = out[0][0]
        out[0] = (first[:1].upper() + first[1:], out[0][1])
        if len(out) > 3 and u() < 0.08:  # a quoted or parenthesised span
            a = int(u() * (len(out) - 1))
            b = min(len(out) - 1, a + int(u() * 4))
            left, right = ('"', '"') if u() < 0.5 else ("(", ")")
            out[a] = (left + out[a][0], out[a][1])
            out[b] = (out[b][0].rstrip(",;:") + right, out[b][1])
        r = u()
        end = next(mark for p, mark in _ENDS if r < p)
        out[-1] = (out[-1][0].rstrip(",;:") + end, out[-1][1])
        return out

    def next(self) -> tuple[str, bool] | None:
        while not self.buffer:
            self.buffer.extend(self._sentence())
            if self.buffer and self.u() < 0.12:
                self.buffer.append(None)  # paragraph break
            self.buffer.reverse()  # consumed with pop() from the end
        return self.buffer.pop()

    def push_back(self, tok: tuple[str, bool] | None) -> None:
        self.buffer.append(tok)


# ------------------------------------------------------------------------------------------------ pages


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
class _Page:
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


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(paper RGB, ink RGB): mostly dark neutral ink on white-ish paper, sometimes aged paper or coloured
    ink."""
    paper = np.full(3, rng.uniform(0.8, 0.98)) + rng.normal(0, 0.012, 3)
    if rng.random() < 0.2:
        paper += np.array([0.02, 0.0, -0.06]) * rng.uniform(0.3, 1.0)  # yellowed paper
    r = rng.random()
    if r < 0.12:
        palette = np.array([[0.1, 0.15, 0.5], [0.55, 0.08, 0.08], [0.08, 0.35, 0.15], [0.3, 0.1, 0.4]])
        ink = palette[int(rng.integers(len(palette)))] * rng.uniform(0.6, 1.1)
    else:
        ink = np.full(3, rng.uniform(0.0, 0.3)) + rng.normal(0, 0.01, 3)
    return np.clip(paper, 0, 1), np.clip(ink, 0, 1)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    import colorsys

    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def _document_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(paper RGB, ink RGB) of the ``documents`` appearance; ink and paper always differ by >= 0.3 in luma."""
    luma = np.array([0.299, 0.587, 0.114])
    r = rng.random()
    if r < 0.55:  # white or yellowed paper
        paper, _ = _colours(rng)
    elif r < 0.72:  # pastel coloured paper, forms, sticky notes
        paper = _hsv(rng.random(), rng.uniform(0.08, 0.35), rng.uniform(0.75, 0.97))
    elif r < 0.87:  # grey: recycled paper, newsprint, a dim photograph
        paper = np.full(3, rng.uniform(0.45, 0.78)) + rng.normal(0, 0.015, 3)
    else:  # dark or saturated background (menus, signs, slides): light print on it
        paper = _hsv(rng.random(), rng.uniform(0.0, 0.8), rng.uniform(0.08, 0.5))
    if float(paper @ luma) < 0.5:
        ink = _hsv(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.85, 1.0))
    elif rng.random() < 0.25:  # coloured ink
        ink = _hsv(rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.25, 0.65))
    else:
        ink = np.full(3, rng.uniform(0.0, 0.3)) + rng.normal(0, 0.01, 3)
    if abs(float((paper - ink) @ luma)) < 0.3:  # too little contrast to read: fall back to dark ink
        ink = np.full(3, rng.uniform(0.0, 0.15))
        paper = np.maximum(paper, float(ink @ luma) + 0.45)
    return np.clip(paper, 0, 1), np.clip(ink, 0, 1)


def _illumination(rng: np.random.Generator, h: int, w: int, appearance: str) -> np.ndarray:
    """Light falling on the page, x 255: a linear gradient, and for ``documents`` stronger ones and vignetting."""
    span = 0.12 if appearance == "plain" else 0.3
    gy, gx = rng.uniform(-span, span, 2)
    yy = np.arange(h, dtype=np.float32)[:, None] / h - 0.5
    xx = np.arange(w, dtype=np.float32)[None, :] / w - 0.5
    illum = 1.0 + gy * yy + gx * xx
    if appearance == "documents" and rng.random() < 0.4:  # a lens's vignette or a lamp's spot, off-centre
        cy, cx = rng.uniform(-0.4, 0.4, 2)
        r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / 0.5
        illum = illum * (1.0 - rng.uniform(0.15, 0.55) * np.clip(r2, 0.0, 1.5))
    return (255.0 * illum).astype(np.float32)


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


def _render_page(rng: np.random.Generator, cfg: TextDomainConfig, stream: int | None, grid: int = _GRID) -> _Page:
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

    stream_text = _TextStream(rng, stream)
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
    pixels = _compose(rng, canvas[pad : pad + height, pad : pad + width], cfg.channels, cfg.appearance)
    cells = [(margin + r * s, margin + c * s) for r in range(grid) for c in range(grid)]
    return _Page(pixels, lines, cells, s, pad, angle, (cw / 2, ch / 2), spec.name, text_height)


def _compose(rng: np.random.Generator, coverage: np.ndarray, channels: int, appearance: str = "plain") -> np.ndarray:
    """uint8 ink coverage -> a photographed/scanned page (uint8 H x W x C): paper and ink tones, uneven
    light, paper grain. Kept in 8 bits: the blurred crops are made from exactly what a sharp PNG stores."""
    h, w = coverage.shape
    paper, ink = _colours(rng) if appearance == "plain" else _document_colours(rng)
    if channels == 1:
        luma = np.array([0.299, 0.587, 0.114])
        paper, ink = np.array([paper @ luma]), np.array([ink @ luma])
    # Ink weight: a gain and a gamma on coverage read as lighter/heavier print or toner (a 256-entry table).
    levels = np.arange(256, dtype=np.float64) / 255.0
    lut = (np.clip(levels * rng.uniform(0.85, 1.1), 0.0, 1.0) ** rng.uniform(0.75, 1.3)).astype(np.float32)
    a = lut[coverage]
    illum = _illumination(rng, h, w, appearance)
    grain = rng.standard_normal((h, w), dtype=np.float32) * np.float32(255.0 * rng.uniform(0.0, 0.02))
    if rng.random() < 0.5:  # fibre-like, spatially correlated grain
        grain = 0.5 * (grain + np.roll(grain, 1, axis=int(rng.integers(2))))
    grain *= 1.0 - a
    grain += 0.5  # rounds in the truncating cast below
    out = np.empty((h, w, len(paper)), dtype=np.uint8)
    chan = np.empty((h, w), dtype=np.float32)
    for c in range(len(paper)):
        p, i = np.float32(paper[c]), np.float32(ink[c])
        np.multiply(a, i - p, out=chan)
        chan += p
        chan *= illum
        chan += grain
        np.clip(chan, 0.0, 255.0, out=chan)
        out[..., c] = chan
    return out


def render_text_crop(rng: np.random.Generator, cfg: TextDomainConfig) -> tuple[np.ndarray, str]:
    """One sharp crop (size x size x channels, float32 in [0, 1]) and the text visible in it (lines
    joined by newlines; partial characters at the borders left out; best effort)."""
    page = _render_page(rng, cfg, None, grid=1)
    cell = page.cells[0]
    text, _ = page.visible(cell)
    return np.ascontiguousarray(page.crop(cell)), text


# --------------------------------------------------------------------------------------------- datasets


def _save_png(path: Path, pixels: np.ndarray) -> None:
    arr = pixels if pixels.dtype == np.uint8 else np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
    img = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    # Files land in a private temporary folder that is renamed when complete, so no per-file atomicity.
    img.save(path, format="PNG", compress_level=1)


def _chunk_job(job: tuple) -> list[dict]:
    out, cfg, kind, stream, chunk, start, count = job
    out = Path(out)
    # The leading tag keeps these streams apart from other users of the same seed (SeedSequence pads
    # with zeros, so [seed] alone would equal [seed, 0, 0]).
    rng = np.random.default_rng(np.random.SeedSequence([_SEED_TAG, int(cfg.seed) % 2**32, stream, chunk]))
    records: list[dict] = []
    done = 0
    while done < count:
        page = _render_page(rng, cfg, stream)
        take = min(len(page.cells), count - done)
        for cell_idx in sorted(rng.permutation(len(page.cells))[:take].tolist()):
            cell = page.cells[cell_idx]
            name = f"{start + done:06d}.png"
            text, sources = page.visible(cell)
            rec = {"file": name, "text": text, "lines": sources, "font": page.font,
                   "text_height": page.text_height}
            if kind in ("sharp", "pair"):
                _save_png(out / ("train/sharp" if kind == "sharp" else "test/sharp") / name, page.crop8(cell))
            if kind in ("blurred", "pair"):
                kernel, info = sample_kernel(rng, cfg.blur)
                region = page.crop(cell, kernel.shape[0] // 2)  # real surroundings, no mirrored borders
                blurred = degrade_with_kernel(region, kernel, rng, cfg.blur, valid=True)
                _save_png(out / ("train/blurred" if kind == "blurred" else "test/blurred") / name, blurred)
                if kind == "pair":
                    np.save(out / "test/kernels" / f"{start + done:06d}.npy", kernel)
                    rec["kernel"] = f"kernels/{start + done:06d}.npy"
                    rec["blur"] = info
            records.append(rec)
            done += 1
    return records


def _config_json(cfg: TextDomainConfig) -> dict:
    data = json.loads(json.dumps(asdict(cfg)))
    if data["appearance"] == "plain":  # domains made before the key existed keep their cache folder and meta
        del data["appearance"]
    return data


def domain_meta(cfg: TextDomainConfig) -> dict:
    """What a built domain depends on; a folder whose meta.json differs is rebuilt."""
    return {
        "generator": GENERATOR,
        "version": TEXT_DOMAIN_VERSION,
        "config": _config_json(cfg),
        "seed": cfg.seed,
        "counts": {"train_sharp": cfg.train_count, "train_blurred": cfg.train_count, "test": cfg.test_count},
        "fonts": [f.name for f in available_fonts(cfg.system_fonts)],
    }


def read_domain_meta(out: Path) -> dict | None:
    """The meta.json of a built domain folder, None if it has none (or an unreadable one)."""
    try:
        return json.loads((out / "meta.json").read_text())
    except (OSError, ValueError):
        return None


def _pid_alive(text: str) -> bool:
    try:
        os.kill(int(text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _pool_context():
    import multiprocessing as mp

    # fork: workers inherit the loaded fonts and word list, and a caller's script without a __main__
    # guard still works. Elsewhere (macOS, Windows) the platform default.
    return mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()


def make_text_domain(out: Path, cfg: TextDomainConfig, workers: int | None = None, progress: bool = True) -> Path:
    """Generate the text-document domain into `out` (returned) unless it is already there.

    Layout: train/sharp/*.png and train/blurred/*.png (unpaired, different text; their texts in
    train/sharp.jsonl and train/blurred.jsonl), test/sharp/*.png + test/blurred/*.png (aligned pairs with
    the same names), test/text.jsonl (file, visible text, ...), test/kernels/*.npy (true kernels, for
    oracle baselines only) and meta.json. A complete domain with the same config is reused as is; the
    data is built in a temporary sibling folder and renamed into place, so `out` is never half-written.
    workers: processes (default: CPU count, at most 8); the data does not depend on it. A non-empty `out`
    that is not a generated domain is never overwritten (DatasetError).
    """
    out = Path(out).expanduser()
    want = domain_meta(cfg)
    have = read_domain_meta(out)
    if have == want:
        return out
    if out.exists():
        extra = sorted(p.name for p in out.iterdir()) if out.is_dir() else [out.name]
        ours = have is not None and have.get("generator") == GENERATOR
        # only a domain this generator wrote (valid meta.json) or an empty folder may be replaced: a user's own
        # train/ + test/ folders look the same by name and must never be deleted
        if not ours and extra:
            from .datasets import DatasetError

            raise DatasetError(
                f"{out}: exists and does not look like a generated text domain (contains {extra[:5]}); "
                "choose an empty or new folder"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        if not _pid_alive(stale.name.rsplit("-", 1)[-1]):
            shutil.rmtree(stale, ignore_errors=True)  # left by an interrupted run
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    for sub in ("train/sharp", "train/blurred", "test/sharp", "test/blurred", "test/kernels"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)

    jobs = []
    for kind, stream, count in (("sharp", STREAMS["train_sharp"], cfg.train_count),
                                ("blurred", STREAMS["train_blurred"], cfg.train_count),
                                ("pair", STREAMS["test"], cfg.test_count)):
        for chunk, start in enumerate(range(0, count, _CHUNK)):
            jobs.append((str(tmp), cfg, kind, stream, chunk, start, min(_CHUNK, count - start)))
    workers = min(os.cpu_count() or 1, 8) if workers is None else max(1, int(workers))
    workers = min(workers, len(jobs)) if jobs else 1
    available_fonts(cfg.system_fonts)  # load caches once, before forking
    for stream in (*STREAMS.values(), None):
        _vocab(stream)

    from tqdm import tqdm

    def progress_bar() -> tqdm:
        total = cfg.train_count * 2 + cfg.test_count
        return tqdm(total=total, desc=f"text domain -> {out.name}", unit="crop", disable=not progress)

    results: list[list[dict]] = []
    try:
        if workers <= 1:
            with progress_bar() as bar:
                for job in jobs:
                    results.append(_chunk_job(job))
                    bar.update(job[-1])
        else:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
                done = pool.map(_chunk_job, jobs)  # submits everything: the workers exist from here on
                with progress_bar() as bar:  # so tqdm's monitor thread starts after the fork
                    for job, res in zip(jobs, done, strict=True):
                        results.append(res)
                        bar.update(job[-1])
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    by_kind: dict[str, list[dict]] = {"sharp": [], "blurred": [], "pair": []}
    for job, res in zip(jobs, results, strict=True):
        by_kind[job[2]].extend(res)
    for kind, path in (("sharp", "train/sharp.jsonl"), ("blurred", "train/blurred.jsonl"),
                       ("pair", "test/text.jsonl")):
        with open(tmp / path, "w", encoding="utf-8") as fh:
            for rec in by_kind[kind]:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    (tmp / "meta.json").write_text(json.dumps(want, indent=2) + "\n")

    if out.exists():
        old = out.parent / f".{out.name}.partial-old-{os.getpid()}"
        os.replace(out, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, out)
    return out

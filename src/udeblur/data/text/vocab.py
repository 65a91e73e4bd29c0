"""The text of the text domain: sentence-like English in three streams that share no uncommon word.

The most frequent words ("the", "of", ...) are shared, every other word (and number) belongs to exactly one
stream by a stable hash, and every line must contain one such stream-specific token (page.py keeps to that).
So the sharp and blurred training sets share no line of text (nor any uncommon word), and the test text is
unseen in training, while all three streams have the same word statistics.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

STREAMS = {"train_sharp": 0, "train_blurred": 1, "test": 2}
_N_STREAMS = len(STREAMS)
_HEAD = 100  # the most frequent words, shared by all streams

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
def all_words() -> tuple[tuple[str, ...], np.ndarray]:
    """wordfreq's English words, most frequent first, and their sampling weights."""
    import wordfreq

    words = [w for w in wordfreq.top_n_list("en", 40000)
             if _WORD.fullmatch(w) and (len(w) > 1 or w in ("a", "i")) and len(w) <= 16
             and not w.startswith(_BLOCKLIST)]
    weights = 1.0 / (np.arange(len(words)) + 2.7)  # Zipf-Mandelbrot: close to running-text frequencies
    weights *= np.array([_DAMPEN.get(w, 1.0) for w in words])
    return tuple(words), weights


@lru_cache(maxsize=_N_STREAMS + 1)
def stream_vocab(stream: int | None) -> _Vocab:
    """The words of one stream (None: all words), with their cumulative weights."""
    words, weights = all_words()
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


class TextStream:
    """Endless sentence-like English for one stream: tokens (display text, stream-specific?) and paragraph
    breaks (None). Random numbers come from the generator in blocks: one call per number cost more than
the rest of the sentence."""

    _BLOCK = 1024

    def __init__(self, rng: np.random.Generator, stream: int | None):
        self.rng = rng
        self.stream = stream
        self.vocab = stream_vocab(stream)
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

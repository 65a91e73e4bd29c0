"""The `udeblur demo` page: what the model did, at a glance, in one self-contained HTML file.

Layout: the headline gain over the blurred input with its 95% interval; a before/after slider on a real photograph
of text shown whole; labelled columns blurred | udeblur | sharp of test crops enlarged (pixelated, so the pixels are
the model's, not the browser's smoothing); the metric table; what the model does not do. Images are PNG files
beside ``index.html`` referenced by relative path, so the folder can be moved or published as is.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CropRow", "PageShot", "write_demo_page"]


@dataclass
class CropRow:
    """One test crop: its name, the three image files (relative to the page) and PSNR of blurred and output."""

    name: str
    blurred: str
    output: str
    sharp: str
    psnr_blurred: float
    psnr_output: float
    width: int
    height: int


@dataclass
class PageShot:
    """A whole image shown with the slider: files relative to the page, its size, a caption and its PSNRs."""

    blurred: str
    output: str
    sharp: str
    width: int
    height: int
    caption: str
    psnr_blurred: float
    psnr_output: float


_CSS = """
body{font:16px/1.45 system-ui,sans-serif;color:#1d232a;background:#f5f5f2;margin:0}
main{max-width:1180px;margin:0 auto;padding:20px 24px 48px}
h1{font-size:26px;margin:.2em 0}h2{font-size:19px;margin:1.6em 0 .4em}
.lead{font-size:17px;max-width:60em}
.gain{display:flex;gap:14px;flex-wrap:wrap;margin:14px 0}
.card{background:#fff;border:1px solid #d8d8d2;border-radius:8px;padding:10px 16px;min-width:15em}
.card b{font-size:24px;display:block}.card.good b{color:#1a7f37}.card.tie b{color:#7a5b00}.card.bad b{color:#b42318}
.muted{color:#5b6470;font-size:14px}
.limits{background:#fff8e6;border:1px solid #e9d28c;border-radius:8px;padding:8px 16px;max-width:62em}
.compare{position:relative;display:inline-block;line-height:0;border:1px solid #999;background:#ccc;
  touch-action:none;user-select:none}
.compare img{display:block;image-rendering:pixelated}
.compare .top{position:absolute;left:0;top:0}
.compare .line{position:absolute;top:0;bottom:0;width:2px;background:#e5484d;pointer-events:none}
.compare .tag{position:absolute;top:6px;line-height:1.3;font-size:13px;padding:1px 7px;border-radius:3px;
  background:rgba(0,0,0,.65);color:#fff;pointer-events:none}
.slider{width:100%;max-width:var(--w);display:block;margin:6px 0}
table.crops{border-collapse:separate;border-spacing:10px 6px;margin-left:-10px}
table.crops th{font-size:15px;text-align:left;position:sticky;top:0;background:#f5f5f2;padding:4px 0}
table.crops td{vertical-align:top;padding:0}
table.crops img{display:block;image-rendering:pixelated;border:1px solid #bbb;background:#fff}
table.crops .fig{font-size:13px;color:#5b6470;line-height:1.6}
table.metrics{border-collapse:collapse}table.metrics td,table.metrics th{border:1px solid #ccc;padding:4px 10px;
  text-align:right}table.metrics th{background:#ecece7}table.metrics td:first-child{text-align:left}
"""

_SCRIPT = """
for (const box of document.querySelectorAll('.compare')) {
  const range = document.getElementById(box.dataset.range), top = box.querySelector('.top'),
        line = box.querySelector('.line');
  const show = () => { const v = Number(range.value); top.style.clipPath = `inset(0 ${100 - v}% 0 0)`;
                       line.style.left = `calc(${v}% - 1px)`; };
  range.addEventListener('input', show);
  box.addEventListener('pointermove', (e) => {
    if (e.buttons !== 1) return;
    const r = box.getBoundingClientRect();
    range.value = Math.round(100 * Math.min(1, Math.max(0, (e.clientX - r.left) / r.width))); show();
  });
  show();
}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _gain_card(label: str, gain: Mapping[str, Any] | None, digits: int, unit: str = "") -> str:
    if not gain or not gain.get("n"):
        return ""
    from .statistics import clearly_better

    worse = gain["high"] < 0 if gain["higher_is_better"] else gain["low"] > 0
    kind = "good" if clearly_better(gain) else "bad" if worse else "tie"
    verdict = {"good": "clearly better than the blurred input", "bad": "clearly worse than the blurred input",
               "tie": "not clearly different from the blurred input"}[kind]
    return (f"<div class='card {kind}'>{_e(label)} gain<b>{gain['mean']:+.{digits}f}{unit}</b>"
            f"95% interval {gain['low']:+.{digits}f} to {gain['high']:+.{digits}f}{unit}<br>"
            f"better on {gain['better']} of {gain['n']} crops, worse on {gain['worse']}<br>"
            f"<span class='muted'>{verdict}</span></div>")


def _compare(shot: PageShot, scale: int, ident: str) -> str:
    w, h = shot.width * scale, shot.height * scale
    return (
        f"<div class='compare' data-range='{ident}' style='width:{w}px'>"
        f"<img src='{_e(shot.output)}' width='{w}' height='{h}' alt='udeblur output'>"
        f"<img class='top' src='{_e(shot.blurred)}' width='{w}' height='{h}' alt='blurred input'>"
        "<div class='line'></div><span class='tag' style='left:6px'>blurred</span>"
        "<span class='tag' style='right:6px'>udeblur</span></div>"
        f"<input class='slider' style='--w:{w}px' id='{ident}' type='range' min='0' max='100' value='50' "
        "aria-label='before | after'>"
    )


def write_demo_page(
    path: str | Path,
    *,
    title: str,
    lead: str,
    gains: Mapping[str, Mapping[str, Any]],
    table: Sequence[Mapping[str, Any]],
    crops: Sequence[CropRow],
    crop_scale: int,
    crops_note: str,
    page: PageShot | None = None,
    page_scale: int = 2,
    limits: str = "",
    notes: Sequence[str] = (),
    links: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write the demo page. ``gains``: metric -> paired gain over the blurred input (``paired.paired_gain``);
    ``table``: rows of method and metric means; ``crop_scale``/``page_scale``: display enlargement."""
    path = Path(path)
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
             f"<h1>{_e(title)}</h1><p class='lead'>{_e(lead)}</p>",
             "<div class='gain'>", _gain_card("PSNR", gains.get("psnr"), 2, " dB"),
             _gain_card("SSIM", gains.get("ssim"), 3), "</div>"]
    if limits:
        parts.append(f"<div class='limits'><b>What it does not do.</b> {_e(limits)}</div>")
    if page is not None:
        parts += [f"<h2>A real photograph of text, whole ({page.width} x {page.height} px, shown at "
                  f"{page_scale}x): drag the slider</h2>",
                  _compare(page, page_scale, "page-slider"),
                  f"<p class='muted'>{_e(page.caption)} PSNR against the sharp photograph: blurred "
                  f"{page.psnr_blurred:.2f} dB, udeblur {page.psnr_output:.2f} dB "
                  f"({page.psnr_output - page.psnr_blurred:+.2f}). "
                  f"<a href='{_e(page.sharp)}'>sharp original</a> · <a href='{_e(page.blurred)}'>blurred</a> · "
                  f"<a href='{_e(page.output)}'>udeblur</a> (full-size PNGs)</p>"]
    if crops:
        size = f"{crop_scale}x"
        parts += [f"<h2>Held-back test crops, enlarged {size}</h2><p class='muted'>{_e(crops_note)}</p>",
                  "<table class='crops'><thead><tr><th>blurred input</th><th>udeblur</th><th>sharp (truth)</th>"
                  "</tr></thead><tbody>"]
        for row in crops:
            cells = []
            for src, label, figure in ((row.blurred, "blurred input", f"{row.psnr_blurred:.2f} dB"),
                                       (row.output, "udeblur",
                                        f"{row.psnr_output:.2f} dB ({row.psnr_output - row.psnr_blurred:+.2f})"),
                                       (row.sharp, "sharp", row.name)):
                cells.append(f"<td><img src='{_e(src)}' alt='{_e(label)} {_e(row.name)}' "
                             f"width='{row.width * crop_scale}' height='{row.height * crop_scale}'>"
                             f"<div class='fig'>{_e(figure)}</div></td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
    if table:
        cols = list(dict.fromkeys(k for row in table for k in row))
        parts.append("<h2>All test crops</h2><table class='metrics'><tr>"
                     + "".join(f"<th>{_e(c)}</th>" for c in cols) + "</tr>")
        for row in table:
            cells = (f"{v:.4g}" if isinstance(v, float) else v for v in (row.get(c, "") for c in cols))
            parts.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in cells) + "</tr>")
        parts.append("</table>")
    parts += [f"<p class='muted'>{_e(n)}</p>" for n in notes]
    if links:
        parts.append("<p>" + " · ".join(f"<a href='{_e(href)}'>{_e(text)}</a>" for text, href in links) + "</p>")
    parts += [f"<script>{_SCRIPT}</script>", "</main></body></html>"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path

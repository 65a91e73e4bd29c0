"""A small self-contained HTML page (the evaluation report's): notes, a table and pictures, no external assets."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"
    return html.escape(str(value))


def write_html(
    path: str | Path,
    title: str,
    table: Sequence[dict[str, object]] = (),
    images: Sequence[tuple[str, str]] = (),
    notes: Sequence[str] = (),
) -> Path:
    """Write a page with ``notes`` (paragraphs), a metric ``table`` and ``images`` (caption, relative path)."""
    path = Path(path)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
        "th{background:#f4f4f4}img{max-width:100%;image-rendering:pixelated;border:1px solid #ddd}"
        "figure{margin:1.5em 0}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    parts += [f"<p>{html.escape(n)}</p>" for n in notes]
    if table:
        cols = list(dict.fromkeys(k for row in table for k in row))
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>")
        for row in table:
            parts.append("<tr>" + "".join(f"<td>{_cell(row.get(c, ''))}</td>" for c in cols) + "</tr>")
        parts.append("</table>")
    for caption, src in images:
        parts.append(
            f"<figure><img src='{html.escape(src)}' alt='{html.escape(caption)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    return path

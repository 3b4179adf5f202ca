"""Server-rendered HTML: a page frame, tables, an SVG line chart and an SVG heatmap. Everything is
inline (no CDN, no script from elsewhere), and every value is escaped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

STYLE = """body{font-family:system-ui,sans-serif;margin:0;color:#1d2330}
nav{background:#1d2330;padding:.6em 1em}nav a{color:#fff;margin-right:1.2em;text-decoration:none}
main{padding:1em 1.5em;max-width:1200px}table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
td,th{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left}th{background:#f3f4f6}
.buy{color:#0a7d32}.sell{color:#b3261e}.muted{color:#667}form.inline{display:inline}
button{padding:.4em 1em;margin-right:.5em}"""


def e(value: Any) -> str:
    return "" if value is None else escape(str(value))


def page(title: str, body: str, *, operator: bool = False, signed_in: bool = True) -> str:
    links = [("/account", "My account")] if signed_in and not operator else []
    if operator:
        links += [("/xray", "Market X-ray"), ("/models", "Models"), ("/ops", "Operations")]
    if signed_in:
        links.append(("/logout", "Sign out"))
    nav = "".join(f'<a href="{href}">{e(text)}</a>' for href, text in links)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)} · X-Ray</title>'
            f"<style>{STYLE}</style></head><body><nav><b style='color:#fff;margin-right:2em'>X-Ray</b>{nav}"
            f"</nav><main><h1>{e(title)}</h1>{body}</main></body></html>")


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, id_: str = "",
          empty: str = "none") -> str:
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell if isinstance(cell, Raw) else e(cell)}</td>"
                                    for cell in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="muted" id="{e(id_)}">{e(empty)}</p>'
    return f'<table id="{e(id_)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class Raw(str):
    """Markup a caller built from escaped parts: `table` puts it in as it is."""


def line_chart(points: Sequence[tuple[float, float]], *, width: int = 720, height: int = 220,
               id_: str = "chart", label: str = "") -> str:
    """An SVG polyline of (x, y) points scaled into the box, with the y range written at the side."""
    if len(points) < 2:
        return f'<p class="muted" id="{e(id_)}">not enough points for a chart yet ({len(points)})</p>'
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    span_x, span_y = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    pad = 40
    coords = " ".join(f"{pad + (x - x0) / span_x * (width - pad - 10):.1f},"
                      f"{10 + (1 - (y - y0) / span_y) * (height - 30):.1f}" for x, y in points)
    return (f'<svg id="{e(id_)}" width="{width}" height="{height}" role="img" aria-label="{e(label)}" '
            f'style="border:1px solid #ddd"><polyline fill="none" stroke="#2563eb" stroke-width="2" '
            f'points="{coords}"/><text x="2" y="14" font-size="11">{y1:,.2f}</text>'
            f'<text x="2" y="{height - 20}" font-size="11">{y0:,.2f}</text></svg>')


def heatmap(symbols: Sequence[str], value: dict[tuple[str, str], float], *, cell: int = 26) -> str:
    """Correlation as an SVG grid: blue for +1, white for 0, red for -1; each cell's title says it."""
    if not symbols:
        return '<p class="muted" id="heatmap">no correlation computed yet</p>'
    left, top = 90, 90
    size_w, size_h = left + cell * len(symbols) + top, top + cell * len(symbols)  # room for slanted labels
    parts = [f'<svg id="heatmap" width="{size_w}" height="{size_h}" role="img" aria-label="correlation">']
    for i, name in enumerate(symbols):
        parts.append(f'<text x="{left - 4}" y="{top + i * cell + cell * 0.65}" font-size="10" '
                     f'text-anchor="end">{e(name)}</text>')
        parts.append(f'<text x="{left + i * cell + cell / 2}" y="{top - 4}" font-size="10" '
                     f'transform="rotate(-60 {left + i * cell + cell / 2} {top - 4})">{e(name)}</text>')
    for i, a in enumerate(symbols):
        for j, b in enumerate(symbols):
            v = 1.0 if a == b else value.get((a, b), value.get((b, a)))
            fill = "#eee" if v is None else _color(v)
            title = f"{a} / {b}: " + ("-" if v is None else f"{v:.2f}")
            parts.append(f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell - 1}" '
                         f'height="{cell - 1}" fill="{fill}"><title>{e(title)}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def _color(v: float) -> str:
    v = max(-1.0, min(1.0, v))
    fade = int(255 * (1 - abs(v)))
    return f"rgb({fade},{fade},255)" if v >= 0 else f"rgb(255,{fade},{fade})"

"""A small line chart as SVG text, written by hand: no plotting library, no script.

The instructors' exports (HTML pages, Markdown with files beside them) show a solution's
training curves next to its question. The chart must be safe to open anywhere, so it is
inert: no ``<script>``, no event attributes, no link to another resource; every piece of
text (titles, phase names that come from solutions) is XML-escaped. Same input, same bytes:
numbers are written with fixed precision and nothing depends on the clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

# Distinguishable on white and in greyscale print (Okabe-Ito, without the yellow).
COLORS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#56b4e9", "#e69f00", "#000000")
DASHES = ("", "6 3", "2 2", "8 3 2 3")  # after the colors run out, the same colors dashed
MAX_LINES = len(COLORS) * len(DASHES)

Point = tuple[float, float]


def line_chart(
    title: str,
    lines: Sequence[tuple[str, Sequence[Point]]],
    *,
    width: int = 480,
    height: int = 200,
    x_label: str = "step",
) -> str:
    """An SVG document (no XML declaration, so it also goes inline into HTML) drawing
    each ``(name, points)`` of ``lines`` as a polyline, with axes, ticks and a legend.

    Non-finite points are skipped; a line with no finite point is left out of the plot
    but not of the legend (it says "no data"). Only the first ``MAX_LINES`` lines are
    drawn, so a chart stays readable."""
    lines = list(lines)[:MAX_LINES]
    clean = [[(x, y) for x, y in pts if math.isfinite(x) and math.isfinite(y)] for _, pts in lines]
    xs = [x for pts in clean for x, _ in pts]
    ys = [y for pts in clean for _, y in pts]
    x0, x1 = _span(xs)
    y0, y1 = _span(ys)
    legend_rows = max(1, math.ceil(len(lines) / 2))
    left, right, top = 52, 12, 22
    bottom = 30 + 14 * legend_rows
    plot_w, plot_h = width - left - right, max(40, height - top - bottom)
    height = top + plot_h + bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y0) / (y1 - y0) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(title)} '
        'font-family="system-ui, sans-serif" font-size="10">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{left}" y="14" font-size="12" font-weight="600">{escape(title)}</text>',
    ]
    for value in _ticks(y0, y1):
        y = py(value)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e5e7eb"/>'
        )
        out.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{_label(value)}</text>')
    base = top + plot_h
    for value in _ticks(x0, x1):
        x = px(value)
        out.append(
            f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="#59636e"/>'
        )
        out.append(f'<text x="{x:.1f}" y="{base + 14}" text-anchor="middle">{_label(value)}</text>')
    out.append(f'<path d="M{left} {top}V{base}H{left + plot_w}" fill="none" stroke="#59636e"/>')
    out.append(
        f'<text x="{left + plot_w}" y="{base + 24}" text-anchor="end" fill="#59636e">'
        f"{escape(x_label)}</text>"
    )
    for i, pts in enumerate(clean):
        if not pts:
            continue
        color, dash = COLORS[i % len(COLORS)], DASHES[i // len(COLORS)]
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        if len(pts) == 1:
            x, y = pts[0]
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{color}"/>')
            continue
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(
            f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.5"{dashed}/>'
        )
    for i, (name, _) in enumerate(lines):
        color, dash = COLORS[i % len(COLORS)], DASHES[i // len(COLORS)]
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        x = left + (i % 2) * (plot_w // 2)
        y = base + 38 + 14 * (i // 2)
        shown = name if clean[i] else f"{name} (no data)"
        out.append(
            f'<line x1="{x}" y1="{y - 3}" x2="{x + 16}" y2="{y - 3}" stroke="{color}" '
            f'stroke-width="2"{dashed}/>'
        )
        out.append(f'<text x="{x + 20}" y="{y}">{escape(_shorten(shown, 40))}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _span(values: Sequence[float]) -> tuple[float, float]:
    """The axis range of ``values``: never empty, so a flat line still has a scale."""
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    if high - low < 1e-12 * max(1.0, abs(high)):
        pad = abs(high) * 0.05 or 0.5
        return low - pad, high + pad
    return low, high


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    """About ``count`` round values (1, 2 or 5 times a power of ten apart) in [low, high]."""
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    out = []
    value = first
    while value <= high + step * 1e-9:
        out.append(0.0 if abs(value) < step * 1e-9 else value)
        value = first + len(out) * step
    return out


def _label(value: float) -> str:
    """A tick label: short, and the same bytes for the same value."""
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

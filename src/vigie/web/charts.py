"""Small charts drawn on the server as SVG: no JavaScript, no CDN, nothing the CSP has to allow.

The app's Content-Security-Policy forbids inline styles, so colours are SVG presentation
attributes (`fill=`, `stroke=`), which are not styles. Every piece of text passes through
markupsafe, so a provider or series name cannot inject markup. Each chart is an
`<svg role="img">` with a `<title>`, and the page shows the same numbers in a table beside it
for those who cannot see the chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

#: Colour-blind-safe (Okabe-Ito) colours, in series order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 44
AXIS, GRID, TEXT = "#6b7280", "#e5e7eb", "#374151"


def nice_max(v: float) -> float:
    """The round number (1, 2, 2.5 or 5 times a power of ten) at or above v: the top of the axis."""
    if v <= 0 or not math.isfinite(v):
        return 1.0
    p = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * p:
            return m * p
    return 10 * p


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"


def _open(title: str, n_series: int, names: Sequence[str], width: int, height: int) -> list[str]:
    t = escape(title)
    parts = [f'<svg class="chart" role="img" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f"<title>{t}</title>",
             f'<text x="{LEFT}" y="14" fill="{TEXT}" font-size="13" font-weight="bold">{t}</text>']
    if n_series > 1:  # legend, top right
        x = width - RIGHT
        for i, name in reversed(list(enumerate(names))):
            label = escape(name)
            w = 16 + 7 * len(str(name))
            x -= w
            parts.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                         f'<text x="{x + 13}" y="15" fill="{TEXT}">{label}</text>')
    return parts


def _axes(parts: list[str], labels: Sequence[str], top: float, width: int, height: int, x_of) -> None:
    plot_h = height - TOP - BOTTOM
    for i in range(5):
        v = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{width - RIGHT}" y2="{y:.1f}" stroke="{GRID}"/>'
                     f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" fill="{TEXT}">{_fmt(v)}</text>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{width - RIGHT}" y2="{TOP + plot_h}" stroke="{AXIS}"/>')
    step = max(1, math.ceil(len(labels) / 12))  # at most about twelve labels under the axis
    for i, label in enumerate(labels):
        if i % step == 0:
            parts.append(f'<text x="{x_of(i):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
                         f'fill="{TEXT}">{escape(label)}</text>')


def _empty(parts: list[str], width: int, height: int) -> Markup:
    parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="{AXIS}">No data</text></svg>')
    return Markup("".join(parts))


def bar_chart(labels: Sequence[str], series: dict[str, Sequence[float | None]], *, title: str,
              stacked: bool = False, width: int = WIDTH, height: int = HEIGHT) -> Markup:
    """Bars per label, one colour per series: side by side, or stacked. None counts as 0."""
    names = list(series)
    vals = [[float(v or 0) for v in series[n]] for n in names]
    parts = _open(title, len(names), names, width, height)
    if not labels or not names:
        return _empty(parts, width, height)
    peak = max((sum(col) for col in zip(*vals, strict=False)), default=0) if stacked else \
        max((v for row in vals for v in row), default=0)
    top = nice_max(peak)
    if all(v.is_integer() for row in vals for v in row):  # counts: whole numbers on the axis (five ticks)
        top = 4 * math.ceil(top / 4)
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / len(labels)

    def x_of(i: int) -> float:
        return LEFT + slot * (i + 0.5)

    _axes(parts, labels, top, width, height, x_of)
    bar_w = slot * 0.7 if stacked else slot * 0.7 / len(names)
    for i, label in enumerate(labels):
        base = 0.0
        for j, name in enumerate(names):
            v = vals[j][i] if i < len(vals[j]) else 0.0
            h = plot_h * v / top
            if stacked:
                x, y = x_of(i) - bar_w / 2, TOP + plot_h - plot_h * base / top - h
                base += v
            else:
                x, y = LEFT + slot * i + slot * 0.15 + bar_w * j, TOP + plot_h - h
            if v > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                             f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(name)} {escape(label)}: '
                             f"{_fmt(v)}</title></rect>")
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(labels: Sequence[str], series: dict[str, Sequence[float | None]], *, title: str,
               width: int = WIDTH, height: int = HEIGHT) -> Markup:
    """A line per series; None leaves a gap (a month without a value is not a zero)."""
    names = list(series)
    parts = _open(title, len(names), names, width, height)
    present = [float(v) for n in names for v in series[n] if v is not None]
    if not labels or not present:
        return _empty(parts, width, height)
    top = nice_max(max(present))
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / len(labels)

    def x_of(i: int) -> float:
        return LEFT + slot * (i + 0.5)

    _axes(parts, labels, top, width, height, x_of)
    for j, name in enumerate(names):
        colour = PALETTE[j % len(PALETTE)]
        run: list[str] = []
        for i, v in enumerate(list(series[name])[:len(labels)] + [None]):
            if v is None:
                if len(run) > 1:
                    parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" '
                                 f'stroke-width="2"/>')
                run = []
                continue
            x, y = x_of(i), TOP + plot_h - plot_h * float(v) / top
            run.append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{escape(name)} '
                         f"{escape(labels[i])}: {_fmt(float(v))}</title></circle>")
    parts.append("</svg>")
    return Markup("".join(parts))

"""Small inline-SVG charts for the HTML report (core: pure functions that return markup).

Every chart is one ``<svg>`` element with a ``viewBox`` (it scales to its container), no
``xmlns`` (inline SVG in HTML5 needs none) and no external references, so a report that
embeds it views offline. All text is escaped. Hovering a bar or a point shows its values
through SVG ``<title>`` tooltips; no script is involved.

Charts:

* :func:`line_chart` — lines over a numeric x axis; ``None`` values leave gaps; optional
  dashed horizontal reference lines (SLO targets).
* :func:`histogram` — bars over ``[start, end)`` ranges with optional dashed vertical
  markers (percentiles).
* :func:`hbar_chart` — labelled horizontal bars (counts by name).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = [
    "PALETTE",
    "Bar",
    "Marker",
    "Series",
    "hbar_chart",
    "histogram",
    "line_chart",
    "nice_ticks",
]

PALETTE = ("#2563eb", "#ea580c", "#7c3aed", "#16a34a", "#db2777", "#0891b2")

_W, _H = 640, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 58, 18, 34, 44
_AXIS = "#6b7280"
_GRID = "#e5e7eb"
_CHAR_W = 6.2  # rough width of one 11 px tick-label character, for placing labels
_SHOWN_POINTS = 60  # per series; beyond this visible dots are noise, so they turn invisible
_MAX_POINT_MARKERS = 240  # per series; beyond this even invisible hover targets cost too much


@dataclass(frozen=True, slots=True)
class Series:
    """One line: ``points`` are ``(x, y)``; a ``None`` y breaks the line (no data there)."""

    name: str
    points: tuple[tuple[float, float | None], ...]
    color: str


@dataclass(frozen=True, slots=True)
class Marker:
    """A dashed reference line at ``value`` (y for line charts, x for histograms)."""

    value: float
    label: str
    color: str


@dataclass(frozen=True, slots=True)
class Bar:
    """One histogram bar covering ``[start, end)`` with ``count`` samples."""

    start: float
    end: float
    count: int


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _f(value: float) -> str:
    """A coordinate: two decimals at most, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:.6g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 × 10ⁿ apart) covering ``[low, high]``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _open(plot_id: str, label: str, height: int = _H) -> list[str]:
    return [
        f'<svg id="{_e(plot_id)}" class="plot" viewBox="0 0 {_W} {height}" role="img" '
        f'aria-label="{_e(label)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{_e(label)}</title>",
    ]


def _legend(entries: Sequence[tuple[str, str, bool]]) -> list[str]:
    """Swatches along the top: ``(name, color, dashed)``."""
    out, x = [], float(_LEFT)
    for name, color, dashed in entries:
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        out.append(
            f'<line x1="{_f(x)}" y1="14" x2="{_f(x + 18)}" y2="14" stroke="{color}" '
            f'stroke-width="3"{dash} />'
            f'<text x="{_f(x + 23)}" y="18" class="legend">{_e(name)}</text>'
        )
        x += 32 + 1.07 * _CHAR_W * len(name)
    return out


def _axes(
    x_ticks: Sequence[float],
    y_ticks: Sequence[float],
    sx: _Scale,
    sy: _Scale,
    x_label: str,
    y_label: str,
    height: int = _H,
) -> list[str]:
    out = []
    bottom = height - _BOTTOM
    for t in y_ticks:
        y = sy(t)
        out.append(
            f'<line x1="{_LEFT}" y1="{_f(y)}" x2="{_W - _RIGHT}" y2="{_f(y)}" stroke="{_GRID}" />'
            f'<text x="{_LEFT - 6}" y="{_f(y + 4)}" class="tick" text-anchor="end">'
            f"{_e(_label(t))}</text>"
        )
    for t in x_ticks:
        x = sx(t)
        out.append(
            f'<line x1="{_f(x)}" y1="{bottom}" x2="{_f(x)}" y2="{bottom + 5}" stroke="{_AXIS}" />'
            f'<text x="{_f(x)}" y="{bottom + 18}" class="tick" text-anchor="middle">'
            f"{_e(_label(t))}</text>"
        )
    out.append(
        f'<line x1="{_LEFT}" y1="{bottom}" x2="{_W - _RIGHT}" y2="{bottom}" stroke="{_AXIS}" />'
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{bottom}" stroke="{_AXIS}" />'
        f'<text x="{(_LEFT + _W - _RIGHT) / 2:.0f}" y="{height - 6}" class="axis" '
        f'text-anchor="middle">{_e(x_label)}</text>'
        f'<text x="14" y="{(_TOP + bottom) / 2:.0f}" class="axis" text-anchor="middle" '
        f'transform="rotate(-90 14 {(_TOP + bottom) / 2:.0f})">{_e(y_label)}</text>'
    )
    return out


class _Scale:
    """Linear map from data ``[d0, d1]`` to pixels ``[p0, p1]``."""

    __slots__ = ("d0", "d1", "p0", "p1")

    def __init__(self, d0: float, d1: float, p0: float, p1: float) -> None:
        self.d0, self.d1, self.p0, self.p1 = d0, d1 if d1 != d0 else d0 + 1.0, p0, p1

    def __call__(self, value: float) -> float:
        return self.p0 + (value - self.d0) / (self.d1 - self.d0) * (self.p1 - self.p0)


def _runs(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [r for r in runs if r]


def line_chart(
    plot_id: str,
    label: str,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    y_max: float | None = None,
    y_unit: str = "",
    references: Sequence[Marker] = (),
    whole_x: bool = False,
) -> str:
    """Lines for ``series`` on shared axes; y starts at 0; ``y_max`` fixes the top (e.g. 100
    for percentages), else it fits the data and the ``references`` (dashed, labelled);
    ``whole_x`` keeps only whole-number x ticks (run numbers)."""
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points if y is not None]
    x_ticks = nice_ticks(min(xs, default=0.0), max(xs, default=1.0))
    top = y_max if y_max is not None else max([*ys, *(r.value for r in references), 0.0])
    y_ticks = nice_ticks(0.0, top or 1.0, 4)
    if y_max is not None:
        y_ticks = [t for t in y_ticks if t <= y_max]
    sx = _Scale(min(xs, default=0.0), max(xs, default=1.0), _LEFT, _W - _RIGHT)
    sy = _Scale(0.0, max(y_ticks[-1], top), _H - _BOTTOM, _TOP)
    x_ticks = [t for t in x_ticks if sx.d0 <= t <= sx.d1 and (not whole_x or t == int(t))]
    out = _open(plot_id, label)
    out += _axes(x_ticks, y_ticks, sx, sy, x_label, y_label)
    for ref in references:
        y = sy(ref.value)
        out.append(
            f'<line class="reference" x1="{_LEFT}" y1="{_f(y)}" x2="{_W - _RIGHT}" y2="{_f(y)}" '
            f'stroke="{ref.color}" stroke-width="1.5" stroke-dasharray="6 4" />'
            f'<text x="{_W - _RIGHT - 4}" y="{_f(y - 4)}" class="tick" text-anchor="end" '
            f'fill="{ref.color}">{_e(ref.label)}</text>'
        )
    for s in series:
        shown = [(x, y) for x, y in s.points if y is not None]
        for run in _runs(s.points):
            coords = " ".join(f"{_f(sx(x))},{_f(sy(y))}" for x, y in run)
            out.append(
                f'<polyline points="{coords}" fill="none" stroke="{s.color}" stroke-width="2" '
                'stroke-linejoin="round" />'
            )
            if len(run) == 1 and len(shown) > _SHOWN_POINTS:  # a lone value between gaps
                x, y = run[0]
                out.append(f'<circle cx="{_f(sx(x))}" cy="{_f(sy(y))}" r="2" fill="{s.color}" />')
        if len(shown) <= _MAX_POINT_MARKERS:
            fill = s.color if len(shown) <= _SHOWN_POINTS else "transparent"
            out += [
                f'<circle cx="{_f(sx(x))}" cy="{_f(sy(y))}" r="3" fill="{fill}">'
                f"<title>{_e(s.name)} at {_e(_label(x))}: {_e(f'{y:.4g}')}{_e(y_unit)}</title>"
                "</circle>"
                for x, y in shown
            ]
    out += _legend(
        [(s.name, s.color, False) for s in series] + [(r.label, r.color, True) for r in references]
    )
    out.append("</svg>")
    return "".join(out)


def histogram(
    plot_id: str,
    label: str,
    bars: Sequence[Bar],
    *,
    x_label: str,
    y_label: str = "samples",
    color: str = PALETTE[0],
    markers: Sequence[Marker] = (),
) -> str:
    """Bars over their ``[start, end)`` ranges, with dashed labelled vertical ``markers``."""
    low = min((b.start for b in bars), default=0.0)
    high = max((b.end for b in bars), default=1.0)
    for m in markers:
        low, high = min(low, m.value), max(high, m.value)
    sx = _Scale(low, high, _LEFT, _W - _RIGHT)
    y_ticks = nice_ticks(0.0, float(max((b.count for b in bars), default=1) or 1), 4)
    sy = _Scale(0.0, y_ticks[-1], _H - _BOTTOM, _TOP)
    x_ticks = [t for t in nice_ticks(low, high, 6) if low <= t <= high]
    out = _open(plot_id, label)
    out += _axes(x_ticks, y_ticks, sx, sy, x_label, y_label)
    base = sy(0.0)
    for b in bars:
        if b.count <= 0:
            continue
        x0, x1, y = sx(b.start), sx(b.end), sy(b.count)
        out.append(
            f'<rect class="bar" x="{_f(x0)}" y="{_f(y)}" width="{_f(max(0.8, x1 - x0 - 0.6))}" '
            f'height="{_f(base - y)}" fill="{color}">'
            f"<title>{_e(_label(b.start))}–{_e(_label(b.end))}: {b.count}</title></rect>"
        )
    for i, m in enumerate(markers):
        x = sx(m.value)
        # labels sit right of their line unless they would run off the plot
        left = x + 3 + _CHAR_W * len(m.label) > _W - _RIGHT
        anchor = f'x="{_f(x - 3)}" text-anchor="end"' if left else f'x="{_f(x + 3)}"'
        out.append(
            f'<line class="marker" x1="{_f(x)}" y1="{_TOP}" x2="{_f(x)}" y2="{_f(base)}" '
            f'stroke="{m.color}" stroke-width="1.5" stroke-dasharray="5 3" />'
            f'<text {anchor} y="{_TOP + 10 + 12 * i}" class="tick" fill="{m.color}">'
            f"{_e(m.label)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def hbar_chart(
    plot_id: str,
    label: str,
    items: Sequence[tuple[str, int]],
    *,
    x_label: str,
    color: str = "#dc2626",
) -> str:
    """One labelled horizontal bar per ``(name, count)``, in the given order."""
    row = 22
    longest = max((min(len(name), 34) for name, _ in items), default=0)
    name_w = int(min(240.0, max(90.0, 24 + _CHAR_W * longest)))
    height = _TOP + row * max(1, len(items)) + _BOTTOM
    top = max((n for _, n in items), default=1) or 1
    ticks = nice_ticks(0.0, float(top), 4)
    sx = _Scale(0.0, ticks[-1], name_w, _W - _RIGHT - 40)
    out = _open(plot_id, label, height)
    bottom = height - _BOTTOM
    for t in ticks:
        x = sx(t)
        out.append(
            f'<line x1="{_f(x)}" y1="{_TOP}" x2="{_f(x)}" y2="{bottom}" stroke="{_GRID}" />'
            f'<text x="{_f(x)}" y="{bottom + 16}" class="tick" text-anchor="middle">'
            f"{_e(_label(t))}</text>"
        )
    for i, (name, count) in enumerate(items):
        y = _TOP + i * row
        shown = name if len(name) <= 34 else name[:33] + "…"
        width = sx(count) - name_w
        out.append(
            f'<text x="{name_w - 8}" y="{y + 15}" class="tick" text-anchor="end">{_e(shown)}'
            f"<title>{_e(name)}</title></text>"
            f'<rect class="bar" x="{name_w}" y="{y + 3}" width="{_f(max(1.0, width))}" '
            f'height="{row - 6}" fill="{color}"><title>{_e(name)}: {count}</title></rect>'
            f'<text x="{_f(name_w + max(1.0, width) + 5)}" y="{y + 15}" class="tick">{count}</text>'
        )
    out.append(
        f'<line x1="{name_w}" y1="{_TOP}" x2="{name_w}" y2="{bottom}" stroke="{_AXIS}" />'
        f'<text x="{(name_w + _W - _RIGHT) / 2:.0f}" y="{height - 8}" class="axis" '
        f'text-anchor="middle">{_e(x_label)}</text></svg>'
    )
    return "".join(out)

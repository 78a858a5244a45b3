"""Inline SVG charts for the HTML report: no script, no external file, printable.

Every label goes through ``markupsafe.escape``: hoster names come from RDAP
and AS-name data, which anyone can write.

Readable by an analyst (#15): a caller may fix each series' `Style` by name,
so that one group has one colour in every chart; legend names are wrapped,
never cut; count axes have whole-number ticks; and a curve that never drops
(a hoster that removed nothing) is drawn on top, just above the 1.0 line,
instead of disappearing under the frame and the other curves.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["PALETTE", "Style", "bar_chart", "count_ticks", "step_chart"]

WIDTH, HEIGHT = 740, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 200, 16, 44
# Distinguishable in colour and in greyscale print (dash patterns too).
PALETTE = ["#1f4e79", "#c55a11", "#548235", "#7030a0", "#bf9000", "#2e75b6", "#843c0c",
           "#375623"]
DASHES = ["", "6 3", "2 2", "8 3 2 3", "1 3", "10 4", "4 4", "3 1"]


LEGEND_CHARS = 24  # a legend line's width in characters (then it wraps)
LEGEND_LINE = 13  # px between wrapped lines of one name
LEGEND_GAP = 16  # px from one name to the next
FLAT_GAP = 3  # px between curves that never drop, drawn above the 1.0 line


@dataclass(frozen=True)
class Style:
    """How one series is drawn: colour, dash pattern (curves), opacity (bars)."""

    colour: str
    dash: str = ""
    opacity: float = 1.0


def _style(i: int) -> Style:
    """The i-th series' style when the caller fixed none: past the palette's
    length the dashes shift, so no two of the first 64 series look alike."""
    return Style(PALETTE[i % len(PALETTE)], DASHES[(i + i // len(PALETTE)) % len(DASHES)])


def _styles(names: Sequence[str], given: Mapping[str, Style] | None) -> list[Style]:
    return [(given or {}).get(name) or _style(i) for i, name in enumerate(names)]


def _frame(title: str, body: list[str], x_label: str, y_label: str, kind: str,
           height: int = HEIGHT) -> Markup:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    head = (f'<svg class="chart" data-chart="{escape(kind)}" role="img" '
            f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
            f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">'
            f"<title>{escape(title)}</title>"
            f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
            f'stroke="#999"/>'
            f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle">'
            f"{escape(x_label)}</text>"
            f'<text x="12" y="{TOP + plot_h / 2}" text-anchor="middle" '
            f'transform="rotate(-90 12 {TOP + plot_h / 2})">{escape(y_label)}</text>')
    return Markup(head + "".join(body) + "</svg>")


def _legend(names: Sequence[str], styles: Sequence[Style], mark: str) -> tuple[list[str], int]:
    """The legend beside the plot, each name in full (wrapped), and the
    height the chart needs to show all of it."""
    out = []
    x = WIDTH - RIGHT + 10
    y = TOP + 12
    for name, style in zip(names, styles, strict=True):
        if mark == "line":
            out.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 18}" y2="{y - 4}" '
                       f'stroke="{style.colour}" stroke-width="2" '
                       f'stroke-dasharray="{style.dash}"/>')
        else:
            out.append(f'<rect x="{x}" y="{y - 10}" width="12" height="10" '
                       f'fill="{style.colour}" fill-opacity="{style.opacity:g}"/>')
        lines = textwrap.wrap(name, LEGEND_CHARS) or [""]
        spans = "".join(f'<tspan x="{x + 24}" dy="{0 if i == 0 else LEGEND_LINE}">'
                        f"{escape(line)}</tspan>" for i, line in enumerate(lines))
        out.append(f'<text class="legend" x="{x + 24}" y="{y}">{spans}</text>')
        y += LEGEND_LINE * (len(lines) - 1) + LEGEND_GAP
    return out, max(HEIGHT, y)


def step_chart(title: str, series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
               x_max: float, x_label: str = "hours since the clock started",
               y_label: str = "share still online",
               styles: Mapping[str, Style] | None = None) -> Markup:
    """Survival curves: each series is (name, [(hours, S), ...]) from (0, 1).

    A curve that never drops (nothing removed) would lie on the 1.0 line,
    under the frame and the start of every other curve: such curves are drawn
    last, each in its own row just above the 1.0 line, and the legend says
    "none removed"."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x_max = max(x_max, 1.0)
    flat = [name for name, curve in series if all(s >= 1.0 for _, s in curve)]
    headroom = FLAT_GAP * (len(flat) + 1)  # px above the 1.0 line, inside the frame

    def px(hours: float) -> float:
        return LEFT + plot_w * min(hours, x_max) / x_max

    def py(share: float) -> float:
        return TOP + headroom + (plot_h - headroom) * (1.0 - share)

    body = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        body.append(f'<line x1="{LEFT}" y1="{py(tick):.1f}" x2="{LEFT + plot_w}" '
                    f'y2="{py(tick):.1f}" stroke="#ddd"/>'
                    f'<text x="{LEFT - 6}" y="{py(tick) + 4:.1f}" text-anchor="end">'
                    f"{tick:.2f}</text>")
    for i in range(5):
        hours = x_max * i / 4
        body.append(f'<text x="{px(hours):.1f}" y="{TOP + plot_h + 14}" '
                    f'text-anchor="middle">{hours:.0f}</text>')
    names = [name for name, _ in series]
    drawn = _styles(names, styles)
    # Dropping curves first, then the flat ones on top of them.
    order = sorted(range(len(series)), key=lambda i: names[i] in flat)
    for i in order:
        name, curve = series[i]
        style = drawn[i]
        if name in flat:
            row = f"{TOP + headroom - FLAT_GAP * (flat.index(name) + 1):.1f}"
            path = f"M{px(0.0):.1f},{row} H{px(x_max):.1f}"
            css = "series never-removed"
        else:
            points = [(0.0, 1.0), *curve] if not curve or curve[0][0] > 0 else list(curve)
            corners = _corners([(f"{px(t):.1f}", f"{py(s):.1f}") for t, s in points])
            path = f"M{corners[0][0]},{corners[0][1]}" + "".join(
                f" H{x} V{y}" for x, y in corners[1:])
            path += f" H{px(x_max):.1f}" if points[-1][0] < x_max else ""
            css = "series"
        body.append(f'<path class="{css}" data-name="{escape(name)}" d="{path}" fill="none" '
                    f'stroke="{style.colour}" stroke-width="2" '
                    f'stroke-dasharray="{style.dash}"/>')
    legend, height = _legend([f"{name} (none removed)" if name in flat else name
                              for name in names], drawn, "line")
    return _frame(title, body + legend, x_label, y_label, "survival", height)


def _corners(points: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The steps of a curve as drawn: one corner per pixel column (to 0.1 px),
    at the level the curve has when it leaves that column. A curve over a
    million cases has as many steps; the drawing needs a few thousand."""
    corners = [points[0]]
    for x, y in points[1:]:
        if x == corners[-1][0] and len(corners) > 1:
            corners[-1] = (x, y)  # several steps within one column: the last one shows
        elif y != corners[-1][1]:
            corners.append((x, y))
    return corners


def count_ticks(largest: int, most: int = 6) -> list[int]:
    """Whole-number ticks from 0 for a count axis up to ``largest``: a step
    of 1, 2 or 5 times a power of ten, at most ``most`` ticks; the last tick
    is at or above ``largest`` (it is the axis' top)."""
    largest = max(1, largest)
    step = 1
    for power in range(int(math.log10(largest)) + 2):
        for factor in (1, 2, 5):
            step = factor * 10 ** power
            if math.ceil(largest / step) + 1 <= most:
                return list(range(0, math.ceil(largest / step) * step + 1, step))
    return [0, largest]  # unreachable


def bar_chart(title: str, categories: Sequence[str],
              series: Sequence[tuple[str, Sequence[int]]], x_label: str,
              y_label: str = "cases", styles: Mapping[str, Style] | None = None) -> Markup:
    """Grouped bars: one group per category, one bar per series; the y axis
    counts, so its ticks are whole numbers."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    ticks = count_ticks(max([0, *(v for _, values in series for v in values)]))
    top = ticks[-1]
    group_w = plot_w / max(1, len(categories))
    bar_w = group_w * 0.8 / max(1, len(series))
    drawn = _styles([name for name, _ in series], styles)
    body = []
    for tick in ticks:
        y = TOP + plot_h * (1 - tick / top)
        body.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" '
                    f'stroke="#ddd"/><text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" '
                    f'text-anchor="end">{tick}</text>')
    for c, category in enumerate(categories):
        x0 = LEFT + c * group_w + group_w * 0.1
        body.append(f'<text x="{LEFT + (c + 0.5) * group_w:.1f}" y="{TOP + plot_h + 14}" '
                    f'text-anchor="middle">{escape(category)}</text>')
        for s, (name, values) in enumerate(series):
            value = values[c]
            h = plot_h * value / top
            body.append(f'<rect class="bar" data-series="{escape(name)}" '
                        f'x="{x0 + s * bar_w:.1f}" y="{TOP + plot_h - h:.1f}" '
                        f'width="{bar_w:.1f}" height="{h:.1f}" '
                        f'fill="{drawn[s].colour}" fill-opacity="{drawn[s].opacity:g}">'
                        f"<title>{escape(name)}, {escape(category)}: {value}</title></rect>")
    legend, height = _legend([name for name, _ in series], drawn, "bar")
    return _frame(title, body + legend, x_label, y_label, "bars", height)

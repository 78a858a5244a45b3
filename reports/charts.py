"""Inline SVG charts for the HTML report: no script, no external file, printable.

Every label goes through ``markupsafe.escape``: hoster names come from RDAP
and AS-name data, which anyone can write.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

__all__ = ["bar_chart", "step_chart"]

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 180, 16, 44
# Distinguishable in colour and in greyscale print (dash patterns too).
PALETTE = ["#1f4e79", "#c55a11", "#548235", "#7030a0", "#bf9000", "#2e75b6", "#843c0c",
           "#375623"]
DASHES = ["", "6 3", "2 2", "8 3 2 3", "1 3", "10 4", "4 4", "3 1"]


def _style(i: int) -> tuple[str, str]:
    """Colour and dash pattern of the i-th series: past the palette's length
    the dashes shift, so no two of the first 64 series look alike."""
    return PALETTE[i % len(PALETTE)], DASHES[(i + i // len(PALETTE)) % len(DASHES)]


def _frame(title: str, body: list[str], x_label: str, y_label: str, kind: str) -> Markup:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    head = (f'<svg class="chart" data-chart="{escape(kind)}" role="img" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
            f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">'
            f"<title>{escape(title)}</title>"
            f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
            f'stroke="#999"/>'
            f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle">'
            f"{escape(x_label)}</text>"
            f'<text x="12" y="{TOP + plot_h / 2}" text-anchor="middle" '
            f'transform="rotate(-90 12 {TOP + plot_h / 2})">{escape(y_label)}</text>')
    return Markup(head + "".join(body) + "</svg>")


def _legend(names: Sequence[str], mark: str) -> list[str]:
    out = []
    for i, name in enumerate(names):
        y = TOP + 12 + i * 16
        x = WIDTH - RIGHT + 10
        colour, dash = _style(i)
        if mark == "line":
            out.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 18}" y2="{y - 4}" '
                       f'stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>')
        else:
            out.append(f'<rect x="{x}" y="{y - 10}" width="12" height="10" fill="{colour}"/>')
        label = name if len(name) <= 26 else name[:25] + "…"
        out.append(f'<text x="{x + 24}" y="{y}">{escape(label)}</text>')
    return out


def step_chart(title: str, series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
               x_max: float, x_label: str = "hours since the clock started",
               y_label: str = "share still online") -> Markup:
    """Survival curves: each series is (name, [(hours, S), ...]) from (0, 1)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x_max = max(x_max, 1.0)

    def px(hours: float) -> float:
        return LEFT + plot_w * min(hours, x_max) / x_max

    def py(share: float) -> float:
        return TOP + plot_h * (1.0 - share)

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
    for i, (name, curve) in enumerate(series):
        points = [(0.0, 1.0), *curve] if not curve or curve[0][0] > 0 else list(curve)
        corners = _corners([(f"{px(t):.1f}", f"{py(s):.1f}") for t, s in points])
        path = f"M{corners[0][0]},{corners[0][1]}" + "".join(
            f" H{x} V{y}" for x, y in corners[1:])
        path += f" H{px(x_max):.1f}" if points[-1][0] < x_max else ""
        colour, dash = _style(i)
        body.append(f'<path class="series" data-name="{escape(name)}" d="{path}" fill="none" '
                    f'stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>')
    body += _legend([name for name, _ in series], "line")
    return _frame(title, body, x_label, y_label, "survival")


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


def bar_chart(title: str, categories: Sequence[str],
              series: Sequence[tuple[str, Sequence[int]]], x_label: str,
              y_label: str = "cases") -> Markup:
    """Grouped bars: one group per category, one bar per series."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = max([1, *(v for _, values in series for v in values)])
    group_w = plot_w / max(1, len(categories))
    bar_w = group_w * 0.8 / max(1, len(series))
    body = []
    for tick in (0, top / 2, top):
        y = TOP + plot_h * (1 - tick / top)
        body.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" '
                    f'stroke="#ddd"/><text x="{LEFT - 6}" y="{y + 4:.1f}" '
                    f'text-anchor="end">{tick:g}</text>')
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
                        f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(name)}, '
                        f"{escape(category)}: {value}</title></rect>")
    body += _legend([name for name, _ in series], "bar")
    return _frame(title, body, x_label, y_label, "bars")

"""The inline SVG charts of the HTML report (reports/charts.py)."""

from __future__ import annotations

import re

from reports.charts import bar_chart, count_ticks, step_chart


def _path(svg: str) -> str:
    found = re.search(r'<path class="series"[^>]* d="([^"]+)"', svg)
    assert found, svg[:200]
    return found.group(1)


def _levels(path: str) -> list[float]:
    return [float(v) for v in re.findall(r"V([0-9.]+)", path)]


def test_a_curve_of_many_steps_is_drawn_with_one_corner_per_pixel_column() -> None:
    # 200,000 steps (a hoster with as many cases) over 200 hours.
    steps = [(i / 1000, 1 - i / 200_000) for i in range(1, 200_000)]
    svg = str(step_chart("t", [("big", steps)], 200.0))
    path = _path(svg)
    assert len(svg) < 100_000  # not one command per step
    levels = _levels(path)
    assert levels == sorted(levels)  # still a survival curve: it only goes down
    # ...and it ends where the curve ends: at the last step's level.
    assert _levels(str(step_chart("t", [("last", steps[-1:])], 200.0)))[-1] == levels[-1]


def test_steps_in_one_column_keep_the_level_the_curve_leaves_it_at() -> None:
    # Two drops 0.0001 h apart share a pixel column: the corner shows the second.
    svg = str(step_chart("t", [("s", [(10.0, 0.8), (10.0001, 0.5), (20.0, 0.2)])], 40.0))
    path = _path(svg)
    assert len(_levels(path)) == 2
    few = str(step_chart("t", [("s", [(10.0, 0.5), (20.0, 0.2)])], 40.0))
    assert path == _path(few)


def test_ten_curves_each_look_different_in_colour_or_dashes() -> None:
    """The survival chart draws four totals and six hosters: more series than
    the palette has colours, and none may be mistaken for another."""
    series = [(f"s{i}", [(float(i + 1), 0.5)]) for i in range(10)]
    svg = str(step_chart("t", series, 20.0))
    styles = re.findall(r'<path class="series"[^>]* stroke="([^"]+)" stroke-width="2" '
                        r'stroke-dasharray="([^"]*)"', svg)
    assert len(styles) == 10
    assert len(set(styles)) == 10
    legend = re.findall(r'<line [^>]*stroke="([^"]+)" stroke-width="2" '
                        r'stroke-dasharray="([^"]*)"', svg)
    assert legend == styles


def test_count_axes_have_whole_number_ticks() -> None:
    # Three cases at most: the old axis read 0, 1.5, 3.
    svg = str(bar_chart("t", ["a", "b"], [("s", [3, 1])], x_label="x"))
    ticks = re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', svg)
    assert ticks and all(re.fullmatch(r"\d+", tick) for tick in ticks), ticks
    assert int(ticks[-1]) >= 3
    for largest in (0, 1, 7, 13, 99, 1234, 999_999):
        ticks_of = count_ticks(largest)
        assert ticks_of[0] == 0 and ticks_of[-1] >= largest and len(ticks_of) <= 6
        steps = {b - a for a, b in zip(ticks_of, ticks_of[1:], strict=False)}
        assert len(steps) == 1 and all(isinstance(t, int) for t in ticks_of), ticks_of


def _legend_names(svg: str) -> list[str]:
    """Each legend entry's text, its wrapped lines joined."""
    return [" ".join(re.findall(r"<tspan[^>]*>([^<]*)</tspan>", entry))
            for entry in re.findall(r'<text class="legend"[^>]*>(.*?)</text>', svg)]


def test_legend_names_are_shown_in_full() -> None:
    long = "Hetzner Online GmbH Rechenzentrum Falkenstein Abteilung Missbrauch"
    svg = str(step_chart("t", [(long, [(5.0, 0.5)]), ("short", [(6.0, 0.2)])], 10.0))
    assert _legend_names(svg) == [long, "short"]
    bars = str(bar_chart("t", ["a"], [(long, [1])], x_label="x"))
    assert _legend_names(bars) == [long]


def test_a_legend_taller_than_the_plot_makes_the_chart_taller() -> None:
    series = [(f"Hosting company number {i} with a long legal name B.V.", [(1.0, 0.5)])
              for i in range(12)]
    svg = str(step_chart("t", series, 5.0))
    height = int(re.search(r'height="(\d+)"', svg).group(1))
    last = max(float(y) for y in re.findall(r'<text class="legend" x="[0-9.]+" y="([0-9.]+)"',
                                            svg))
    assert height > last + 13  # the last entry's second line is inside the chart


def test_curves_that_never_drop_are_drawn_above_the_frame_line_and_on_top() -> None:
    """Hosters that removed nothing: S stays 1.0. Their curves must not hide
    under the frame's top edge, nor under each other or another curve."""
    series = [("drops", [(2.0, 1.0), (5.0, 0.5)]), ("never A", [(3.0, 1.0), (9.0, 1.0)]),
              ("never B", [(4.0, 1.0)])]
    svg = str(step_chart("t", series, 10.0))
    frame_top = float(re.search(r'<rect x="[0-9.]+" y="([0-9.]+)"', svg).group(1))
    grid_one = max(float(y) for y in re.findall(r'<text x="[0-9.]+" y="([0-9.]+)" '
                                                r'text-anchor="end">1.00</text>', svg)) - 4
    paths = re.findall(r'<path class="([^"]+)" data-name="([^"]+)" d="([^"]+)"', svg)
    assert [name for _, name, _ in paths][-2:] == ["never A", "never B"]  # drawn last
    rows = {name: float(re.match(r"M[0-9.]+,([0-9.]+)", d).group(1))
            for css, name, d in paths if "never-removed" in css}
    assert set(rows) == {"never A", "never B"}
    assert all(frame_top < y < grid_one for y in rows.values()), (frame_top, rows, grid_one)
    assert rows["never A"] != rows["never B"]
    dropping = next(d for _, name, d in paths if name == "drops")
    assert float(re.match(r"M[0-9.]+,([0-9.]+)", dropping).group(1)) == grid_one
    assert "never A (none removed)" in _legend_names(svg)

"""The inline SVG charts of the HTML report (reports/charts.py)."""

from __future__ import annotations

import re

from reports.charts import step_chart


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

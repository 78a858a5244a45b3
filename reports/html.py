"""The hoster report as one self-contained HTML file: tables, inline SVG
charts, print styles; no script and nothing loaded from elsewhere.

The template (``templates/hosters.html.j2``) is autoescaped: every value from
the store is escaped, whoever wrote it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from kernel.deadlines import Outcome
from reports.charts import DASHES, PALETTE, Style, bar_chart, step_chart
from reports.formats import (
    CROSS_NOTE,
    DEADLINES_NOTE,
    ESTABLISHMENT_TOTALS,
    OUTCOME_TITLES,
    REGIME_TITLES,
    SERVER_NOTE,
    STILL_ONLINE_NOTE,
    SUBTOTALS,
    TOTALS,
    deadline_rows,
    deadlines_text,
    estimate_text,
    hours_text,
    more_text,
    report_dict,
    server_countries_text,
    share_text,
)
from reports.hosters import CROSS, SERVER_TOTALS, HosterReport, Section

__all__ = ["hoster_anchor", "render_html"]

TEMPLATES = Path(__file__).with_name("templates")
CURVES = 6  # hosters with their own survival curve (the most cases)
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["j2"]),
                   trim_blocks=True, lstrip_blocks=True)
_env.filters["hours"] = hours_text
_env.filters["estimate"] = estimate_text
_env.filters["share"] = share_text
_env.filters["served_from"] = server_countries_text
_env.filters["deadlines"] = deadlines_text
_env.filters["more"] = more_text


def hoster_anchor(name: str) -> str:
    """The id of a hoster's line in the HTML report (``#hoster-...``): readable,
    and unique per name (`hostwatch serve` links each hoster to it)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40]
    return f"hoster-{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}".replace("--", "-")


_env.filters["anchor"] = hoster_anchor


# The charts' names of the two splits (#14): "Dutch-hosted" alone would not
# say which meaning a curve or bar has. The words of CROSS and TOTALS.
SPLIT_NAMES = {"dutch": "Hoster established in NL", "foreign": "Hoster established abroad",
               "server_nl": TOTALS["server_nl"], "server_abroad": TOTALS["server_abroad"]}
# One colour per group in every chart (#15): the four groups keep the first
# four colours (and dash patterns, for greyscale print); hosters share the
# rest. In the over-time chart a group's removed cases are its colour, paler.
GROUP_STYLES = {SPLIT_NAMES[name]: Style(PALETTE[i], DASHES[i])
                for i, name in enumerate(("dutch", "foreign", "server_nl", "server_abroad"))}
_HOSTER_COLOURS = PALETTE[len(GROUP_STYLES):]
REMOVED_OPACITY = 0.45


def _hoster_style(i: int) -> Style:
    """The i-th hoster curve: colours the groups do not use, dashes past them."""
    return Style(_HOSTER_COLOURS[i % len(_HOSTER_COLOURS)],
                 DASHES[(i // len(_HOSTER_COLOURS)) % len(DASHES)])


def _monthly_styles() -> dict[str, Style]:
    styles = {}
    for group in ("dutch", "foreign"):
        style = GROUP_STYLES[SPLIT_NAMES[group]]
        styles[f"{SPLIT_NAMES[group]}: reported"] = style
        styles[f"{SPLIT_NAMES[group]}: removed"] = Style(style.colour, style.dash,
                                                         REMOVED_OPACITY)
    return styles


def _charts(report: HosterReport) -> list[tuple[str, str, Markup]]:
    totals = [(SPLIT_NAMES[name], report.totals[name].takedown) for name in SPLIT_NAMES
              if name in report.totals]
    busiest = sorted((line for line in report.hosters if line.figures.takedown.curve),
                     key=lambda line: -line.figures.cases)[:CURVES]
    named = totals + [(line.hoster, line.figures.takedown) for line in busiest]
    series = [(name, takedown.curve) for name, takedown in named if takedown.curve]
    styles = dict(GROUP_STYLES)
    for i, line in enumerate(busiest):
        styles.setdefault(line.hoster, _hoster_style(i))
    x_max = max((t for _, curve in series for t, _ in curve), default=24.0)
    clock = report.query.clock.value
    charts = [(
        "survival",
        f"Share still online by hours since the {clock} (Kaplan–Meier): by where the "
        f"hoster of record is established (in NL, abroad), by where the server stood "
        f"(in NL, abroad; the same cases counted again), and the {len(busiest)} hosters "
        f"with the most cases. Curves of groups that removed none stay at 1.0: they are "
        f"drawn on top, one beside the other just above the 1.0 line",
        step_chart("Survival curves", series, x_max,
                   x_label=f"hours since the {clock}", styles=styles))]
    buckets = [label for label, _, _ in report.histogram]
    charts.append((
        "distribution",
        "Removed cases by time to removal (point estimate), by where the hoster of record "
        "is established: in NL vs abroad",
        bar_chart("Removal-time distribution by establishment", buckets,
                  [(SPLIT_NAMES["dutch"], [d for _, d, _ in report.histogram]),
                   (SPLIT_NAMES["foreign"], [f for _, _, f in report.histogram])],
                  x_label=f"time to removal since the {clock}", styles=GROUP_STYLES)))
    by_server = {bucket: (nl, abroad) for bucket, nl, abroad in report.server_histogram}
    charts.append((
        "distribution-server",
        "The same removed cases by where the server stood: in NL vs abroad (CDN-fronted "
        "cases and those of unknown location left out)",
        bar_chart("Removal-time distribution by server location", buckets,
                  [(SPLIT_NAMES["server_nl"], [by_server.get(b, (0, 0))[0] for b in buckets]),
                   (SPLIT_NAMES["server_abroad"],
                    [by_server.get(b, (0, 0))[1] for b in buckets])],
                  x_label=f"time to removal since the {clock}", styles=GROUP_STYLES)))
    months = sorted({month for month, _, _, _ in report.over_time})
    counts = {(month, group): (cases, removed)
              for month, group, cases, removed in report.over_time}
    monthly = []
    for group in ("dutch", "foreign"):
        monthly += [(f"{SPLIT_NAMES[group]}: reported",
                     [counts.get((m, group), (0, 0))[0] for m in months]),
                    (f"{SPLIT_NAMES[group]}: removed",
                     [counts.get((m, group), (0, 0))[1] for m in months])]
    charts.append((
        "over-time",
        "Cases reported per month, and how many of them were removed, by where the hoster "
        "of record is established: in NL vs abroad",
        bar_chart("Hoster established in NL vs abroad over time", months, monthly,
                  x_label="month reported", styles=_monthly_styles())))
    return charts


def render_html(report: HosterReport) -> str:
    data = report_dict(report)
    sections: list[dict[str, Any]] = []
    for section in Section:
        rows = [h for h in data["hosters"] if h["section"] == section.value]
        groups: dict[str, list[dict[str, Any]]] = {}
        if section in (Section.EU, Section.NON_EU):
            for row in rows:
                groups.setdefault(row["country"] or "unknown", []).append(row)
        else:
            groups[""] = rows
        sections.append({"id": section.value, "title": section.heading, "groups": groups,
                         "count": len(rows), "rows": rows})
    return _env.get_template("hosters.html.j2").render(
        data=data, totals=[(TOTALS[name], data["totals"][name]) for name in ESTABLISHMENT_TOTALS],
        server_totals=[(TOTALS[name], data["totals"][name]) for name in SERVER_TOTALS],
        cross=[(CROSS[name], figures) for name, figures in data["cross"].items()],
        server_note=SERVER_NOTE, cross_note=CROSS_NOTE, still_online_note=STILL_ONLINE_NOTE,
        subtotals=[TOTALS[name] for name in SUBTOTALS],
        sections=sections, charts=_charts(report), deadlines=deadline_rows(data),
        deadlines_note=DEADLINES_NOTE, regimes=REGIME_TITLES,
        outcomes=[(o.value, OUTCOME_TITLES[o.value]) for o in Outcome])

"""The hoster report as JSON, CSV and Markdown (HTML: ``reports.html``).

``report_dict()`` is the one place that turns a `HosterReport` into plain
values; every format renders from it, so the figures cannot differ between
formats. Hours are rounded to 0.1, shares to 0.001.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from typing import Any

from kernel.deadlines import Outcome, Regime
from reports.csvsafe import safe_cell
from reports.hosters import CROSS, SERVER_TOTALS, GroupFigures, HosterLine, HosterReport, Section
from reports.takedown import Estimate

__all__ = ["CSV_COLUMNS", "ESTABLISHMENT_TOTALS", "SUBTOTALS", "deadline_rows",
           "deadlines_text", "estimate_text", "more_text", "render_csv", "render_json",
           "render_markdown", "report_dict", "server_countries_text"]

# The establishment split (where the hoster of record is established), then
# the server-location split (where the server stood, #14).
TOTALS = {"dutch": "Dutch-hosted", "foreign": "Foreign (EU and non-EU)",
          "foreign_eu": "Foreign: other EU member states",
          "foreign_non_eu": "Foreign: outside the EU",
          "cdn": "CDN-fronted", "unattributed": "Unattributed", "all": "All cases",
          "server_nl": "Server in NL", "server_abroad": "Server abroad",
          "server_unknown": "Server location unknown"}
ESTABLISHMENT_TOTALS = ("dutch", "foreign", "foreign_eu", "foreign_non_eu", "cdn",
                        "unattributed", "all")
# Parts of "foreign": a CSV filter on section "total" counts every case once.
SUBTOTALS = ("foreign_eu", "foreign_non_eu")
SERVER_NOTE = ("The same cases by where the server stood (the country of the address of "
               "the check of record), whoever is established where: comparable with hotline "
               "statistics. The establishment split above is comparable with ATKM's reach. "
               "See the method's server_location.")
CROSS_NOTE = ("Cases where the two meanings of Dutch-hosted part: NL servers of hosters "
              "established abroad count as Dutch in hotline statistics, not in ATKM's reach; "
              "servers abroad of hosters established in NL the other way round.")


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _hours(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _share(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _estimate(estimate: Estimate) -> dict[str, float | None]:
    return {"hours": _hours(estimate.hours), "ci_lower": _hours(estimate.ci_lower_hours),
            "ci_upper": _hours(estimate.ci_upper_hours)}


def _figures(figures: GroupFigures) -> dict[str, Any]:
    takedown = figures.takedown
    return {
        "cases": figures.cases,
        "online": figures.online,
        "removed": figures.removed,
        "unchecked": figures.unchecked,
        "median_hours_to_removal": _hours(takedown.median.hours),
        "p90_hours_to_removal": _hours(takedown.p90.hours),
        "removed_within_24h_share": _share(takedown.share_within_24h),
        "removed_within_72h_share": _share(takedown.share_within_72h),
        "removed_within_7d_share": _share(takedown.share_within_7d),
        "deadline_breaches": figures.breaches,
        "reappearances": figures.reappearances,
        "oldest_open_days": None if figures.oldest_open_days is None
        else round(figures.oldest_open_days, 1),
        "median_ci_hours": [_hours(takedown.median.ci_lower_hours),
                            _hours(takedown.median.ci_upper_hours)],
        "p90_ci_hours": [_hours(takedown.p90.ci_lower_hours),
                         _hours(takedown.p90.ci_upper_hours)],
        "measured": takedown.measured,
        "deadlines": figures.deadlines,
        # Perceptual matching (#12): see the method's "perceptual".
        "cases_ref_pdq_report": figures.pdq.from_report,
        "cases_ref_pdq_learned": figures.pdq.learned,
        "reencoded_checks": figures.pdq.reencoded_checks,
        "notices": figures.notices,
        "orders": figures.orders,
    }


def _hoster(line: HosterLine) -> dict[str, Any]:
    return {"hoster": line.hoster, "key": line.key, "section": line.section.value,
            "country": line.country, "dutch": line.dutch, "asns": line.asns,
            "dsa_role": line.dsa_role, "abuse_contact": line.abuse,
            **_figures(line.figures),
            # Where its cases were served from (#14): country -> cases.
            "server_countries": dict(line.server_countries),
            "server_unknown": line.server_unknown,
            # Its oldest cases still online, URLs defanged; the rest counted.
            "still_online": [{"case_id": c.case_id, "source": c.source, "case": c.case,
                              "url": c.url,
                              "days_online": round(c.days_online, 1),
                              "last_checked_at": iso(c.last_checked_at)}
                             for c in line.still_online],
            "still_online_more": line.still_online_more}


def server_countries_text(values: dict[str, Any]) -> str | None:
    """``NL 2, DE 1, unknown 1``: a hoster's server countries, one cell."""
    if "server_countries" not in values:
        return None
    parts = [f"{country} {n}" for country, n in values["server_countries"].items()]
    if values.get("server_unknown"):
        parts.append(f"unknown {values['server_unknown']}")
    return ", ".join(parts)


def report_dict(report: HosterReport) -> dict[str, Any]:
    """The report as JSON-ready values (the JSON format is exactly this)."""
    query = report.query
    totals = report.totals["all"].pdq
    by_server = {bucket: {"server_nl": nl, "server_abroad": abroad}
                 for bucket, nl, abroad in report.server_histogram}
    return {
        "generated_at": iso(report.generated_at),
        "period": {"since": iso(query.since), "until": iso(query.until),
                   "category": query.category},
        "method": {
            "clock": query.clock.value,
            "confidence_level": query.confidence,
            "check_resolution_hours": _hours(report.check_resolution_hours),
            # The settings the data was produced with (the text: "settings").
            "settings_in_use": {"removal_confirmations": query.debounce.confirmations,
                                "removal_min_hours": query.debounce.min_hours,
                                "transient_days": query.debounce.transient_days,
                                "recheck_hours": query.recheck_hours,
                                "still_online_limit": query.still_online_limit},
            **report.method,
            "perceptual_matching": {
                "enabled": query.pdq.enabled, "threshold_bits": query.pdq.threshold,
                "min_quality": query.pdq.min_quality,
                "cases": totals.cases, "cases_ref_pdq_report": totals.from_report,
                "cases_ref_pdq_learned": totals.learned,
                "reencoded_checks": totals.reencoded_checks},
        },
        "suspect_runs": [{"run": run_id, "started_at": iso(started), "reason": reason}
                         for run_id, started, reason in report.suspect_runs],
        "totals": {name: _figures(figures) for name, figures in report.totals.items()},
        # Where the two meanings of Dutch-hosted part (#14).
        "cross": {name: {"label": CROSS[name], **_figures(figures)}
                  for name, figures in report.cross.items()},
        "hosters": [_hoster(line) for line in report.hosters],
        "over_time": [{"month": month, "group": group, "cases": cases, "removed": removed}
                      for month, group, cases, removed in report.over_time],
        # Removed cases per bucket, by establishment and by server location.
        "removal_time_distribution": [
            {"bucket": bucket, "dutch": dutch, "foreign": foreign,
             **by_server.get(bucket, {"server_nl": 0, "server_abroad": 0})}
            for bucket, dutch, foreign in report.histogram],
    }


def render_json(report: HosterReport) -> str:
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n"


CSV_COLUMNS = [
    "section", "hoster", "key", "country", "dutch", "asns", "dsa_role", "abuse_contact",
    "cases", "online", "removed", "unchecked", "median_hours_to_removal",
    "median_ci_lower", "median_ci_upper", "p90_hours_to_removal",
    "removed_within_24h_share", "removed_within_72h_share", "removed_within_7d_share",
    *(f"breaches_{regime.value}" for regime in Regime),
    "reappearances", "oldest_open_days",
    # Every other deadline outcome per regime (breaches: above).
    *(f"{outcome.value}_{regime.value}" for outcome in Outcome
      if outcome is not Outcome.BREACHED for regime in Regime),
    # Perceptual matching (#12): cases with a reference PDQ (from the report,
    # learned from a SHA-256 match) and checks that found the same picture.
    "cases_ref_pdq_report", "cases_ref_pdq_learned", "reencoded_checks",
    # Server location (#14): per hoster, the countries its cases were served
    # from ("NL 2, DE 1, unknown 1") and the cases of unknown location.
    "server_countries", "server_unknown",
    # Notices sent and removal orders issued for the cases (#15).
    "notices", "orders",
]


def _csv_row(section: str, name: str, values: dict[str, Any]) -> list[Any]:
    row = {"section": section, "hoster": name, **values,
           "asns": " ".join(str(asn) for asn in values.get("asns", [])),
           "median_ci_lower": values["median_ci_hours"][0],
           "median_ci_upper": values["median_ci_hours"][1],
           "server_countries": server_countries_text(values)}
    for regime, count in values["deadline_breaches"].items():
        row[f"breaches_{regime}"] = count
    for regime, outcomes in values["deadlines"].items():
        for outcome, count in outcomes.items():
            if outcome != Outcome.BREACHED.value:
                row[f"{outcome}_{regime}"] = count
    return [row.get(column) for column in CSV_COLUMNS]


def render_csv(report: HosterReport) -> str:
    """One row per hoster (by section), then one per total (section
    ``total``: the establishment split; ``subtotal``: foreign in the EU and
    outside it; ``server_total``: the server-location split, so that a filter
    on ``total`` counts every case once), then
    the cross table's rows (section ``cross``). Cells that a spreadsheet would
    run as a formula are escaped (``reports.csvsafe``)."""
    data = report_dict(report)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for hoster in data["hosters"]:
        writer.writerow([safe_cell(v) for v in _csv_row(hoster["section"], hoster["hoster"],
                                                       hoster)])
    for name, figures in data["totals"].items():
        section = ("server_total" if name in SERVER_TOTALS
                   else "subtotal" if name in SUBTOTALS else "total")
        writer.writerow([safe_cell(v) for v in _csv_row(section, TOTALS[name], figures)])
    for name, figures in data["cross"].items():
        writer.writerow([safe_cell(v) for v in _csv_row("cross", CROSS[name], figures)])
    return out.getvalue()


# ---------------------------------------------------------------- Markdown

# Specials that act inside a table cell; the line-start ones (#, -, +) cannot.
# HTML specials become entities (safe in every Markdown renderer).
_MD_SPECIAL = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;",
                             **{c: "\\" + c for c in "\\`*_{}[]|~"}})


# What a Markdown viewer turns into a link by itself (GitHub: any http(s): or
# www. in text), in names a registry or an AS gave: broken the defang way.
_AUTOLINK = re.compile(r"(?i)\b(h)tt(ps?:)|\b(www)\.")


def md(value: Any) -> str:
    """A table cell: Markdown and HTML specials escaped, one line, nothing a
    viewer would make a link of."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    text = _AUTOLINK.sub(lambda m: f"{m[1]}xx{m[2]}" if m[1] else f"{m[3]}[.]",
                         " ".join(str(value).split()))
    return text.translate(_MD_SPECIAL)


def share_text(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


def hours_text(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} h"


def estimate_text(hours: float | None, ci: list[float | None] | tuple[float | None, ...]) -> str:
    """``38.0 h (6.0–open)``: a time with its confidence interval. A bound the
    data do not give (JSON null) is written "open", never as a number: one
    removed case reads ``12.0 h (CI open)``, not ``(12.0–12.0)``."""
    lower, upper = ci
    if hours is None and lower is None and upper is None:
        return hours_text(None)
    if lower is None and upper is None:
        return f"{hours_text(hours)} (CI open)"
    low = "open" if lower is None else f"{lower:.1f}"
    high = "open" if upper is None else f"{upper:.1f}"
    return f"{hours_text(hours)} ({low}–{high})"


# Totals show what means something for a group; hosters add who they are.
MD_TOTALS_HEADER = ("| Group | Cases | Online | Removed | Median h (CI) | p90 h | ≤24 h | ≤72 h "
                    "| ≤7 d | Notices / orders | Deadlines | Reapp. | Oldest open (d) |")
MD_TOTALS_RULE = "|" + "---|" * 13
MD_HEADER = ("| Hoster | Country | ASNs | DSA role | Cases | Online | Removed | Median h (CI) "
             "| p90 h | ≤24 h | ≤72 h | ≤7 d | Notices / orders | Deadlines | Reapp. "
             "| Oldest open (d) | Abuse contact | Served from |")
MD_RULE = "|" + "---|" * 18
# Deadlines summed over the regimes, in this order (per regime: "Deadline outcomes").
SUMMARY_OUTCOMES = (Outcome.MET, Outcome.BREACHED, Outcome.PENDING, Outcome.UNDECIDED,
                    Outcome.ALREADY_GONE)


def deadlines_text(values: dict[str, Any]) -> str:
    """``met 1, breached 2, undecided 1``: every regime's deadlines by
    outcome, the outcomes that occur; "none" without deadlines."""
    sums = {o.value: sum(outcomes.get(o.value, 0) for outcomes in values["deadlines"].values())
            for o in SUMMARY_OUTCOMES}
    parts = [f"{OUTCOME_TITLES[o.value].lower()} {sums[o.value]}" for o in SUMMARY_OUTCOMES
             if sums[o.value]]
    return ", ".join(parts) or "none"


def _common_cells(values: dict[str, Any]) -> list[str]:
    return [md(values["cases"]), md(values["online"]), md(values["removed"]),
            md(estimate_text(values["median_hours_to_removal"], values["median_ci_hours"])),
            md(hours_text(values["p90_hours_to_removal"])),
            md(share_text(values["removed_within_24h_share"])),
            md(share_text(values["removed_within_72h_share"])),
            md(share_text(values["removed_within_7d_share"])),
            md(f"{values['notices']} / {values['orders']}"), md(deadlines_text(values)),
            md(values["reappearances"]), md(values["oldest_open_days"])]


def _md_total(name: str, values: dict[str, Any]) -> str:
    return "| " + " | ".join([md(name), *_common_cells(values)]) + " |"


def _md_line(name: str, values: dict[str, Any]) -> str:
    cells = [md(name), md(values.get("country")), md(values.get("asns")),
             md(values.get("dsa_role")), *_common_cells(values),
             md(values.get("abuse_contact")), md(server_countries_text(values))]
    return "| " + " | ".join(cells) + " |"


STILL_ONLINE_NOTE = ("Per hoster, its cases not confirmed removed, oldest report first; "
                     "days online since the report. URLs are defanged (hxxp, [.]): copy one "
                     "back only to act on it, in an environment meant for that.")


def more_text(values: dict[str, Any]) -> str | None:
    """``and 3 more (13 still online)`` when the list was cut."""
    more = values["still_online_more"]
    if not more:
        return None
    return f"and {more} more ({values['online']} still online)"


def _md_still_online(rows: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for row in rows:
        if not row["still_online"]:
            continue
        lines += ["", f"### Still online: {md(row['hoster'])}", "",
                  "| Case | Reported as | URL (defanged) | Days online | Last check |",
                  "|---|---|---|---|---|"]
        lines += ["| " + " | ".join([md(c["case_id"]), md(f"{c['source']}:{c['case']}"),
                                     md(c["url"]), md(c["days_online"]),
                                     md(c["last_checked_at"] or "never")]) + " |"
                  for c in row["still_online"]]
        if more_text(row):
            lines += ["", md(more_text(row)) + "."]
    return lines


OUTCOME_TITLES = {Outcome.MET.value: "Met", Outcome.ALREADY_GONE.value: "Already gone",
                  Outcome.BREACHED.value: "Breached", Outcome.UNDECIDED.value: "Undecided",
                  Outcome.PENDING.value: "Pending"}
REGIME_TITLES = {Regime.NOTICE_24H.value: "notice 24 h", Regime.ATKM_ORDER.value: "ATKM order",
                 Regime.TERRORIST_1H.value: "terrorist 1 h"}
DEADLINES_NOTE = ("Per regime, the deadlines judged when the report was generated: pending = "
                  "not yet passed; already gone = the material was gone before the notice or "
                  "order and stayed gone (not compliance); met, breached, undecided: see the "
                  "method. Groups and hosters without deadlines are left out.")


def deadline_rows(data: dict[str, Any]) -> list[tuple[str, str, dict[str, int]]]:
    """(group or hoster, regime, outcome -> deadlines) of every total and
    hoster with at least one deadline of that regime, totals first."""
    named = [(TOTALS[name], figures) for name, figures in data["totals"].items()]
    named += [(CROSS[name], figures) for name, figures in data["cross"].items()]
    named += [(hoster["hoster"], hoster) for hoster in data["hosters"]]
    return [(name, regime, outcomes) for name, values in named
            for regime, outcomes in values["deadlines"].items() if sum(outcomes.values())]


def render_markdown(report: HosterReport) -> str:
    data = report_dict(report)
    period = data["period"]
    lines = ["# Hoster report", "",
             f"Generated {data['generated_at']}; cases reported "
             f"{period['since'] or 'from the start'} to {period['until'] or 'now'}"
             + (f", category {md(period['category'])}" if period["category"] else "")
             + f"; hours to removal from the {data['method']['clock']}.", "",
             "## Dutch-hosted vs foreign (where the hoster is established)", "",
             MD_TOTALS_HEADER, MD_TOTALS_RULE]
    for name in ESTABLISHMENT_TOTALS:
        lines.append(_md_total(TOTALS[name], data["totals"][name]))
    lines += ["", "## Server in NL vs abroad (where the server stood)", "", SERVER_NOTE, "",
              MD_TOTALS_HEADER, MD_TOTALS_RULE]
    lines += [_md_total(TOTALS[name], data["totals"][name]) for name in SERVER_TOTALS]
    lines += ["", "## Where the two meanings part", "", CROSS_NOTE, "", MD_TOTALS_HEADER,
              MD_TOTALS_RULE]
    lines += [_md_total(CROSS[name], figures) for name, figures in data["cross"].items()]
    by_section: dict[str, list[dict[str, Any]]] = {}
    for hoster in data["hosters"]:
        by_section.setdefault(hoster["section"], []).append(hoster)
    for section in Section:
        lines += ["", f"## {section.heading}", ""]
        rows = by_section.get(section.value, [])
        if not rows:
            lines.append("No cases.")
            continue
        lines += [MD_HEADER, MD_RULE]
        lines += [_md_line(row["hoster"], row) for row in rows]
        if any(row["still_online"] for row in rows):
            lines += ["", STILL_ONLINE_NOTE]
            lines += _md_still_online(rows)
    lines += ["", "## Deadline outcomes", "", DEADLINES_NOTE, ""]
    outcome_rows = deadline_rows(data)
    if outcome_rows:
        lines += ["| Group or hoster | Regime | "
                  + " | ".join(OUTCOME_TITLES[o.value] for o in Outcome) + " |",
                  "|" + "---|" * (2 + len(Outcome))]
        lines += ["| " + " | ".join([md(name), md(REGIME_TITLES[regime]),
                                     *(md(outcomes[o.value]) for o in Outcome)]) + " |"
                  for name, regime, outcomes in outcome_rows]
    else:
        lines.append("No deadlines.")
    lines += ["", "## Method and limitations", "",
              f"- Check resolution: the median gap between the last served and the first "
              f"gone check of a removal is "
              f"{hours_text(data['method']['check_resolution_hours'])}.", ""]
    for name, text in report.method.items():
        lines.append(f"- **{name}**: {md(text)}")
    return "\n".join(lines) + "\n"

"""The hoster report and the XARF export and perceptual matching (#12): the method
says how many cases could be matched by picture and how many checks found the
same picture in other bytes (JSON, Markdown, HTML, CSV), and `reencoded` counts
as served everywhere."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from hostwatch.cli import main
from kernel.state import Debounce
from reports.formats import render_csv, render_json, render_markdown
from reports.hosters import HosterReport, ReportQuery, hoster_report
from reports.html import render_html
from reports.perceptual import PdqRule
from store import Case, Store
from store.checks import NewCheck, append_checks
from store.imports import import_cases
from tests.reports.test_xarf import SEEN, _build, schema_errors

T0 = datetime(2026, 4, 1, tzinfo=UTC)
SHA = "ab" * 32
COUNTS = ("2 of 4 cases could be matched by picture (with a reference PDQ: 1 from the report, "
          "1 learned from a SHA-256 match); the other 2 by SHA-256 only. 3 checks found the "
          "same picture in other bytes")


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def fill(store: Store, tmp_path: Path) -> None:
    """R: a PDQ from the report, served re-encoded three times (still online).
    L: no PDQ in the report; learned from its first check (a SHA-256 match).
    S: SHA-256 only, changed twice (removed). N: never checked."""
    path = tmp_path / "reports.csv"
    path.write_text("id,url,category,reported_at,sha256,pdq\n"
                    f"R,http://r.test/r.jpg,csam,2026-04-01T00:00:00Z,{SHA},{'0f' * 32}\n"
                    f"L,http://l.test/l.jpg,csam,2026-04-01T00:00:00Z,{SHA},\n"
                    f"S,http://s.test/s.jpg,csam,2026-04-01T00:00:00Z,{SHA},\n"
                    "N,http://n.test/n.jpg,csam,2026-04-01T00:00:00Z,,\n")
    assert import_cases(store, path, now=at(0)).added == 4
    with store.session() as session:
        rows = session.execute(select(Case.external_id, Case.id))
        ids = {row.external_id: row.id for row in rows}

    def check(case: str, hours: float, verdict: str, **more: object) -> NewCheck:
        return NewCheck(case_id=ids[case], checked_at=at(hours), method="http", verdict=verdict,
                        url=f"http://{case.lower()}.test/x.jpg", tool_version="test",
                        http_status=200, **more)  # type: ignore[arg-type]

    with store.transaction() as session:
        append_checks(session, [
            *(check("R", hours, "reencoded", body_sha256="cd" * 32, body_pdq="0e" * 32,
                    pdq_quality=90, pdq_distance=8, reference_match=True)
              for hours in (1, 24, 48)),
            check("L", 1, "online", body_sha256=SHA, body_pdq="f0" * 32, pdq_quality=95,
                  reference_match=True, learns_pdq=True),
            check("S", 1, "changed", body_sha256="ee" * 32, reference_match=False),
            check("S", 24, "changed", body_sha256="ee" * 32, reference_match=False),
        ], Debounce())


@pytest.fixture
def built(store, tmp_path) -> HosterReport:
    fill(store, tmp_path)
    with store.session() as session:
        return hoster_report(session, ReportQuery(pdq=PdqRule(threshold=20, min_quality=60)),
                             now=at(72))


def test_json_states_the_rule_and_the_counts(built):
    data = json.loads(render_json(built))
    method = data["method"]
    assert "When at most 20 of the 256 bits differ and the quality is at least 60" in \
        method["perceptual"]
    assert COUNTS in method["perceptual"]
    assert method["perceptual_matching"] == {
        "enabled": True, "threshold_bits": 20, "min_quality": 60, "cases": 4,
        "cases_ref_pdq_report": 1, "cases_ref_pdq_learned": 1, "reencoded_checks": 3}
    total = data["totals"]["all"]
    assert (total["cases_ref_pdq_report"], total["cases_ref_pdq_learned"],
            total["reencoded_checks"]) == (1, 1, 3)
    # Served re-encoded is served: R is online, not removed; S (changed) is removed.
    assert (total["online"], total["removed"], total["unchecked"]) == (2, 1, 1)


def test_csv_rows_carry_the_counts(built):
    rows = list(csv.DictReader(io.StringIO(render_csv(built))))
    every = next(row for row in rows if row["hoster"] == "All cases")
    assert (every["cases_ref_pdq_report"], every["cases_ref_pdq_learned"],
            every["reencoded_checks"]) == ("1", "1", "3")


def test_markdown_method_has_the_perceptual_item(built):
    text = render_markdown(built)
    method = text.split("## Method and limitations")[1]
    line = next(line for line in method.splitlines() if line.startswith("- **perceptual**"))
    assert COUNTS in line
    assert "served (online; or reencoded" in method


class _Method(HTMLParser):
    """The method section's terms and their texts."""

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[str, str] = {}
        self._tag: str | None = None
        self._term = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag = tag

    def handle_endtag(self, tag: str) -> None:
        self._tag = None

    def handle_data(self, data: str) -> None:
        if self._tag == "dt":
            self._term = data
            self.items[data] = ""
        elif self._tag == "dd" and self._term:
            self.items[self._term] += data


def test_html_method_has_the_perceptual_item(built):
    page = render_html(built)
    parser = _Method()
    parser.feed(page.split('<section id="method">')[1])
    assert COUNTS in parser.items["Perceptual"]
    # The numbers for machines are in JSON; not printed here as a dict.
    assert not any("matching" in term.lower() for term in parser.items)


def test_the_command_states_the_configured_rule(store, db_url, tmp_path):
    fill(store, tmp_path)
    out = tmp_path / "r.json"
    result = CliRunner(env={"HOSTWATCH_PDQ_THRESHOLD": "12", "HOSTWATCH_PDQ": "0"}).invoke(
        main, ["--db", db_url, "report", "hosters", "-o", str(out)])
    assert result.exit_code == 0, result.output
    method = json.loads(out.read_text())["method"]
    assert "When at most 12 of the 256 bits differ" in method["perceptual"]
    assert "switched off (HOSTWATCH_PDQ=0)" in method["perceptual"]
    assert method["perceptual_matching"]["enabled"] is False


def test_xarf_names_the_media_type_of_a_reencoded_check():
    report = _build(seen=replace(SEEN, verdict="reencoded"))
    assert report["media_type"] == "image"
    assert schema_errors(report) == []
    # Not served: no media type, as before.
    assert "media_type" not in _build(seen=replace(SEEN, verdict="changed"))

"""The hoster report and the evidence packs name the suspect runs that checked
their cases (#10 point 8)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from kernel.model import RunHealth
from kernel.state import Debounce
from reports.evidence import Audience, EvidenceData, build_pack
from reports.evidence_data import judgements
from reports.formats import render_json, render_markdown
from reports.hosters import ReportQuery, hoster_report
from reports.html import render_html
from store.checks import NewCheck, append_checks
from store.models import Case, Check, CrawlRun, Hoster

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _case(session, name: str, category: str) -> int:
    case = Case(source="t", external_id=name, url=f"http://{name}.test/a.jpg",
                url_normalised=f"http://{name}.test/a.jpg", host=f"{name}.test",
                category=category, reported_at=T0, imported_at=T0, state="unchecked",
                reappearances=0, check_count=0)
    session.add(case)
    session.flush()
    return case.id


def _run(session, health: RunHealth, reason: str | None, hours: float) -> int:
    run = CrawlRun(started_at=T0 + timedelta(hours=hours), status="finished", tool_version="t",
                   health=health.value, health_reason=reason)
    session.add(run)
    session.flush()
    return run.id


def test_the_method_section_names_the_suspect_runs_of_its_cases(store):
    with store.transaction() as session:
        csam = _case(session, "a", "csam")
        ncii = _case(session, "b", "ncii")
        healthy = _run(session, RunHealth.HEALTHY, None, 1)
        broken = _run(session, RunHealth.SUSPECT, "control http://c.test/ not served", 24)
        other = _run(session, RunHealth.SUSPECT, "resolver dead", 48)
        checks = [(csam, healthy, 1, "online"), (csam, broken, 24, "nxdomain"),
                  (ncii, other, 48, "nxdomain")]
        append_checks(session, [
            NewCheck(case_id=case_id, checked_at=T0 + timedelta(hours=hours), method="http",
                     verdict=verdict, url="http://x.test/", tool_version="t", run_id=run_id)
            for case_id, run_id, hours, verdict in checks], Debounce())
    with store.session() as session:
        report = hoster_report(session, ReportQuery(category="csam"), now=T0 + timedelta(days=3))
    assert [run_id for run_id, _, _ in report.suspect_runs] == [broken]
    text = report.method["suspect_runs"]
    assert (f"run {broken} of 2026-05-02 00:00 UTC (control http://c.test/ not served)"
            in text)
    assert "resolver dead" not in text  # that run checked no case of this report
    assert "count toward no removal" in text
    assert f"run {broken} of 2026-05-02" in render_markdown(report)
    assert f"run {broken} of 2026-05-02" in render_html(report)
    data = json.loads(render_json(report))
    assert data["suspect_runs"] == [{"run": broken, "started_at": "2026-05-02T00:00:00Z",
                                     "reason": "control http://c.test/ not served"}]
    with store.session() as session:
        clean = hoster_report(session, ReportQuery(category="terrorist"))
    assert clean.suspect_runs == []
    assert "No run that checked these cases was suspect" in clean.method["suspect_runs"]


def test_an_evidence_pack_shows_each_checks_run_and_whether_it_was_suspect(store):
    with store.transaction() as session:
        case_id = _case(session, "a", "csam")
        healthy = _run(session, RunHealth.HEALTHY, None, 1)
        broken = _run(session, RunHealth.SUSPECT, "3 of 3 checks got no usable address", 24)
        append_checks(session, [
            NewCheck(case_id=case_id, checked_at=T0 + timedelta(hours=hours), method="http",
                     verdict=verdict, url="http://a.test/a.jpg", tool_version="t", run_id=run)
            for hours, verdict, run in ((1, "online", healthy), (24, "nxdomain", broken),
                                        (48, "nxdomain", broken))], Debounce())
    with store.session() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.state == "online"  # the suspect checks held
        checks = list(session.scalars(select(Check).order_by(Check.id)))
        runs = list(session.scalars(select(CrawlRun).order_by(CrawlRun.id)))
    hoster = Hoster(key="h", legal_name="H B.V.", country="NL", asns=[], source="registry",
                    updated_at=T0)
    data = EvidenceData(hoster=hoster, audience=Audience.ATKM, since=None, until=None,
                        cases=[case], checks=checks, attributions=[], notices=[], orders=[],
                        head_check_id=checks[-1].id, head_hash=checks[-1].record_hash,
                        store_url="sqlite://", generated_at=T0 + timedelta(days=3),
                        rules=Debounce(), runs=runs)
    files = build_pack(data)
    rows = list(csv.DictReader(io.StringIO(files["runs.csv"].decode())))
    assert [(row["run_id"], row["health"], row["health_reason"]) for row in rows] == [
        (str(healthy), "healthy", ""), (str(broken), "suspect",
                                        "3 of 3 checks got no usable address")]
    method = files["method.md"].decode()
    assert "## Suspect runs" in method
    assert f"Suspect runs among those that checked this pack's cases: {broken}." in method
    assert "runs.csv" in files["README.md"].decode()
    assert "runs.csv" in files["MANIFEST.sha256"].decode()


def test_a_suspect_runs_gone_check_does_not_meet_a_deadline(store):
    """Deadlines use the checks that count: a broken vantage point that missed
    the material before the deadline does not make it met when healthy runs
    saw it served on both sides of the deadline."""
    from kernel.schedule import ScheduleRule
    from reports.deadline_cases import case_deadlines
    from store.models import Notice

    with store.transaction() as session:
        case_id = _case(session, "a", "csam")
        session.add(Notice(case_id=case_id, sent_at=T0 + timedelta(hours=1), channel="email",
                           recipient="abuse@a.test", reference="N1", trusted_flagger=False,
                           due_at=T0 + timedelta(hours=25)))
        healthy = _run(session, RunHealth.HEALTHY, None, 2)
        broken = _run(session, RunHealth.SUSPECT, "resolver dead", 10)
        later = _run(session, RunHealth.HEALTHY, None, 30)
        append_checks(session, [
            NewCheck(case_id=case_id, checked_at=T0 + timedelta(hours=hours), method="http",
                     verdict=verdict, url="http://a.test/a.jpg", tool_version="t", run_id=run)
            for run, hours, verdict in ((healthy, 2, "online"), (broken, 10, "http_gone"),
                                        (later, 30, "online"))], Debounce())
    now = T0 + timedelta(days=3)
    rows = list(case_deadlines(store, now, ScheduleRule(timedelta(minutes=5))))
    assert [row.judgement.outcome.value for row in rows] == ["breached"]
    with store.session() as session:
        report = json.loads(render_json(hoster_report(session, ReportQuery(), now=now)))
    outcomes = report["totals"]["all"]["deadlines"]["notice_24h"]
    assert (outcomes["breached"], outcomes["met"]) == (1, 0)
    with store.session() as session:
        case = session.get(Case, case_id)
        notices = list(session.scalars(select(Notice)))
        checks = list(session.scalars(select(Check).order_by(Check.id)))
        runs = list(session.scalars(select(CrawlRun).order_by(CrawlRun.id)))
    hoster = Hoster(key="h", legal_name="H B.V.", country="NL", asns=[], source="registry",
                    updated_at=T0)
    data = EvidenceData(hoster=hoster, audience=Audience.ATKM, since=None, until=None,
                        cases=[case], checks=checks, attributions=[], notices=notices,
                        orders=[], head_check_id=checks[-1].id,
                        head_hash=checks[-1].record_hash, store_url="sqlite://",
                        generated_at=now, rules=Debounce(), runs=runs)
    per_notice, _, _ = judgements(data)
    assert [j.outcome.value for j in per_notice.values()] == ["breached"]

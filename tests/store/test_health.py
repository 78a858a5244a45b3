"""store.health: judging a run's vantage point (#10 point 8), by hand-made
tallies (pure), then from the checks of a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from kernel.model import RunHealth
from kernel.state import Debounce
from store.checks import NewCheck, append_checks
from store.health import (
    ControlPhase,
    ControlResult,
    HealthRule,
    RunTally,
    judge,
    judge_pending_runs,
    tally_run,
)
from store.models import Case, CrawlRun

T0 = datetime(2026, 5, 1, tzinfo=UTC)
RULE = HealthRule(share=0.5, min_cases=20, no_address_share=0.9)
QUICK = Debounce(confirmations=2, min_hours=0, transient_days=7)


def control(status: int | None, phase: ControlPhase = ControlPhase.START,
            error: str | None = None) -> ControlResult:
    return ControlResult(phase, "http://control.example/", status, error, T0)


def test_a_normal_run_is_healthy():
    tally = RunTally(checks=1000, no_address=12, were_served=800, turned=30)
    assert judge(tally, [], RULE).health is RunHealth.HEALTHY


def test_a_control_that_is_not_served_makes_the_run_suspect():
    tally = RunTally(checks=3, no_address=0, were_served=3, turned=0)
    judgement = judge(tally, [control(200), control(503, ControlPhase.END)], RULE)
    assert judgement.health is RunHealth.SUSPECT
    assert judgement.reason == ("control http://control.example/ not served at the end of the "
                                "run (HTTP 503)")
    failed = judge(tally, [control(None, error="dns_servfail")], RULE)
    assert "dns_servfail" in (failed.reason or "")
    assert judge(tally, [control(204), control(200, ControlPhase.END)], RULE).health \
        is RunHealth.HEALTHY


def test_half_the_served_cases_failing_at_network_level_makes_the_run_suspect():
    assert judge(RunTally(100, 0, 40, 20), [], RULE).health is RunHealth.SUSPECT
    assert judge(RunTally(100, 0, 40, 19), [], RULE).health is RunHealth.HEALTHY
    judgement = judge(RunTally(100, 0, 40, 40), [control(200)], RULE)
    assert judgement.health is RunHealth.SUSPECT  # passing controls do not excuse it
    assert judgement.reason == ("40 of 40 cases served before failed at network level in "
                                "this run (threshold 50%)")


def test_a_share_needs_enough_cases():
    assert judge(RunTally(19, 0, 19, 19), [], RULE).health is RunHealth.HEALTHY
    assert judge(RunTally(20, 0, 20, 20), [], RULE).health is RunHealth.SUSPECT


def test_a_small_run_where_nothing_got_an_address_is_suspect_unless_the_controls_vouch():
    """A deadline run checks a handful of cases: too few for a share, but a
    dead resolver still shows as every check without an address."""
    judgement = judge(RunTally(checks=3, no_address=3, were_served=3, turned=3), [], RULE)
    assert judgement.health is RunHealth.SUSPECT
    assert "all 3 checks got no usable address" in (judgement.reason or "")
    ok = [control(200), control(200, ControlPhase.END)]
    assert judge(RunTally(3, 3, 3, 3), ok, RULE).health is RunHealth.HEALTHY
    # One case still answered, or none was ever served (a fresh import): healthy.
    assert judge(RunTally(3, 2, 3, 2), [], RULE).health is RunHealth.HEALTHY
    assert judge(RunTally(3, 3, 0, 0), [], RULE).health is RunHealth.HEALTHY


def test_a_fresh_import_where_nothing_resolves_is_suspect_unless_the_controls_vouch():
    tally = RunTally(checks=50, no_address=45, were_served=0, turned=0)
    assert "no usable address" in (judge(tally, [], RULE).reason or "")
    ok = [control(200), control(200, ControlPhase.END)]
    assert judge(tally, ok, RULE).health is RunHealth.HEALTHY
    assert judge(RunTally(50, 44, 0, 0), [], RULE).health is RunHealth.HEALTHY


def test_the_rule_refuses_shares_out_of_range():
    with pytest.raises(ValueError, match="share"):
        HealthRule(share=0)
    with pytest.raises(ValueError, match="min_cases"):
        HealthRule(min_cases=0)


# -- from the store ----------------------------------------------------------------

def _cases(session, n: int) -> list[int]:
    ids = []
    for i in range(n):
        case = Case(source="t", external_id=str(i), url=f"http://h{i}.test/a.jpg",
                    url_normalised=f"http://h{i}.test/a.jpg", host=f"h{i}.test",
                    category="csam", reported_at=T0, imported_at=T0, state="unchecked",
                    reappearances=0, check_count=0)
        session.add(case)
        session.flush()
        ids.append(case.id)
    return ids


def _run(session, health: RunHealth, status: str = "finished") -> int:
    run = CrawlRun(started_at=T0, status=status, tool_version="t", health=health.value)
    session.add(run)
    session.flush()
    return run.id


def _checks(session, run_id: int | None, when: datetime, verdicts: dict[int, str]) -> None:
    append_checks(session, [NewCheck(case_id=case_id, checked_at=when, method="http",
                                     verdict=verdict, url="http://x.test/", tool_version="t",
                                     run_id=run_id)
                            for case_id, verdict in verdicts.items()], QUICK)


def test_the_tally_reads_each_cases_previous_decisive_check(store):
    with store.transaction() as session:
        ids = _cases(session, 6)
        first = _run(session, RunHealth.HEALTHY)
        broken = _run(session, RunHealth.SUSPECT)
        now = _run(session, RunHealth.PENDING, status="running")
        _checks(session, first, T0 + timedelta(hours=1), {
            ids[0]: "online", ids[1]: "online", ids[2]: "http_gone", ids[3]: "online",
            ids[4]: "online"})
        # ids[3]: a transient check is not decisive; ids[4]: a suspect run's
        # gone check is not either: both still count as served before.
        _checks(session, None, T0 + timedelta(hours=2), {ids[3]: "timeout"})
        _checks(session, broken, T0 + timedelta(hours=3), {ids[4]: "nxdomain"})
        _checks(session, now, T0 + timedelta(hours=4), {
            ids[0]: "nxdomain", ids[1]: "http_gone", ids[2]: "dns_error", ids[3]: "refused",
            ids[4]: "blocked_address", ids[5]: "nxdomain"})
    with store.session() as session:
        tally = tally_run(session, now)
    # served before: 0, 1, 3, 4; of those at network level now: 0, 3, 4
    assert tally == RunTally(checks=6, no_address=4, were_served=4, turned=3)


def test_an_unjudged_run_holds_its_failures_until_judged(store):
    with store.transaction() as session:
        ids = _cases(session, 25)
        first = _run(session, RunHealth.HEALTHY)
        _checks(session, first, T0, dict.fromkeys(ids, "online"))
        broken = _run(session, RunHealth.PENDING, status="aborted")  # a crash
        _checks(session, broken, T0 + timedelta(hours=1), dict.fromkeys(ids, "nxdomain"))
        _checks(session, broken, T0 + timedelta(hours=2), dict.fromkeys(ids[:2], "nxdomain"))
    with store.session() as session:
        assert set(session.scalars(select(Case.state))) == {"online"}  # held while unjudged
    with store.transaction() as session:
        assert judge_pending_runs(session, RULE, QUICK) == [broken]
    with store.session() as session:
        run = session.get(CrawlRun, broken)
        assert run is not None and run.health == RunHealth.SUSPECT.value
        assert set(session.scalars(select(Case.state))) == {"online"}
        assert set(session.scalars(select(Case.unconfirmed_checks))) == {1, 2}


def test_a_healthy_judgement_lets_the_runs_failures_count(store):
    with store.transaction() as session:
        ids = _cases(session, 25)
        first = _run(session, RunHealth.HEALTHY)
        _checks(session, first, T0, dict.fromkeys(ids, "online"))
        run = _run(session, RunHealth.PENDING, status="finished")
        _checks(session, run, T0 + timedelta(hours=1), {ids[0]: "http_gone"})
        _checks(session, run, T0 + timedelta(hours=2), {ids[0]: "http_gone"})
    with store.session() as session:
        assert session.get(Case, ids[0]).state == "online"  # type: ignore[union-attr]
    with store.transaction() as session:
        judge_pending_runs(session, RULE, QUICK)
    with store.session() as session:
        case = session.get(Case, ids[0])
        assert case is not None and (case.state, case.unconfirmed_checks) == ("removed", 0)

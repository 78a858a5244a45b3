"""The hoster report's SQL aggregation gives exactly the figures of the pure
functions (reports.takedown, kernel.deadlines) over the same cases, on SQLite
and on PostgreSQL, for random histories (ties, censoring, reappearances,
notices after removal, orders)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kernel.deadlines import Outcome, Regime, deadline, judge
from kernel.model import Verdict
from reports.hosters import ReportQuery, hoster_report
from reports.takedown import CaseTimes, Clock, takedown_figures
from tests.builders import add_case, add_hoster

T0 = datetime(2026, 1, 5, tzinfo=UTC)
# The report is made while some deadlines are still ahead (pending).
NOW = T0 + timedelta(days=31)
HOSTERS = [("nl-host", "Polder B.V.", "NL", "NL", True),
           ("de-host", "Rhein GmbH", "DE", "EU", False),
           ("us-host", "Liberty LLC", "US", "non-EU", False)]
VERDICTS = [Verdict.ONLINE] * 5 + [Verdict.HTTP_GONE] * 4 + [
    Verdict.PLACEHOLDER, Verdict.TIMEOUT, Verdict.SERVER_ERROR, Verdict.CHANGED]



def assert_same_estimates(have: Any, want: Any, label: Any, *, tolerance: float) -> None:
    """The median and p90 of two takedown figures, each with its confidence
    interval, equal within ``tolerance`` (hours); None where ``want`` has None."""
    for field in ("median", "p90"):
        for part in ("hours", "ci_lower_hours", "ci_upper_hours"):
            expected = getattr(getattr(want, field), part)
            got = getattr(getattr(have, field), part)
            assert got == pytest.approx(expected, abs=tolerance) if expected is not None \
                else got is None, (label, field, part)

def _history(rng: random.Random) -> tuple[datetime, list[tuple[datetime, Verdict]]]:
    reported = T0 + timedelta(seconds=rng.randrange(0, 30 * 86400))
    when, checks = reported, []
    for _ in range(rng.randrange(0, 9)):
        when += timedelta(seconds=rng.choice([3600, 6 * 3600, 12 * 3600, 86400, 86400 + 17]))
        if checks and rng.random() < 0.05:  # two checks at one instant
            when = checks[-1][0]
        checks.append((min(when, NOW), rng.choice(VERDICTS)))
    return reported, checks


def _fill(session, rng: random.Random, n: int) -> tuple[list[CaseTimes], dict]:
    hosters = {key: add_hoster(session, key, name, country, updated_at=T0)
               for key, name, country, _, _ in HOSTERS}
    expected_cases: list[CaseTimes] = []
    dues: dict[tuple[str, str], list[Outcome]] = {}
    for i in range(n):
        reported, checks = _history(rng)
        hoster = attribution = None
        if checks and rng.random() < 0.9:  # some stay unattributed
            key, _, _, area, dutch = rng.choice(HOSTERS)
            hoster = hosters[key]
            attribution = {"attributed_at": T0, "jurisdiction": area, "dutch": dutch}
        name = hoster.legal_name if hoster else ""
        # Some notices are sent after checks found the material gone.
        sent = [reported + timedelta(seconds=rng.randrange(0, 6 * 86400))
                for _ in range(rng.randrange(1, 3))] if rng.random() < 0.6 else []
        orders, order_issued = [], None
        if rng.random() < 0.3:
            order_issued = reported + timedelta(seconds=rng.randrange(0, 2 * 86400))
            regime = rng.choice([Regime.ATKM_ORDER, Regime.TERRORIST_1H])
            due = deadline(regime, order_issued,
                           order_issued + timedelta(hours=rng.choice([1, 6, 20])))
            orders.append({"issuer": "ATKM", "reference": str(i), "issued_at": order_issued,
                           "deadline_at": order_issued + timedelta(hours=20),
                           "regime": regime.value, "due_at": due})
            if name:
                dues.setdefault((name, regime.value), []).append(
                    judge(regime, order_issued, due, checks, NOW).outcome)
        first_notice = min(sent, default=None)
        if first_notice is not None and name:
            dues.setdefault((name, Regime.NOTICE_24H.value), []).append(
                judge(Regime.NOTICE_24H, first_notice,
                      deadline(Regime.NOTICE_24H, first_notice), checks, NOW).outcome)
        # Ties (two checks at one instant) are for the deadline rule only: the
        # builder derives the state from the first check of each instant.
        case = add_case(session, str(i), reported, checks, url=f"https://h{i}.test/x",
                        hoster=hoster, attribution=attribution,
                        notices=[(when, str(when)) for when in sent], orders=orders)
        expected_cases.append(CaseTimes(
            case_id=case.id, hoster=name, reported_at=reported,
            removed_after=case.removed_after, removed_at=case.removed_at,
            last_checked_at=case.last_checked_at, first_notice_at=first_notice,
            order_issued_at=order_issued, reappearances=case.reappearances))
    return expected_cases, dues


@pytest.mark.parametrize("clock", list(Clock))
def test_sql_figures_equal_the_pure_figures(store, clock):
    rng = random.Random(4)
    with store.transaction() as session:
        cases, dues = _fill(session, rng, 240)
    with store.session() as session:
        built = hoster_report(session, ReportQuery(clock=clock), now=NOW)
    lines = {line.hoster: line for line in built.hosters if line.key}
    assert set(lines) == {name for _, name, *_ in HOSTERS}
    for name, line in lines.items():
        mine = [case for case in cases if case.hoster == name]
        expected = takedown_figures(mine, clock)
        got = line.figures.takedown
        assert (got.cases, got.removed, got.reappearances, got.measured) == (
            expected.cases, expected.removed, expected.reappearances, expected.measured), name
        assert_same_estimates(got, expected, name, tolerance=1e-9)
        for share in ("share_within_24h", "share_within_72h", "share_within_7d"):
            want = getattr(expected, share)
            assert getattr(got, share) == (pytest.approx(want) if want is not None else None)
        for regime in Regime:
            outcomes = dues.get((name, regime.value), [])
            assert line.figures.deadlines[regime.value] == {
                outcome.value: outcomes.count(outcome) for outcome in Outcome}, (name, regime)
    # The random histories reach every outcome, so each branch of the SQL is compared.
    assert {outcome for outcomes in dues.values() for outcome in outcomes} == set(Outcome)
    unattributed = [line for line in built.hosters if line.section.value == "unattributed"]
    assert sum(line.figures.cases for line in unattributed) == sum(
        1 for case in cases if not case.hoster)
    assert built.totals["all"].cases == len(cases)
    assert built.totals["dutch"].cases == sum(case.hoster == "Polder B.V." for case in cases)

"""The hoster report's SQL aggregation gives exactly the figures of the pure
functions (reports.takedown, kernel.deadlines) over the same cases, on SQLite
and on PostgreSQL, for random histories (ties, censoring, reappearances,
notices after removal, orders)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from kernel.deadlines import Outcome, Regime, deadline, judge
from kernel.model import Verdict
from kernel.state import derive_state
from reports.hosters import ReportQuery, hoster_report
from reports.takedown import CaseTimes, Clock, takedown_figures
from store.models import Attribution, Case, Check, Hoster, Notice, Order

T0 = datetime(2026, 1, 5, tzinfo=UTC)
# The report is made while some deadlines are still ahead (pending).
NOW = T0 + timedelta(days=31)
HOSTERS = [("nl-host", "Polder B.V.", "NL", "NL", True),
           ("de-host", "Rhein GmbH", "DE", "EU", False),
           ("us-host", "Liberty LLC", "US", "non-EU", False)]
VERDICTS = [Verdict.ONLINE] * 5 + [Verdict.HTTP_GONE] * 4 + [
    Verdict.PLACEHOLDER, Verdict.TIMEOUT, Verdict.SERVER_ERROR, Verdict.CHANGED]


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
    hosters = {}
    for key, name, country, _, _ in HOSTERS:
        row = Hoster(key=key, legal_name=name, country=country, asns=[64500], dsa_role="hosting",
                     abuse=f"abuse@{key}.test", cdn=False, source="registry", updated_at=T0)
        session.add(row)
        hosters[key] = row
    session.flush()
    expected_cases: list[CaseTimes] = []
    dues: dict[tuple[str, str], list[Outcome]] = {}
    for i in range(n):
        reported, checks = _history(rng)
        # Ties (two checks at one instant) are for the deadline rule only: the
        # state is derived from the first check of each instant.
        state = derive_state(reported, list(dict(reversed(checks)).items())[::-1])
        case = Case(source="t", external_id=str(i), url=f"https://h{i}.test/x",
                    url_normalised=f"https://h{i}.test/x", host=f"h{i}.test", category="csam",
                    reported_at=reported, imported_at=reported, state=state.state.value,
                    last_verdict=state.last_verdict, last_checked_at=state.last_checked_at,
                    last_served_at=state.last_served_at, removed_after=state.removed_after,
                    removed_at=state.removed_at, reappearances=state.reappearances,
                    check_count=state.checks)
        session.add(case)
        session.flush()
        check_rows = []
        for when, verdict in checks:
            row = Check(case_id=case.id, checked_at=when, method="http", verdict=verdict.value,
                        url=case.url, tool_version="t", prev_hash="0" * 64,
                        record_hash=uuid.uuid4().hex * 2)
            session.add(row)
            check_rows.append(row)
        session.flush()
        hoster = None
        if check_rows and rng.random() < 0.9:  # some stay unattributed
            key, name, country, area, dutch = rng.choice(HOSTERS)
            hoster = name
            attribution = Attribution(
                check_id=check_rows[-1].id, case_id=case.id, attributed_at=T0, ip="192.0.2.1",
                hoster_id=hosters[key].id, hoster=name, hoster_country=country,
                jurisdiction=area, dutch=dutch, sources={})
            session.add(attribution)
            session.flush()
            case.attribution_id = attribution.id
        first_notice = order_issued = None
        if rng.random() < 0.6:
            for _ in range(rng.randrange(1, 3)):
                # Some notices are sent after checks found the material gone.
                sent = reported + timedelta(seconds=rng.randrange(0, 6 * 86400))
                session.add(Notice(case_id=case.id, sent_at=sent, recipient=str(sent),
                                   due_at=deadline(Regime.NOTICE_24H, sent)))
                first_notice = sent if first_notice is None else min(first_notice, sent)
        if rng.random() < 0.3:
            issued = reported + timedelta(seconds=rng.randrange(0, 2 * 86400))
            regime = rng.choice([Regime.ATKM_ORDER, Regime.TERRORIST_1H])
            due = deadline(regime, issued, issued + timedelta(hours=rng.choice([1, 6, 20])))
            session.add(Order(case_id=case.id, issuer="ATKM", reference=str(i), issued_at=issued,
                              deadline_at=issued + timedelta(hours=20), regime=regime.value,
                              due_at=due))
            order_issued = issued
            if hoster:
                dues.setdefault((hoster, regime.value), []).append(
                    judge(regime, issued, due, checks, NOW).outcome)
        if first_notice is not None and hoster:
            dues.setdefault((hoster, Regime.NOTICE_24H.value), []).append(
                judge(Regime.NOTICE_24H, first_notice,
                      deadline(Regime.NOTICE_24H, first_notice), checks, NOW).outcome)
        expected_cases.append(CaseTimes(
            case_id=case.id, hoster=hoster or "", reported_at=reported,
            removed_after=state.removed_after, removed_at=state.removed_at,
            last_checked_at=state.last_checked_at, first_notice_at=first_notice,
            order_issued_at=order_issued, reappearances=state.reappearances))
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
        for field in ("median", "p90"):
            for part in ("hours", "ci_lower_hours", "ci_upper_hours"):
                want = getattr(getattr(expected, field), part)
                have = getattr(getattr(got, field), part)
                assert have == pytest.approx(want, abs=1e-9) if want is not None \
                    else have is None, (name, field, part)
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

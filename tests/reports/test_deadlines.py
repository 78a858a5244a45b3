"""Deadline verdicts: met, breached, undecided, on every regime."""

from datetime import UTC, datetime, timedelta

import pytest

from hostwatch.model import Verdict
from reports.deadlines import Outcome, Regime, deadline, judge

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def test_each_regime_has_its_deadline():
    assert deadline(Regime.NOTICE_24H, START) == at(24)
    assert deadline(Regime.TERRORIST_1H, START) == at(1)
    assert deadline(Regime.ATKM_ORDER, START, at(6)) == at(6)  # the order's own
    assert deadline(Regime.ATKM_ORDER, START, at(48)) == at(12)  # at most 12 hours
    assert deadline(Regime.ATKM_ORDER, START) == at(12)


@pytest.mark.parametrize("regime,hours", [
    (Regime.NOTICE_24H, 24), (Regime.ATKM_ORDER, 12), (Regime.TERRORIST_1H, 1)])
def test_all_three_outcomes_on_every_regime(regime, hours):
    due = deadline(regime, START, at(hours))
    before, after = at(hours * 0.5), at(hours + 0.25)
    online, gone = Verdict.ONLINE, Verdict.HTTP_GONE
    # Gone at the last check before the deadline: met.
    met = judge(regime, due, [(at(0), online), (before, gone), (after, gone)])
    assert (met.outcome, met.last_before, met.first_after) == (Outcome.MET, before, after)
    # A check exactly at the deadline counts as in time.
    assert judge(regime, due, [(at(0), online), (due, gone)]).outcome is Outcome.MET
    # Still served after the deadline, never seen gone before it: breached.
    breached = judge(regime, due, [(at(0), online), (before, online), (after, online)])
    assert breached.outcome is Outcome.BREACHED
    assert judge(regime, due, [(after, online)]).outcome is Outcome.BREACHED
    # Served before, gone after: the checks do not bracket the removal.
    undecided = judge(regime, due, [(before, online), (after, gone)])
    assert undecided.outcome is Outcome.UNDECIDED
    assert judge(regime, due, []).outcome is Outcome.UNDECIDED


def test_checks_that_say_nothing_about_the_material_are_skipped():
    due = deadline(Regime.NOTICE_24H, START)
    # A time-out after the deadline is no evidence: still undecided.
    checks = [(at(2), Verdict.ONLINE), (at(25), Verdict.TIMEOUT), (at(30), Verdict.HTTP_GONE)]
    assert judge(Regime.NOTICE_24H, due, checks).outcome is Outcome.UNDECIDED
    # A 503 at the deadline does not hide the removal seen before it.
    checks = [(at(2), Verdict.PLACEHOLDER), (at(23), Verdict.SERVER_ERROR),
              (at(26), Verdict.ONLINE)]
    judgement = judge(Regime.NOTICE_24H, due, checks)
    assert (judgement.outcome, judgement.last_before) == (Outcome.MET, at(2))


def test_served_again_before_the_deadline_undoes_an_earlier_removal():
    due = deadline(Regime.TERRORIST_1H, START)
    checks = [(at(0.2), Verdict.HTTP_GONE), (at(0.8), Verdict.ONLINE), (at(1.1), Verdict.ONLINE)]
    assert judge(Regime.TERRORIST_1H, due, checks).outcome is Outcome.BREACHED
    # Any order of the checks gives the same judgement.
    assert judge(Regime.TERRORIST_1H, due, reversed(checks)).outcome is Outcome.BREACHED

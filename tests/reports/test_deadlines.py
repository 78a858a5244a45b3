"""Deadline verdicts: pending, already_gone, met, breached, undecided, on every regime."""

from datetime import UTC, datetime, timedelta

import pytest

from kernel.deadlines import Outcome, Regime, capped, deadline, judge, order_due
from kernel.model import Verdict

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = START + timedelta(days=30)  # every deadline below has passed by then
ONLINE, GONE = Verdict.ONLINE, Verdict.HTTP_GONE


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def outcome(regime, due, checks, now=LATER, start=START):
    return judge(regime, start, due, checks, now).outcome


def test_each_regime_has_its_deadline():
    assert deadline(Regime.NOTICE_24H, START) == at(24)
    assert deadline(Regime.TERRORIST_1H, START) == at(1)
    assert deadline(Regime.ATKM_ORDER, START, at(6)) == at(6)  # the order's own
    assert deadline(Regime.ATKM_ORDER, START, at(48)) == at(12)  # at most 12 hours
    assert deadline(Regime.ATKM_ORDER, START) == at(12)


def test_an_order_beyond_its_legal_cap_is_capped():
    assert capped(Regime.ATKM_ORDER, START, at(13))
    assert order_due(Regime.ATKM_ORDER, START, at(13)) == at(12)
    assert not capped(Regime.ATKM_ORDER, START, at(12))
    assert not capped(Regime.ATKM_ORDER, START, at(1))
    assert capped(Regime.TERRORIST_1H, START, at(5))
    assert not capped(None, START, at(500))  # no regime: the order's own deadline


@pytest.mark.parametrize("regime,hours", [
    (Regime.NOTICE_24H, 24), (Regime.ATKM_ORDER, 12), (Regime.TERRORIST_1H, 1)])
def test_every_outcome_on_every_regime(regime, hours):
    due = deadline(regime, START, at(hours))
    before, after = at(hours * 0.5), at(hours + 0.25)
    # Gone at the last check before the deadline: met.
    met = judge(regime, START, due, [(at(0), ONLINE), (before, GONE), (after, GONE)], LATER)
    assert (met.outcome, met.last_before, met.first_after) == (Outcome.MET, before, after)
    assert met.at_start == at(0)
    # A check exactly at the deadline counts as in time.
    assert outcome(regime, due, [(at(0), ONLINE), (due, GONE)]) is Outcome.MET
    # Still served after the deadline, never seen gone before it: breached.
    breached = [(at(0), ONLINE), (before, ONLINE), (after, ONLINE)]
    assert outcome(regime, due, breached) is Outcome.BREACHED
    assert outcome(regime, due, [(after, ONLINE)]) is Outcome.BREACHED
    # Served before, gone after: the checks do not bracket the removal.
    assert outcome(regime, due, [(before, ONLINE), (after, GONE)]) is Outcome.UNDECIDED
    assert outcome(regime, due, []) is Outcome.UNDECIDED
    # Gone before the notice / order, and still gone at the deadline.
    gone_first = [(at(-1), GONE), (before, GONE), (after, ONLINE)]
    assert outcome(regime, due, gone_first) is Outcome.ALREADY_GONE


@pytest.mark.parametrize("checks", [
    [], [(at(0.5), GONE)], [(at(-2), GONE)], [(at(0.5), ONLINE)], [(at(23), GONE)]])
def test_a_deadline_still_ahead_is_pending_whatever_the_checks_say(checks):
    due = deadline(Regime.NOTICE_24H, START)
    # The example: gone an hour before a 24-hour deadline is not yet met.
    judged = judge(Regime.NOTICE_24H, START, due, checks, at(23.5))
    assert judged.outcome is Outcome.PENDING
    # At the deadline itself it is judged (a check at the deadline is in time).
    assert judge(Regime.NOTICE_24H, START, due, checks, due).outcome is not Outcome.PENDING


def test_pending_never_flips_a_judgement_already_given():
    due = deadline(Regime.NOTICE_24H, START)
    checks = [(at(1), ONLINE), (at(23), GONE)]
    assert outcome(Regime.NOTICE_24H, due, checks, now=at(23.5)) is Outcome.PENDING
    # Served again before the deadline: what "met" at 23.5 h would have been is a breach.
    checks += [(at(23.9), ONLINE), (at(25), ONLINE)]
    assert outcome(Regime.NOTICE_24H, due, checks, now=at(25)) is Outcome.BREACHED


def test_already_gone_is_not_met_and_a_reappearance_undoes_it():
    due = deadline(Regime.NOTICE_24H, START)
    # Gone before the notice, no check since: already gone, not removed in time.
    judged = judge(Regime.NOTICE_24H, START, due, [(at(-5), ONLINE), (at(-3), GONE)], LATER)
    assert (judged.outcome, judged.at_start, judged.last_before) == (
        Outcome.ALREADY_GONE, at(-3), at(-3))
    # A gone check exactly when the notice was sent counts as gone at the start.
    assert outcome(Regime.NOTICE_24H, due, [(START, GONE)]) is Outcome.ALREADY_GONE
    # Gone before, served again after the notice, gone again by the deadline: met.
    back = [(at(-3), GONE), (at(2), ONLINE), (at(20), GONE)]
    assert outcome(Regime.NOTICE_24H, due, back) is Outcome.MET
    # Gone before, served again after the notice and still after the deadline: breached.
    stays = [(at(-3), GONE), (at(2), ONLINE), (at(30), ONLINE)]
    assert outcome(Regime.NOTICE_24H, due, stays) is Outcome.BREACHED
    # Served at the start, then gone in time: met (removed in time).
    assert outcome(Regime.NOTICE_24H, due, [(at(-3), ONLINE), (at(5), GONE)]) is Outcome.MET
    # No check before the start, gone after it: the removal may have followed the
    # notice, so it is met, not already gone.
    assert outcome(Regime.NOTICE_24H, due, [(at(5), GONE)]) is Outcome.MET


def test_checks_that_say_nothing_about_the_material_are_skipped():
    due = deadline(Regime.NOTICE_24H, START)
    # A time-out after the deadline is no evidence: still undecided.
    checks = [(at(2), ONLINE), (at(25), Verdict.TIMEOUT), (at(30), GONE)]
    assert outcome(Regime.NOTICE_24H, due, checks) is Outcome.UNDECIDED
    # A 503 at the deadline does not hide the removal seen before it.
    checks = [(at(2), Verdict.PLACEHOLDER), (at(23), Verdict.SERVER_ERROR), (at(26), ONLINE)]
    judgement = judge(Regime.NOTICE_24H, START, due, checks, LATER)
    assert (judgement.outcome, judgement.last_before) == (Outcome.MET, at(2))
    # A time-out between a gone check before the notice and the deadline: still already gone.
    checks = [(at(-1), GONE), (at(3), Verdict.TIMEOUT)]
    assert outcome(Regime.NOTICE_24H, due, checks) is Outcome.ALREADY_GONE


def test_served_again_before_the_deadline_undoes_an_earlier_removal():
    due = deadline(Regime.TERRORIST_1H, START)
    checks = [(at(0.2), GONE), (at(0.8), ONLINE), (at(1.1), ONLINE)]
    assert outcome(Regime.TERRORIST_1H, due, checks) is Outcome.BREACHED
    # Any order of the checks gives the same judgement.
    assert outcome(Regime.TERRORIST_1H, due, reversed(checks)) is Outcome.BREACHED


@pytest.mark.parametrize("when", [at(-1), at(10), at(30)])
def test_checks_at_one_instant_that_disagree_count_as_served(when):
    due = deadline(Regime.NOTICE_24H, START)
    tied = [(when, GONE), (when, ONLINE)]
    first = judge(Regime.NOTICE_24H, START, due, tied, LATER)
    assert first == judge(Regime.NOTICE_24H, START, due, list(reversed(tied)), LATER)
    assert first.outcome is (Outcome.BREACHED if when > due else Outcome.UNDECIDED)


def test_a_deadline_before_its_start_is_refused():
    with pytest.raises(ValueError, match="cannot start"):
        judge(Regime.NOTICE_24H, at(2), at(1), [], LATER)

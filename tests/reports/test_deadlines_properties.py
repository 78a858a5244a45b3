"""Deadline outcomes on random histories (Hypothesis): never judged early,
never dependent on the order checks arrive in, and never flipped by a later
check once the deadline has passed (except undecided turning breached)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from kernel.deadlines import Outcome, Regime, judge
from kernel.model import Verdict, VerdictGroup

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


hours = st.integers(min_value=-72, max_value=120)
checks_st = st.lists(st.tuples(hours.map(at), st.sampled_from(Verdict)), max_size=12)


@st.composite
def deadlines(draw: st.DrawFn) -> tuple[Regime, datetime, datetime]:
    start = draw(hours)
    return draw(st.sampled_from(Regime)), at(start), at(start + draw(st.integers(0, 36)))


def decisive(checks, lo=None, hi=None):
    return [(w, v.group) for w, v in checks
            if v.group in (VerdictGroup.SERVED, VerdictGroup.GONE)
            and (lo is None or w > lo) and (hi is None or w <= hi)]


@given(deadlines(), checks_st, hours.map(at))
def test_a_deadline_is_pending_exactly_until_it_passes(deadline, checks, now):
    regime, start, due = deadline
    outcome = judge(regime, start, due, checks, now).outcome
    assert (outcome is Outcome.PENDING) == (now < due)


@given(deadlines(), checks_st, hours.map(at), st.randoms())
def test_the_order_of_the_checks_does_not_matter(deadline, checks, now, rnd):
    regime, start, due = deadline
    shuffled = list(checks)
    rnd.shuffle(shuffled)
    assert judge(regime, start, due, checks, now) == judge(regime, start, due, shuffled, now)


@given(deadlines(), checks_st)
def test_each_outcome_rests_on_the_checks_it_names(deadline, checks):
    regime, start, due = deadline
    j = judge(regime, start, due, checks, due + timedelta(days=30))
    up_to_due = decisive(checks, hi=due)
    last = max((w for w, _ in up_to_due), default=None)
    # At one instant a served check outweighs a gone one.
    last_gone = last is not None and all(g is VerdictGroup.GONE
                                         for w, g in up_to_due if w == last)
    served_after = [w for w, g in decisive(checks, lo=due) if g is VerdictGroup.SERVED]
    if j.outcome in (Outcome.MET, Outcome.ALREADY_GONE):
        assert last_gone and j.last_before == last
    if j.outcome is Outcome.ALREADY_GONE:
        at_start = decisive(checks, hi=start)
        assert at_start and j.at_start == max(w for w, _ in at_start)
        assert not any(g is VerdictGroup.SERVED for _, g in decisive(checks, lo=start, hi=due))
    if j.outcome is Outcome.BREACHED:
        assert not last_gone and served_after
    if j.outcome is Outcome.UNDECIDED:
        assert not last_gone
        first_after = min((w for w, _ in decisive(checks, lo=due)), default=None)
        assert first_after is None or first_after not in served_after


@given(deadlines(), checks_st, st.tuples(st.integers(1, 48), st.sampled_from(Verdict)))
def test_a_later_check_can_only_decide_an_undecided_deadline(deadline, checks, extra):
    regime, start, due = deadline
    newest = max([due, *(w for w, _ in checks)])
    now = newest
    before = judge(regime, start, due, checks, now).outcome
    later = (newest + timedelta(hours=extra[0]), extra[1])
    after = judge(regime, start, due, [*checks, later], later[0]).outcome
    assert after == before or (before, after) == (Outcome.UNDECIDED, Outcome.BREACHED)

"""derive_state() on random histories: the invariants every state must hold.

Hypothesis draws check histories (times in hours around the report, ties
included, every verdict), late reports and debounce settings; each property
is a sentence a regulator could check by hand against the checks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from kernel.model import CaseState, Verdict, VerdictGroup
from kernel.state import Debounce, derive_state

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


# Whole hours from 20 days before the report to 40 days after: ties between
# checks are common, and so are checks older than the report (imported logs).
moments = st.integers(min_value=-480, max_value=960).map(at)
checks_st = st.lists(st.tuples(moments, st.sampled_from(Verdict)), max_size=14)
debounce_st = st.builds(
    Debounce,
    confirmations=st.integers(min_value=1, max_value=4),
    min_hours=st.sampled_from([0.0, 1.0, 12.0, 48.0]),
    transient_days=st.sampled_from([0.5, 2.0, 7.0]),
)


def fetched(checks: list[tuple[datetime, Verdict]]) -> list[tuple[datetime, Verdict]]:
    ordered = sorted(checks, key=lambda c: c[0])
    return [c for c in ordered if c[1].group is not VerdictGroup.NOT_FETCHED]


@given(moments, checks_st, debounce_st)
def test_a_removal_interval_is_never_inverted(reported_at, checks, rules):
    state = derive_state(reported_at, checks, rules)
    assert (state.state is CaseState.REMOVED) == (state.removed_at is not None)
    if state.removed_at is None:
        assert state.removed_after is None
    elif state.removed_after is not None:
        assert state.removed_after <= state.removed_at


@given(moments, checks_st, debounce_st)
def test_the_interval_is_bounded_by_what_was_seen(reported_at, checks, rules):
    state = derive_state(reported_at, checks, rules)
    if state.removed_at is None:
        return
    seen = fetched(checks)
    # The first miss is a check that failed to find the material...
    assert any(when == state.removed_at and v.group is not VerdictGroup.SERVED
               for when, v in seen)
    # ...the last sighting is the report or a check that found it served...
    if state.removed_after is not None:
        assert state.removed_after == reported_at or any(
            when == state.removed_after and v.group is VerdictGroup.SERVED for when, v in seen)
    # ...and nothing found the material served after the last sighting and up
    # to now (the case is still removed).
    after_sighting = [v for when, v in seen
                      if state.removed_after is None or when > state.removed_after]
    assert all(v.group is not VerdictGroup.SERVED for v in after_sighting)


@given(moments, checks_st, debounce_st)
def test_a_removal_needs_the_confirmations_or_the_time(reported_at, checks, rules):
    state = derive_state(reported_at, checks, rules)
    if state.state is not CaseState.REMOVED:
        return
    seen = fetched(checks)
    last_served = max((i for i, (_, v) in enumerate(seen) if v.group is VerdictGroup.SERVED),
                      default=-1)
    since = seen[last_served + 1:]
    gone = [when for when, v in since if v.group is VerdictGroup.GONE]
    by_gone = (len(gone) >= rules.confirmations
               and gone[-1] - gone[0] >= timedelta(hours=rules.min_hours))
    by_time = bool(since) and since[-1][0] - since[0][0] >= timedelta(days=rules.transient_days)
    assert by_gone or by_time


@given(moments, checks_st, debounce_st)
def test_the_last_check_decides_between_served_and_not(reported_at, checks, rules):
    state = derive_state(reported_at, checks, rules)
    seen = fetched(checks)
    assert state.checks == len(checks)
    if not seen:
        assert state.state is CaseState.UNCHECKED
        return
    assert state.state is not CaseState.UNCHECKED
    if seen[-1][1].group is VerdictGroup.SERVED:
        assert state.state in (CaseState.ONLINE, CaseState.REAPPEARED)
        assert state.last_served_at == seen[-1][0]
    else:
        assert state.state in (CaseState.PENDING_REMOVAL, CaseState.REMOVED)
    if state.state is CaseState.REAPPEARED:
        assert state.reappearances >= 1
    served = sum(v.group is VerdictGroup.SERVED for _, v in seen)
    assert 0 <= state.reappearances <= served


@given(moments, st.lists(st.tuples(st.integers(-480, 960), st.sampled_from(Verdict)),
                         max_size=12, unique_by=lambda c: c[0]), debounce_st, st.randoms())
def test_the_order_checks_arrive_in_does_not_matter(reported_at, raw, rules, rnd):
    checks = [(at(h), v) for h, v in raw]
    shuffled = list(checks)
    rnd.shuffle(shuffled)
    assert derive_state(reported_at, checks, rules) == derive_state(reported_at, shuffled, rules)


@given(moments, checks_st, checks_st, debounce_st)
def test_a_suspect_runs_failures_never_count(reported_at, checks, held, rules):
    """Held checks (suspect or unjudged runs): their served verdicts count like
    any other, their failures change nothing about removal."""
    served = [c for c in held if c[1].group is VerdictGroup.SERVED]
    with_held = derive_state(reported_at, checks, rules, held=held)
    counted = derive_state(reported_at, [*checks, *served], rules)
    assert ((with_held.state, with_held.removed_after, with_held.removed_at,
             with_held.reappearances)
            == (counted.state, counted.removed_after, counted.removed_at,
                counted.reappearances))
    assert with_held.checks == len(checks) + len(held)

"""Durations and Kaplan–Meier figures on random histories (Hypothesis).

Every case the state rule can produce must give a duration on every clock
that is non-negative and ordered (lower <= point <= upper), and every group
of such cases must give figures without failing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from kernel.model import Verdict
from kernel.state import Debounce, derive_state
from reports.takedown import CaseTimes, Clock, duration, takedown_figures

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


moments = st.integers(min_value=-480, max_value=960).map(at)


@st.composite
def case_times(draw: st.DrawFn, case_id: int = 1) -> CaseTimes:
    reported_at = draw(moments)
    checks = draw(st.lists(st.tuples(moments, st.sampled_from(Verdict)), max_size=10))
    rules = Debounce(confirmations=draw(st.integers(1, 3)),
                     min_hours=draw(st.sampled_from([0.0, 12.0])),
                     transient_days=draw(st.sampled_from([1.0, 7.0])))
    state = derive_state(reported_at, checks, rules)
    return CaseTimes(
        case_id=case_id, hoster=draw(st.sampled_from(["a", "b"])), reported_at=reported_at,
        removed_after=state.removed_after, removed_at=state.removed_at,
        last_checked_at=state.last_checked_at,
        first_notice_at=draw(st.none() | moments), order_issued_at=draw(st.none() | moments),
        reappearances=state.reappearances)


@given(case_times())
def test_every_clock_gives_an_ordered_non_negative_duration_or_none(case):
    for clock in Clock:
        d = duration(case, clock)
        start = {Clock.REPORT: case.reported_at, Clock.NOTICE: case.first_notice_at,
                 Clock.ORDER: case.order_issued_at}[clock]
        if start is None:
            assert d is None
            continue
        if d is None:  # only a removal seen before the clock started has none
            assert case.removed_at is not None and case.removed_at <= start
            continue
        assert d.removed == case.removed
        assert 0 <= d.lower_hours <= d.point_hours
        if d.removed:
            assert d.upper_hours is not None and d.point_hours <= d.upper_hours
            assert d.uncertainty_hours == d.upper_hours - d.lower_hours >= 0


@given(st.lists(case_times(), max_size=12), st.sampled_from(Clock))
def test_group_figures_never_fail_and_stay_in_range(cases, clock):
    cases = [CaseTimes(**{**c.__dict__, "case_id": i}) for i, c in enumerate(cases)]
    figures = takedown_figures(cases, clock)
    assert figures.cases == len(cases)
    assert figures.removed + figures.still_online == figures.cases
    assert 0 <= figures.measured <= figures.cases
    for share in (figures.share_within_24h, figures.share_within_72h, figures.share_within_7d):
        assert share is None or 0.0 <= share <= 1.0
    for estimate in (figures.median, figures.p90):
        if estimate.hours is None:
            continue
        assert estimate.hours >= 0
        if estimate.ci_lower_hours is not None:
            assert estimate.ci_lower_hours <= estimate.hours
        if estimate.ci_upper_hours is not None:
            assert estimate.hours <= estimate.ci_upper_hours

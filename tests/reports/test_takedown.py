"""reports.takedown: durations on three clocks and Kaplan–Meier figures, checked
against values worked out by hand in the comments.

Kaplan–Meier by hand: at each removal time t_i with n_i cases still at risk
(point estimate >= t_i; a case censored at t_i is still at risk at t_i) and d_i
removals, S(t) = prod over t_i <= t of (1 - d_i / n_i).

Confidence band by hand (exponential Greenwood, z = 1.959964 for 95 %):
    V(t) = sum over t_i <= t of d_i / (n_i (n_i - d_i)),  v = ln S(t)
    lower = exp(-exp(ln(-v) - z sqrt(V) / v)),  upper = exp(-exp(ln(-v) + z sqrt(V) / v))
(where S = 0 lifelines collapses the band to 0). A quantile's interval runs
from the first time the lower band drops to the level to the first time the
upper band does.
"""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from reports.takedown import (
    CaseTimes,
    Clock,
    Duration,
    Estimate,
    duration,
    durations,
    figures_by_hoster,
    figures_from_counts,
    survival_curve,
    takedown_figures,
)

T0 = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)  # every case is reported at T0


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def removed(
    case_id: int,
    after: float,
    at: float,
    *,
    hoster: str = "A",
    first_notice_at: datetime | None = None,
    order_issued_at: datetime | None = None,
    reappearances: int = 0,
) -> CaseTimes:
    """A case whose removal lies in (T0 + after h, T0 + at h]."""
    return CaseTimes(
        case_id=case_id, hoster=hoster, reported_at=T0,
        removed_after=h(after), removed_at=h(at), last_checked_at=h(at + 24),
        first_notice_at=first_notice_at, order_issued_at=order_issued_at,
        reappearances=reappearances,
    )


def online(
    case_id: int,
    last_check: float | None,
    *,
    hoster: str = "A",
    first_notice_at: datetime | None = None,
) -> CaseTimes:
    """A case with no confirmed removal, last checked at T0 + last_check h (None: never)."""
    return CaseTimes(
        case_id=case_id, hoster=hoster, reported_at=T0,
        last_checked_at=None if last_check is None else h(last_check),
        first_notice_at=first_notice_at,
    )


def rounded_curve(curve: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(round(t, 4), round(s, 4)) for t, s in curve]


# ---------------------------------------------------------------- one case


def test_removal_interval_gives_midpoint_and_check_gap():
    # Last served 10 h after the report, first gone at 34 h:
    # lower 10, upper 34, point (10 + 34) / 2 = 22, uncertainty 34 - 10 = 24.
    assert duration(removed(1, 10, 34)) == Duration(10.0, 34.0, 22.0, 24.0, True)


def test_three_clocks_measure_from_report_notice_and_order():
    # Interval (10, 34] after the report; notice at 4 h, order at 8 h:
    #   report: (10, 34]      -> point 22, gap 24
    #   notice: (10-4, 34-4]  = (6, 30] -> point 18, gap 24
    #   order:  (10-8, 34-8]  = (2, 26] -> point 14, gap 24
    case = removed(1, 10, 34, first_notice_at=h(4), order_issued_at=h(8))
    assert durations(case) == {
        Clock.REPORT: Duration(10.0, 34.0, 22.0, 24.0, True),
        Clock.NOTICE: Duration(6.0, 30.0, 18.0, 24.0, True),
        Clock.ORDER: Duration(2.0, 26.0, 14.0, 24.0, True),
    }


def test_clock_without_a_start_gives_no_duration():
    by_clock = durations(removed(1, 10, 34))
    assert by_clock[Clock.NOTICE] is None
    assert by_clock[Clock.ORDER] is None
    assert by_clock[Clock.REPORT] is not None


def test_never_served_case_runs_from_the_report():
    # No check ever saw it served: removed_after = reported_at, first gone at 24 h:
    # (0, 24] -> point 12, gap 24.
    assert duration(removed(1, 0, 24)) == Duration(0.0, 24.0, 12.0, 24.0, True)


def test_clock_starting_inside_the_interval_clamps_the_lower_bound():
    # Interval (10, 34], notice at 20 h: (10-20, 34-20] = (-10, 14] -> (0, 14],
    # point 7, gap 14.
    case = removed(1, 10, 34, first_notice_at=h(20))
    assert duration(case, Clock.NOTICE) == Duration(0.0, 14.0, 7.0, 14.0, True)


@pytest.mark.parametrize("notice_hours", [34, 40])
def test_notice_sent_after_the_removal_was_seen_has_no_duration(notice_hours):
    # Gone at 34 h; a notice at 34 h or later did not bring the removal about.
    case = removed(1, 10, 34, first_notice_at=h(notice_hours), order_issued_at=h(notice_hours))
    assert duration(case, Clock.NOTICE) is None
    assert duration(case, Clock.ORDER) is None
    assert duration(case, Clock.REPORT) == Duration(10.0, 34.0, 22.0, 24.0, True)


def test_still_online_case_is_censored_at_its_last_check():
    # Last check at 48 h, notice at 8 h: followed 48 h from the report, 40 h
    # from the notice; no upper bound.
    case = online(1, 48, first_notice_at=h(8))
    assert duration(case) == Duration(48.0, None, 48.0, None, False)
    assert duration(case, Clock.NOTICE) == Duration(40.0, None, 40.0, None, False)


def test_online_case_not_checked_since_the_clock_started_is_censored_at_zero():
    assert duration(online(1, 48, first_notice_at=h(50)), Clock.NOTICE) == Duration(
        0.0, None, 0.0, None, False
    )
    assert duration(online(2, None)) == Duration(0.0, None, 0.0, None, False)


def test_case_times_refuse_inconsistent_input():
    with pytest.raises(ValueError, match="timezone-aware"):
        CaseTimes(1, "A", datetime(2026, 5, 1))
    with pytest.raises(ValueError, match="needs removed_at"):
        CaseTimes(1, "A", T0, removed_after=h(5))
    with pytest.raises(ValueError, match="must not precede removed_after"):
        CaseTimes(1, "A", T0, removed_after=h(6), removed_at=h(5))


def test_an_unknown_last_sighting_counts_from_the_clock():
    # Removed, last sighting unknown (checks older than a late report): on a
    # clock that starts before the first miss the removal lies in (0, upper].
    case = CaseTimes(1, "A", h(10), removed_at=h(5), first_notice_at=h(1))
    assert case.removed
    assert duration(case, Clock.REPORT) is None  # removal seen before the report
    notice = duration(case, Clock.NOTICE)
    assert notice is not None
    assert (notice.lower_hours, notice.upper_hours, notice.point_hours) == (0.0, 4.0, 2.0)
    # A zero-width interval (served and missed at one moment) is a removal at it.
    same = duration(CaseTimes(2, "A", T0, removed_after=h(5), removed_at=h(5)))
    assert same is not None and (same.lower_hours, same.upper_hours) == (5.0, 5.0)


# ---------------------------------------------------------------- groups


def test_kaplan_meier_with_ties_and_censored_cases():
    # case  removal interval  point   status
    #  1    (0, 12] never served  6   removed
    #  2    (4, 8]                6   removed   (tie with case 1)
    #  3    online, checked 10   10   censored
    #  4    (12, 28]             20   removed   (1 reappearance)
    #  5    online, checked 20   20   censored  (at risk at 20)
    #  6    (20, 40]             30   removed   (2 reappearances)
    #  7    online, checked 80   80   censored
    #
    #  t    n  d   S(t)
    #  6    7  2   5/7                   = 0.714286
    # 10    5  0   (censoring only)      = 0.714286
    # 20    4  1   5/7 * 3/4  = 15/28    = 0.535714
    # 30    2  1   15/28 * 1/2 = 15/56   = 0.267857
    # 80    1  0   (censoring only)      = 0.267857
    #
    # Median: first S <= 0.5 at t = 30. p90: S never <= 0.1 -> None.
    # Band (V; lower, upper):
    #   t=6:  V = 2/(7*5) = 0.057143;           lower 0.2582, upper 0.9198
    #   t=20: V += 1/(4*3) -> 0.140476;         lower 0.1320, upper 0.8250
    #   t=30: V += 1/(2*1) -> 0.640476;         lower 0.0131, upper 0.6700
    #   median CI: lower band <= 0.5 first at 6; upper band never -> None
    #   p90 CI:    lower band <= 0.1 first at 30; upper band never -> None
    # Shares removed: 24 h: 1 - S(24) = 1 - 15/28 = 13/28 = 0.464286
    #                 72 h: 1 - S(72) = 1 - 15/56 = 41/56 = 0.732143
    #                 7 d: 168 h > longest follow-up (80 h), S(80) > 0 -> None
    cases = [
        removed(1, 0, 12),
        removed(2, 4, 8),
        online(3, 10),
        removed(4, 12, 28, reappearances=1),
        online(5, 20),
        removed(6, 20, 40, reappearances=2),
        online(7, 80),
    ]
    figures = takedown_figures(cases)

    assert (figures.cases, figures.removed, figures.still_online) == (7, 4, 3)
    assert (figures.measured, figures.reappearances) == (7, 3)
    assert rounded_curve(figures.curve) == [
        (0.0, 1.0), (6.0, 0.7143), (10.0, 0.7143), (20.0, 0.5357), (30.0, 0.2679), (80.0, 0.2679),
    ]
    assert figures.confidence_level == 0.95
    assert figures.median == Estimate(30.0, 6.0, None)
    assert figures.p90 == Estimate(None, 30.0, None)
    assert figures.share_within_24h == pytest.approx(0.4643, abs=5e-5)  # to 4 decimals
    assert figures.share_within_72h == pytest.approx(0.7321, abs=5e-5)  # to 4 decimals
    assert figures.share_within_7d is None


def test_ties_at_the_same_removal_time():
    # Points 10, 10, 20, 20 (all removed):
    #   t=10: n=4, d=2 -> S = 1 - 2/4 = 0.5  -> median 10
    #   t=20: n=2, d=2 -> S = 0              -> p90 20
    # All removed by 20 h, so every share is 1.
    cases = [removed(1, 8, 12), removed(2, 6, 14), removed(3, 18, 22), removed(4, 16, 24)]
    figures = takedown_figures(cases)
    assert rounded_curve(figures.curve) == [(0.0, 1.0), (10.0, 0.5), (20.0, 0.0)]
    assert figures.median.hours == 10.0
    assert figures.p90.hours == 20.0
    assert (figures.share_within_24h, figures.share_within_72h, figures.share_within_7d) == (
        1.0, 1.0, 1.0,
    )


def test_quantiles_and_their_confidence_intervals():
    # Ten removals at 1, 2, ..., 10 h (intervals (k - 0.5, k + 0.5]), no censoring:
    # S(k) = 1 - k/10; n_k = 11 - k, d_k = 1, V(k) = sum 1/(n (n-1)).
    #   k  S    V         lower   upper
    #   1  0.9  0.011111  0.4730  0.9853
    #   5  0.5  0.1       0.1836  0.7532
    #   6  0.4  0.15      0.1227  0.6702
    #   7  0.3  0.233333  0.0711  0.5779
    #   8  0.2  0.4       0.0309  0.4747
    #   9  0.1  0.9       0.0057  0.3581
    #  10  0    -         undefined (lifelines writes 0 and 0)
    # median 5: lower band <= 0.5 first at 1, upper band first at 8 -> (1, 8)
    # p90 9:    lower band <= 0.1 first at 7; the upper band is still 0.3581
    #           at 9 and undefined at 10, where S reaches 0 -> (7, open)
    cases = [removed(k, k - 0.5, k + 0.5) for k in range(1, 11)]
    figures = takedown_figures(cases)
    assert figures.median == Estimate(5.0, 1.0, 8.0)
    assert figures.p90 == Estimate(9.0, 7.0, None)


def test_median_at_an_exact_half_is_not_pushed_a_step_later():
    # Six removals at 1..6 h: S(3) = 5/6 * 4/5 * 3/4 = 1/2 exactly, so the
    # median is 3 h (lifelines' own product gives 0.5000000000000001 and 4 h).
    # Band: lower <= 0.5 first at 1 (0.2731); upper 0.5168 at 5, undefined at
    # 6 (S = 0) -> (1, open).
    # p90: S(5) = 1/6 > 0.1, S(6) = 0 -> 6.
    cases = [removed(k, k - 0.5, k + 0.5) for k in range(1, 7)]
    figures = takedown_figures(cases)
    assert figures.median == Estimate(3.0, 1.0, None)
    assert figures.p90.hours == 6.0


def test_a_single_removal_has_open_bounds_not_a_zero_width_interval():
    # One case removed in (4, 6] -> 5 h: S drops from 1 to 0 at 5, and the
    # Greenwood band is undefined there (lifelines writes 0 for both bounds,
    # which made the interval [5, 5]). Nothing bounds the median: both open.
    figures = takedown_figures([removed(1, 4, 6)])
    assert figures.median == Estimate(5.0, None, None)
    assert figures.p90 == Estimate(5.0, None, None)
    # The same through the counts the SQL report hands over (three cases, one time).
    counted = figures_from_counts(Clock.REPORT, cases=3, removed=3, reappearances=0,
                                  durations=[(5.0, True, 3)])
    assert counted.median == Estimate(5.0, None, None)


def test_bounds_that_only_the_curve_reaching_zero_would_close_stay_open():
    # Removals at 2, 5 and 10 h, none censored:
    #   t  n d  S      V                 lower   upper
    #   2  3 1  2/3    1/(3*2) = 0.1667  0.0541  0.9452
    #   5  2 1  1/3    + 1/(2*1) = 0.6667  0.0090  0.7741
    #  10  1 1  0      undefined (lifelines: 0, 0)
    # median 5: lower band <= 0.5 first at 2; upper band never before S = 0 -> open.
    # p90 10:   lower band <= 0.1 first at 2; upper band open.
    figures = takedown_figures([removed(1, 1, 3), removed(2, 4, 6), removed(3, 9, 11)])
    assert figures.median == Estimate(5.0, 2.0, None)
    assert figures.p90 == Estimate(10.0, 2.0, None)
    # A bound the data do give is kept, however narrow: 99 removals at 5 h and
    # one case followed to 100 h put both bands below 0.1 at 5 h (S = 0.01 > 0).
    counted = figures_from_counts(Clock.REPORT, cases=100, removed=99, reappearances=0,
                                  durations=[(5.0, True, 99), (100.0, False, 1)])
    assert counted.median == Estimate(5.0, 5.0, 5.0)


def test_median_not_reached():
    # One removal at 5 h (interval (4, 6]), two cases online, checked at 30 and 40 h:
    #   t=5: n=3, d=1 -> S = 2/3 = 0.666667, never lower -> median and p90 None.
    #   V = 1/(3*2) = 0.166667: lower band 0.0541, upper 0.9452 at t = 5, so
    #   both intervals start at 5 and stay open.
    # Shares: 24 h: 1 - 2/3 = 0.3333; 72 h and 7 d lie beyond the 40 h of
    # follow-up with S > 0 -> None.
    figures = takedown_figures([removed(1, 4, 6), online(2, 30), online(3, 40)])
    assert figures.median == Estimate(None, 5.0, None)
    assert figures.p90 == Estimate(None, 5.0, None)
    assert figures.share_within_24h == pytest.approx(0.3333, abs=5e-5)  # to 4 decimals
    assert figures.share_within_72h is None
    assert figures.share_within_7d is None


def test_removal_at_exactly_24_hours_counts_as_within_24_hours():
    # Interval (20, 28] -> point 24; one case online, checked at 48 h.
    # t=24: n=2, d=1 -> S(24) = 1/2 -> share within 24 h = 0.5.
    figures = takedown_figures([removed(1, 20, 28), online(2, 48)])
    assert figures.share_within_24h == 0.5


def test_censored_cases_count_as_not_removed_while_followed():
    # Nothing removed; followed 48 and 72 h: S = 1 up to 72 h ->
    # 0 % within 24 h and 72 h; 7 d is beyond the follow-up -> None.
    figures = takedown_figures([online(1, 48), online(2, 72)])
    assert (figures.share_within_24h, figures.share_within_72h) == (0.0, 0.0)
    assert figures.share_within_7d is None
    assert figures.median == Estimate(None, None, None)
    assert (figures.removed, figures.still_online) == (0, 2)


def test_notice_clock_leaves_out_removals_seen_before_the_notice():
    # From the notice:
    #   1: notice 2 h, removed (10, 30]   -> (8, 28], point 18, removed
    #   2: notice 50 h, removed (10, 30]  -> gone before the notice: left out
    #   3: notice 4 h, online, checked 100 h -> censored at 96
    # KM over cases 1 and 3: t=18: n=2, d=1 -> S = 1/2 -> median 18.
    cases = [
        removed(1, 10, 30, first_notice_at=h(2)),
        removed(2, 10, 30, first_notice_at=h(50)),
        online(3, 100, first_notice_at=h(4)),
    ]
    figures = takedown_figures(cases, Clock.NOTICE)
    assert figures.clock is Clock.NOTICE
    assert (figures.cases, figures.removed, figures.still_online, figures.measured) == (3, 2, 1, 2)
    assert figures.median.hours == 18.0
    assert rounded_curve(figures.curve) == [(0.0, 1.0), (18.0, 0.5), (96.0, 0.5)]


def test_empty_group():
    figures = takedown_figures([])
    assert (figures.cases, figures.removed, figures.still_online, figures.measured) == (0, 0, 0, 0)
    assert figures.reappearances == 0
    assert figures.median == figures.p90 == Estimate(None, None, None)
    assert (figures.share_within_24h, figures.share_within_72h, figures.share_within_7d) == (
        None, None, None,
    )
    assert figures.curve == ()


def test_group_without_any_order_is_counted_but_not_measured():
    figures = takedown_figures([removed(1, 10, 34), online(2, 48)], Clock.ORDER)
    assert (figures.cases, figures.removed, figures.still_online, figures.measured) == (2, 1, 1, 0)
    assert figures.median == Estimate(None, None, None)
    assert figures.share_within_24h is None


def test_figures_per_hoster():
    # Hoster A: points 6 and 18 (removed) -> S(6) = 1/2 -> median 6.
    # Hoster B: one case online at 30 h -> nothing removed, median None.
    cases = [
        removed(1, 4, 8, hoster="A"),
        removed(2, 12, 24, hoster="A", reappearances=1),
        online(3, 30, hoster="B"),
    ]
    by_hoster = figures_by_hoster(cases)
    assert set(by_hoster) == {"A", "B"}
    assert (by_hoster["A"].cases, by_hoster["A"].removed, by_hoster["A"].reappearances) == (2, 2, 1)
    assert by_hoster["A"].median.hours == 6.0
    assert (by_hoster["B"].cases, by_hoster["B"].still_online) == (1, 1)
    assert by_hoster["B"].median.hours is None


def test_survival_curve_of_durations():
    # Points 5 (removed), 10 (censored), 15 (removed):
    #   t=5: n=3, d=1 -> 2/3; t=15: n=1, d=1 -> 0.
    steps = survival_curve([
        Duration(4.0, 6.0, 5.0, 2.0, True),
        Duration(10.0, None, 10.0, None, False),
        Duration(14.0, 16.0, 15.0, 2.0, True),
    ])
    assert rounded_curve(steps) == [(0.0, 1.0), (5.0, 0.6667), (10.0, 0.6667), (15.0, 0.0)]
    assert survival_curve([]) == []

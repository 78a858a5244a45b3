"""Time to takedown: Kaplan–Meier figures per group (pure); the per-case
durations they are built on are kernel/durations.py (re-exported here).

No database access: a case comes in as plain times (`CaseTimes`), as the store's
``derive_state()`` gives them, so an SQL layer can feed this module directly.

**Durations** of one case on each clock (the removal interval, its midpoint
and width, censoring, a clock that starts late) are kernel/durations.py's
rules; this module turns many of them into group figures.

**Group figures.** Kaplan–Meier (lifelines ``KaplanMeierFitter``) over the point
estimates, a confirmed removal being the event. The median and 90th percentile
are the first times the survival curve drops to 0.5 and 0.1 (S(t) <= q), None
when it never does. Their confidence intervals invert lifelines' pointwise
band for S(t) (exponential Greenwood, i.e. the log(-log S) transform; 95 % by
default): the bounds are the first times the lower and the upper band drop to q,
None when that band never does (the bound is open: the data do not give it).
The band is undefined where the curve has reached 0 (after the last case still
at risk was removed), so a band that drops to q only there leaves its bound
open too, rather than closing it at the last removal: one removed case gives a
median with two open bounds, never the zero-width interval [t, t]. The share removed within
24 h, 72 h and 7 days is 1 - S(t) read from the same curve, so censored cases
count for as long as they were followed, not as "never removed"; it is None
when t lies beyond the longest follow-up and the curve has not reached 0 there
(the estimate is undefined beyond the data). Midpoints stand in for the
unknown removal moments: with nightly checks, figures are accurate to about
half the check gap, which each `Duration` states.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from lifelines import KaplanMeierFitter

from kernel.durations import (
    CaseTimes,
    Clock,
    Duration,
    censored_duration,
    clock_start,
    duration,
    durations,
    hours_between,
    removal_duration,
)

if TYPE_CHECKING:
    import pandas as pd  # lifelines' own dependency; only its Series type is named here

__all__ = [
    "CaseTimes",
    "Clock",
    "Duration",
    "Estimate",
    "TakedownFigures",
    "censored_duration",
    "clock_start",
    "duration",
    "durations",
    "figures_by",
    "figures_by_hoster",
    "figures_from_arrays",
    "figures_from_counts",
    "hours_between",
    "removal_duration",
    "survival_curve",
    "takedown_figures",
]

K = TypeVar("K", bound=Hashable)

SHARE_HORIZONS_HOURS = (24.0, 72.0, 168.0)  # the 24 h norm, three days, a week
DEFAULT_CONFIDENCE = 0.95
# lifelines builds S(t) as exp(sum log(1 - d/n)), so an exact 1/2 can come out
# as 0.5000000000000001 and push the median a whole step later; survival values
# this close to the level count as reaching it.
_LEVEL_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Estimate:
    """A time in hours with its confidence interval; None = not reached / open."""

    hours: float | None
    ci_lower_hours: float | None
    ci_upper_hours: float | None


@dataclass(frozen=True)
class TakedownFigures:
    """Time-to-removal figures of one group of cases on one clock.

    ``cases``, ``removed``, ``still_online`` and ``reappearances`` count every
    case given, whatever the clock; ``measured`` counts those with a duration on
    this clock (a start, and not removed before it), which alone enter the
    Kaplan–Meier estimate. ``curve`` is the survival curve as (hours, S) steps,
    starting at (0, 1); empty when nothing was measured.
    """

    clock: Clock
    cases: int
    removed: int
    still_online: int
    reappearances: int
    measured: int
    confidence_level: float
    median: Estimate
    p90: Estimate
    share_within_24h: float | None
    share_within_72h: float | None
    share_within_7d: float | None
    curve: tuple[tuple[float, float], ...]


# ---------------------------------------------------------------- per case


# ---------------------------------------------------------------- per group


def survival_curve(measured: Sequence[Duration]) -> list[tuple[float, float]]:
    """Kaplan–Meier survival steps (hours, S) of ``measured``, from (0, 1)."""
    fitter = _fit(measured, DEFAULT_CONFIDENCE)
    return _curve(fitter) if fitter is not None else []


def takedown_figures(
    cases: Iterable[CaseTimes],
    clock: Clock = Clock.REPORT,
    confidence: float = DEFAULT_CONFIDENCE,
) -> TakedownFigures:
    """Counts and Kaplan–Meier figures of ``cases`` (any group) on ``clock``."""
    cases = list(cases)
    measured = [d for d in (duration(case, clock) for case in cases) if d is not None]
    return figures_from_counts(
        clock, cases=len(cases), removed=sum(case.removed for case in cases),
        reappearances=sum(case.reappearances for case in cases),
        durations=[(d.point_hours, d.removed, 1) for d in measured], confidence=confidence)


def figures_from_counts(
    clock: Clock,
    *,
    cases: int,
    removed: int,
    reappearances: int,
    durations: Sequence[tuple[float, bool, int]],
    confidence: float = DEFAULT_CONFIDENCE,
) -> TakedownFigures:
    """`takedown_figures()` from counts already aggregated (e.g. by SQL).

    ``durations``: (point hours, removed, number of cases) per distinct
    duration; the Kaplan–Meier fit weighs each by its number of cases, which
    gives the same curve and bands as one row per case.
    """
    if not durations:
        hours = np.zeros(0, dtype=float)
        observed = np.zeros(0, dtype=bool)
        counts = np.zeros(0, dtype=np.int64)
    else:
        columns = list(zip(*durations, strict=True))
        hours = np.asarray(columns[0], dtype=float)
        observed = np.asarray(columns[1], dtype=bool)
        counts = np.asarray(columns[2], dtype=np.int64)
    return figures_from_arrays(clock, cases=cases, removed=removed,
                               reappearances=reappearances, hours=hours, observed=observed,
                               counts=counts, confidence=confidence)


def figures_from_arrays(
    clock: Clock,
    *,
    cases: int,
    removed: int,
    reappearances: int,
    hours: np.ndarray,
    observed: np.ndarray,
    counts: np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
) -> TakedownFigures:
    """`figures_from_counts()` with its durations as three arrays of one length
    (point hours, removed, number of cases): no Python object per row, for
    groups of a million cases."""
    measured = int(counts.sum())
    fitter = _fit_arrays(hours, observed, counts, confidence)
    if fitter is None:
        unknown = Estimate(None, None, None)
        median = p90 = unknown
        shares: list[float | None] = [None] * len(SHARE_HORIZONS_HOURS)
        curve: list[tuple[float, float]] = []
    else:
        median, p90 = _quantile(fitter, 0.5), _quantile(fitter, 0.1)
        longest = float(hours.max())
        shares = [_share_removed_by(fitter, hours, longest) for hours in SHARE_HORIZONS_HOURS]
        curve = _curve(fitter)
    return TakedownFigures(
        clock=clock,
        cases=cases,
        removed=removed,
        still_online=cases - removed,
        reappearances=reappearances,
        measured=measured,
        confidence_level=confidence,
        median=median,
        p90=p90,
        share_within_24h=shares[0],
        share_within_72h=shares[1],
        share_within_7d=shares[2],
        curve=tuple(curve),
    )


def figures_by(
    cases: Iterable[CaseTimes],
    key: Callable[[CaseTimes], K],
    clock: Clock = Clock.REPORT,
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[K, TakedownFigures]:
    """``takedown_figures()`` per group of ``cases``, grouped by ``key(case)``."""
    groups: dict[K, list[CaseTimes]] = {}
    for case in cases:
        groups.setdefault(key(case), []).append(case)
    return {name: takedown_figures(group, clock, confidence) for name, group in groups.items()}


def figures_by_hoster(
    cases: Iterable[CaseTimes],
    clock: Clock = Clock.REPORT,
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[str, TakedownFigures]:
    """``takedown_figures()`` per hoster of record."""
    return figures_by(cases, attrgetter("hoster"), clock, confidence)


# ---------------------------------------------------------------- lifelines


def _fit(measured: Sequence[Duration], confidence: float) -> KaplanMeierFitter | None:
    return _fit_counts([(d.point_hours, d.removed, 1) for d in measured], confidence)


def _fit_counts(durations: Sequence[tuple[float, bool, int]],
                confidence: float) -> KaplanMeierFitter | None:
    rows = [row for row in durations if row[2] > 0]
    if not rows:
        return None
    hours, removed, counts = zip(*rows, strict=True)
    return _fit_arrays(np.asarray(hours, dtype=float), np.asarray(removed, dtype=bool),
                       np.asarray(counts, dtype=np.int64), confidence)


def _fit_arrays(hours: np.ndarray, observed: np.ndarray, counts: np.ndarray,
                confidence: float) -> KaplanMeierFitter | None:
    # Arrays, not lists: lifelines turns whatever it gets into arrays, and a
    # report over a million cases hands it a million rows.
    keep = counts > 0
    if not keep.any():
        return None
    if not keep.all():
        hours, observed, counts = hours[keep], observed[keep], counts[keep]
    fitter = KaplanMeierFitter(alpha=1.0 - confidence)
    fitter.fit(np.asarray(hours, dtype=float), event_observed=np.asarray(observed, dtype=bool),
               weights=np.asarray(counts, dtype=float))
    return fitter


def _first_time_at_or_below(curve: pd.Series, q: float) -> float | None:
    """First time (index) at which a decreasing curve is <= q; None if never."""
    reached = curve.index[curve.to_numpy() <= q + _LEVEL_TOLERANCE]
    return float(reached[0]) if len(reached) else None


def _quantile(fitter: KaplanMeierFitter, q: float) -> Estimate:
    """First time S(t) <= q, with the first times the lower/upper band do.

    The band is defined only where S(t) > 0: once the curve reaches 0 the
    exponential Greenwood band is log(-log 0) and lifelines writes 0 for both
    bounds, a value no data gave. A band that reaches ``q`` only there leaves
    its bound open (None), instead of a bound at the last removal (a single
    removed case would get the zero-width interval [t, t]).
    """
    survival = fitter.survival_function_.iloc[:, 0]
    band = fitter.confidence_interval_survival_function_
    defined = (survival.to_numpy() > 0.0) & np.isfinite(band.to_numpy()).all(axis=1)
    return Estimate(
        hours=_first_time_at_or_below(survival, q),
        ci_lower_hours=_first_time_at_or_below(band.iloc[:, 0][defined], q),
        ci_upper_hours=_first_time_at_or_below(band.iloc[:, 1][defined], q),
    )


def _share_removed_by(fitter: KaplanMeierFitter, hours: float, longest: float) -> float | None:
    """1 - S(hours); None past the longest follow-up unless S already reached 0."""
    survival = _survival_at(fitter, hours)
    if hours > longest and survival > 0.0:
        return None
    return 1.0 - survival


def _survival_at(fitter: KaplanMeierFitter, hours: float) -> float:
    """S(hours) of the step curve: its value at the last step at or before
    ``hours`` (what lifelines' survival_function_at_times reads, without a
    pandas lookup per call)."""
    curve = fitter.survival_function_.iloc[:, 0]
    step = int(np.searchsorted(curve.index.to_numpy(), hours, side="right")) - 1
    return 1.0 if step < 0 else float(curve.iloc[step])


def _curve(fitter: KaplanMeierFitter) -> list[tuple[float, float]]:
    column = fitter.survival_function_.iloc[:, 0]
    return list(zip(column.index.to_numpy(dtype=float).tolist(),
                    column.to_numpy(dtype=float).tolist(), strict=True))

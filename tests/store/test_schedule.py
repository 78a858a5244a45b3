"""store.schedule: which deadline checks are pending when, by hand-made times;
then the same rules read from a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kernel.model import CaseState, RunHealth
from kernel.schedule import CheckKind, ScheduleRule, is_open, next_check, pending_check
from store.models import Case, Check, CrawlRun, Order
from store.schedule import count_deadline_due, iter_deadline_due, pending_case_ids

DEADLINE = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RULE = ScheduleRule(margin=timedelta(minutes=5), window=timedelta(days=2))


def m(minutes: float) -> datetime:
    """``minutes`` after the deadline."""
    return DEADLINE + timedelta(minutes=minutes)


def kind(now: datetime, last_checked: datetime | None, rule: ScheduleRule = RULE) -> str | None:
    check = pending_check(DEADLINE, last_checked, now, rule)
    return check.kind.value if check else None


def test_nothing_is_pending_before_the_at_check_is_due():
    assert kind(m(-6), None) is None
    assert kind(m(-5.01), m(-60)) is None


def test_the_at_check_is_due_margin_before_the_deadline():
    assert kind(m(-5), None) == "at"
    check = pending_check(DEADLINE, m(-600), m(-4), RULE)
    assert check is not None
    assert (check.kind, check.due, check.deadline) == (CheckKind.AT, m(-5), DEADLINE)


def test_a_check_inside_the_margin_does_the_at_check():
    assert kind(m(-2), m(-5)) is None  # checked exactly when it came due
    assert kind(m(-1), m(-3)) is None
    assert kind(m(-1), m(-5.5)) == "at"  # checked just before the window: not enough


def test_the_after_check_is_due_margin_after_the_deadline():
    assert kind(m(4.9), m(-3)) is None
    assert kind(m(5), m(-3)) == "after"
    assert kind(m(30), m(-3)) == "after"
    assert kind(m(30), m(5)) is None
    assert kind(m(30), m(4.9)) == "after"


def test_a_missed_at_check_and_the_after_check_are_done_by_one_check():
    assert kind(m(10), None) == "after"  # the at check was missed: check once, now
    assert kind(m(10), m(10)) is None


def test_a_late_at_check_after_the_deadline_still_leaves_the_after_check():
    assert kind(m(1), None) == "at"
    assert kind(m(6), m(1)) == "after"


def test_the_margin_moves_both_checks():
    wide = ScheduleRule(margin=timedelta(minutes=30))
    assert kind(m(-20), None, wide) == "at"
    assert kind(m(-20), None) is None
    assert kind(m(10), m(-1), wide) is None
    assert kind(m(10), m(-1)) == "after"


def test_deadlines_older_than_the_window_are_not_chased():
    window_end = m(5) + timedelta(days=2)
    assert is_open(DEADLINE, window_end, RULE)
    assert kind(window_end, None) == "after"
    assert not is_open(DEADLINE, window_end + timedelta(seconds=1), RULE)
    assert kind(window_end + timedelta(seconds=1), None) is None
    assert next_check(DEADLINE, None, window_end + timedelta(seconds=1), RULE) is None


def test_next_check_is_the_first_one_not_done():
    early = next_check(DEADLINE, None, m(-60), RULE)
    assert early is not None and (early.kind, early.due) == (CheckKind.AT, m(-5))
    after = next_check(DEADLINE, m(-2), m(-1), RULE)
    assert after is not None and (after.kind, after.due) == (CheckKind.AFTER, m(5))
    assert next_check(DEADLINE, m(6), m(7), RULE) is None


def test_the_margin_must_be_positive():
    with pytest.raises(ValueError, match="margin"):
        ScheduleRule(margin=timedelta(0))


# -- from the store ----------------------------------------------------------------

def _case(session, name: str, state: str = "unchecked") -> int:
    case = Case(source="t", external_id=name, url=f"http://{name}.test/a.jpg",
                url_normalised=f"http://{name}.test/a.jpg", host=f"{name}.test",
                category="csam", reported_at=m(-600), imported_at=m(-600), state=state,
                reappearances=0, check_count=0)
    session.add(case)
    session.flush()
    return case.id


def _order(session, case_id: int, due: datetime, regime: str | None = "atkm_order") -> None:
    session.add(Order(case_id=case_id, issuer="ATKM", reference=str(due), issued_at=m(-60),
                      deadline_at=due, regime=regime, due_at=due))


def _check(session, case_id: int, when: datetime, verdict: str = "online",
           run_id: int | None = None) -> None:
    session.add(Check(case_id=case_id, checked_at=when, method="http", verdict=verdict,
                      url="http://x.test/", tool_version="t", prev_hash="0" * 64,
                      record_hash=f"{case_id}-{when.isoformat()}", run_id=run_id))


def test_pending_cases_from_the_store(store):
    with store.transaction() as session:
        ids = {
            "unchecked": _case(session, "unchecked"),  # no order: never a deadline case
            "soon": _case(session, "soon"),  # deadline in 10 min
            "now": _case(session, "now"),  # deadline in 3 min, not checked since
            "checked": _case(session, "checked"),  # deadline in 3 min, checked 1 min ago
            "passed": _case(session, "passed"),  # deadline 6 min ago, checked just before it
            "old": _case(session, "old"),  # deadline three days ago
            "removed": _case(session, "removed", CaseState.REMOVED.value),  # deadline in 3 min
            "noregime": _case(session, "noregime"),  # an order of unknown regime, in 3 min
            "two": _case(session, "two"),  # two orders: one done, one pending
        }
        _order(session, ids["soon"], m(10))
        _order(session, ids["now"], m(3))
        _check(session, ids["now"], m(-10))
        _order(session, ids["checked"], m(3))
        _check(session, ids["checked"], m(-1))
        _order(session, ids["passed"], m(-6))
        _check(session, ids["passed"], m(-7))
        _order(session, ids["old"], m(-3 * 24 * 60))
        _order(session, ids["removed"], m(3))
        _check(session, ids["removed"], m(-60), "http_gone")
        _order(session, ids["noregime"], m(3), regime=None)
        _order(session, ids["two"], m(30))
        _order(session, ids["two"], m(-6))
        _check(session, ids["two"], m(-4))
    now = m(0)
    with store.session() as session:
        pending = pending_case_ids(session, now, RULE)
        assert count_deadline_due(session, now, RULE) == len(pending)
    names = {v: k for k, v in ids.items()}
    assert sorted(names[i] for i in pending) == ["noregime", "now", "passed", "removed", "two"]

    fed = [case for batch in iter_deadline_due(store, now, RULE, batch=2) for case in batch]
    assert [case.id for case in fed] == pending
    assert fed[0].url == f"http://{names[fed[0].id]}.test/a.jpg"
    limited = [c.id for b in iter_deadline_due(store, now, RULE, batch=2, limit=3) for c in b]
    assert limited == pending[:3]

    # A check now does every pending deadline check of its case.
    with store.transaction() as session:
        for case_id in pending:
            _check(session, case_id, now)
    with store.session() as session:
        assert pending_case_ids(session, now + timedelta(seconds=1), RULE) == []
        # ...until the next ones come due.
        later = pending_case_ids(session, m(9), RULE)
    assert sorted(names[i] for i in later) == ["checked", "noregime", "now", "removed", "soon"]


def test_a_check_that_does_not_count_leaves_the_deadline_check_pending(store):
    """A blocked check and a failing check of a suspect run (#10 point 8) never
    reached the material: the deadline check stays pending; a served check of
    a suspect run, an imported failing check and a healthy run's check do it."""
    with store.transaction() as session:
        suspect = CrawlRun(started_at=m(-30), status="finished", tool_version="t",
                           health=RunHealth.SUSPECT.value, health_reason="test")
        healthy = CrawlRun(started_at=m(-30), status="finished", tool_version="t",
                           health=RunHealth.HEALTHY.value)
        session.add_all([suspect, healthy])
        session.flush()
        ids = {name: _case(session, name) for name in (
            "blocked", "suspect_gone", "suspect_served", "imported_gone", "healthy_gone")}
        for case_id in ids.values():
            _order(session, case_id, m(3))
        _check(session, ids["blocked"], m(-1), "blocked_address")
        _check(session, ids["suspect_gone"], m(-1), "nxdomain", run_id=suspect.id)
        _check(session, ids["suspect_served"], m(-1), "online", run_id=suspect.id)
        _check(session, ids["imported_gone"], m(-1), "http_gone")
        _check(session, ids["healthy_gone"], m(-1), "http_gone", run_id=healthy.id)
    with store.session() as session:
        pending = pending_case_ids(session, m(0), RULE)
    names = {v: k for k, v in ids.items()}
    assert sorted(names[i] for i in pending) == ["blocked", "suspect_gone"]

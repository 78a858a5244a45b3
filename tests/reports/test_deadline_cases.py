"""reports.deadline_cases: which deadlines a store holds, and how each is judged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kernel.deadlines import Outcome, Regime
from kernel.schedule import CheckKind, ScheduleRule
from reports.deadline_cases import case_deadlines
from store.models import Case, Check, Notice, Order

T0 = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
RULE = ScheduleRule(margin=timedelta(minutes=5))


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _case(session, name: str) -> int:
    case = Case(source="t", external_id=name, url=f"http://{name}.test/a.jpg",
                url_normalised=f"http://{name}.test/a.jpg", host=f"{name}.test",
                category="csam", reported_at=T0, imported_at=T0, state="online",
                reappearances=0, check_count=0)
    session.add(case)
    session.flush()
    return case.id


def _check(session, case_id: int, when: datetime, verdict: str) -> None:
    session.add(Check(case_id=case_id, checked_at=when, method="http", verdict=verdict,
                      url="http://x.test/", tool_version="t", prev_hash="0" * 64,
                      record_hash=f"{case_id}-{when.isoformat()}-{verdict}"))


def test_first_notice_and_regime_orders_are_judged(store):
    with store.transaction() as session:
        two = _case(session, "two-notices")
        # The first notice sets the 24-hour clock; a reminder does not restart it.
        session.add(Notice(case_id=two, sent_at=h(30), recipient="again", due_at=h(54)))
        session.add(Notice(case_id=two, sent_at=h(0), recipient="first", due_at=h(24)))
        _check(session, two, h(20), "online")
        _check(session, two, h(22), "server_error")  # says nothing: skipped
        _check(session, two, h(26), "http_gone")
        ordered = _case(session, "ordered")
        session.add(Order(case_id=ordered, issuer="ATKM", reference="a", issued_at=h(0),
                          deadline_at=h(1), regime="atkm_order", due_at=h(1)))
        session.add(Order(case_id=ordered, issuer="Politie", reference="p", issued_at=h(0),
                          deadline_at=h(2), regime=None, due_at=h(2)))
        _check(session, ordered, h(1) - timedelta(minutes=2), "http_gone")  # the "at" check
        _case(session, "nothing")  # no notice, no order: no deadline
    rows = list(case_deadlines(store, h(1), RULE))
    assert [(r.external_id, r.regime) for r in rows] == [
        ("two-notices", Regime.NOTICE_24H), ("ordered", Regime.ATKM_ORDER)]
    notice, order = rows
    assert notice.judgement.deadline == h(24)
    # At 1 h the notice's deadline (24 h) is ahead: pending, whatever the checks say.
    assert notice.judgement.outcome is Outcome.PENDING
    assert (notice.stated, notice.capped) == (None, False)
    notice = next(iter(case_deadlines(store, h(30), RULE)))
    assert notice.judgement.outcome is Outcome.UNDECIDED  # served at 20 h, gone at 26 h
    assert (notice.judgement.last_before, notice.last_before_verdict) == (h(20), "online")
    assert (notice.judgement.first_after, notice.first_after_verdict) == (h(26), "http_gone")
    assert notice.next_check is None  # notices are not scheduled
    assert order.judgement.outcome is Outcome.MET  # due at 1 h: judged at 1 h
    assert (order.stated, order.capped) == (h(1), False)
    assert (order.issuer, order.reference, order.start) == ("ATKM", "a", h(0))
    assert order.next_check is not None
    after = (order.next_check.kind, order.next_check.due)
    assert after == (CheckKind.AFTER, h(1) + RULE.margin)

    # Four days on, neither the order nor the notice (due at 24 h) is open.
    later = h(24 * 4)
    assert [r.open for r in case_deadlines(store, later, RULE)] == [False, False]
    assert list(case_deadlines(store, later, RULE, only_open=True)) == []
    assert [r.regime for r in case_deadlines(store, h(30), RULE, only_open=True)] == [
        Regime.NOTICE_24H, Regime.ATKM_ORDER]


def test_an_order_carries_its_stated_deadline_and_a_check_at_one_instant_counts_as_served(
        store):
    with store.transaction() as session:
        capped = _case(session, "capped")
        session.add(Order(case_id=capped, issuer="ATKM", reference="c", issued_at=h(0),
                          deadline_at=h(20), regime="atkm_order", due_at=h(12)))
        _check(session, capped, h(-1), "http_gone")
        tied = _case(session, "tied")
        session.add(Order(case_id=tied, issuer="ATKM", reference="t", issued_at=h(0),
                          deadline_at=h(2), regime="atkm_order", due_at=h(2)))
        _check(session, tied, h(1), "http_gone")
        _check(session, tied, h(1), "online")
        _check(session, tied, h(3), "online")
    rows = {r.external_id: r for r in case_deadlines(store, h(13), RULE)}
    assert (rows["capped"].stated, rows["capped"].judgement.deadline, rows["capped"].capped) \
        == (h(20), h(12), True)
    # Gone before the order was issued, and no check since: already gone, not met.
    assert rows["capped"].judgement.outcome is Outcome.ALREADY_GONE
    assert (rows["capped"].judgement.at_start, rows["capped"].at_start_verdict) == (
        h(-1), "http_gone")
    assert (rows["tied"].judgement.outcome, rows["tied"].last_before_verdict) == (
        Outcome.BREACHED, "online")
    # Only the cases asked for.
    assert [r.external_id for r in case_deadlines(store, h(13), RULE, among=[capped])] == [
        "capped"]

"""append_checks(): hash chain, case summaries, one transaction per batch."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from kernel.state import Debounce
from store import Case, Check
from store.checks import NewCheck, append_checks, verify_chain

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def add_case(store, external_id="r1"):
    with store.transaction() as session:
        case = Case(source="hotline", external_id=external_id, url="http://h.test/1.jpg",
                    url_normalised="http://h.test/1.jpg", host="h.test", category="csam",
                    reported_at=T0, imported_at=T0, state="unchecked", reappearances=0,
                    check_count=0)
        session.add(case)
        session.flush()
        return case.id


def check(case_id, hours, verdict):
    return NewCheck(case_id=case_id, checked_at=T0 + timedelta(hours=hours), method="http",
                    verdict=verdict, url="http://h.test/1.jpg", tool_version="test",
                    http_status=200 if verdict == "online" else 404)


def test_checks_update_the_case_state(store):
    case_id = add_case(store)
    with store.transaction() as session:
        append_checks(session, [check(case_id, 1, "online")], Debounce())
    with store.transaction() as session:
        append_checks(session, [check(case_id, 24, "http_gone"), check(case_id, 48, "http_gone")],
                      Debounce())
    with store.session() as session:
        case = session.get(Case, case_id)
    assert case.state == "removed"
    assert case.check_count == 3
    assert case.last_verdict == "http_gone"
    assert case.removed_after == T0 + timedelta(hours=1)
    assert case.removed_at == T0 + timedelta(hours=24)


def test_untouched_chain_verifies(store):
    case_id = add_case(store)
    for hours in range(5):
        with store.transaction() as session:
            append_checks(session, [check(case_id, hours, "online")] * 2, Debounce())
    with store.session() as session:
        count, problems = verify_chain(session)
    assert (count, problems) == (10, [])


def test_a_changed_row_is_named(store):
    case_id = add_case(store)
    with store.transaction() as session:
        append_checks(session, [check(case_id, h, "online") for h in range(4)], Debounce())
    with store.session() as session:
        target = session.scalars(select(Check.id).order_by(Check.id).offset(2)).first()
    with store.transaction() as session:
        session.execute(text("UPDATE checks SET verdict = 'http_gone' WHERE id = :id"),
                        {"id": target})
    with store.session() as session:
        count, problems = verify_chain(session)
    assert count == 4
    assert [p.check_id for p in problems] == [target]
    assert "contents changed" in str(problems[0])


def test_a_deleted_row_breaks_the_next_link(store):
    case_id = add_case(store)
    with store.transaction() as session:
        append_checks(session, [check(case_id, h, "online") for h in range(4)], Debounce())
    with store.session() as session:
        ids = list(session.scalars(select(Check.id).order_by(Check.id)))
    with store.transaction() as session:
        session.execute(text("DELETE FROM checks WHERE id = :id"), {"id": ids[1]})
    with store.session() as session:
        _, problems = verify_chain(session)
    assert [p.check_id for p in problems] == [ids[2]]


def test_a_failed_batch_writes_nothing(store):
    case_id = add_case(store)
    with pytest.raises(Exception), store.transaction() as session:  # noqa: B017
        append_checks(session, [check(case_id, 1, "online"), check(999_999, 2, "online")],
                      Debounce())
    with store.session() as session:
        assert session.scalars(select(Check)).all() == []
        assert session.get(Case, case_id).check_count == 0


@pytest.mark.postgres
def test_writers_of_one_shared_run_store_each_case_once_in_one_chain(pg_url):
    """Workers of a shared run (store.queue; PostgreSQL only) append at once,
    from a fresh store (no chain head yet), with batches handed on (the same
    cases twice): no deadlock, no error, one check per case in the run, one
    chain."""
    import threading

    from store import Store
    from store.models import CrawlRun

    store = Store(pg_url)
    store.upgrade()

    cases = [add_case(store, f"r{n}") for n in range(30)]
    with store.transaction() as session:
        run = CrawlRun(started_at=T0, status="running", tool_version="test")
        session.add(run)
        session.flush()
        run_id = run.id
    errors: list[BaseException] = []
    written: list[int] = []
    start = threading.Barrier(3)

    def writer(offset: int) -> None:
        try:
            start.wait()
            for first in range(0, 30, 5):
                ids = cases[(first + offset) % 30:][:5] + cases[first:first + 3]
                batch = [NewCheck(case_id=case_id, checked_at=T0, method="http",
                                  verdict="online", url="http://h.test/1.jpg",
                                  tool_version="test", run_id=run_id) for case_id in ids]
                with store.transaction() as session:
                    written.append(append_checks(session, batch, Debounce(),
                                                 once_per_run=True))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(offset,)) for offset in (0, 7, 13)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with store.session() as session:
        per_case = session.execute(text(
            "SELECT case_id, count(*) FROM checks WHERE run_id = :r GROUP BY case_id"),
            {"r": run_id}).all()
        count, problems = verify_chain(session)
    assert sorted(case_id for case_id, _ in per_case) == sorted(cases)
    assert {n for _, n in per_case} == {1}
    store.dispose()
    assert sum(written) == count == 30 and problems == []

"""The store writer process (store/writer.py): batches in, one transaction each."""

import subprocess
import sys
import time

import pytest
from sqlalchemy import select, text

from kernel.state import Debounce
from store import Case, Check, StoreError
from store.checks import verify_chain
from store.writer import WriterProcess, WriterSetup
from tests.store.test_checks import add_case, check


def test_batches_are_committed_in_order_and_the_chain_holds(store):
    case_id = add_case(store)
    writer = WriterProcess(WriterSetup(store.url, Debounce()))
    try:
        assert writer.write([check(case_id, 1, "online")]) == 1
        assert writer.write([check(case_id, 24, "http_gone"), check(case_id, 48, "http_gone")]) == 2
    finally:
        writer.close()
    with store.session() as session:
        verdicts = session.scalars(select(Check.verdict).order_by(Check.id)).all()
        case = session.get(Case, case_id)
        count, problems = verify_chain(session)
    assert verdicts == ["online", "http_gone", "http_gone"]
    assert (case.state, case.check_count) == ("removed", 3)
    assert (count, problems) == (3, [])


def test_a_refused_batch_is_an_error_and_nothing_of_it_is_kept(sqlite_url):
    from store import Store

    store = Store(sqlite_url)
    store.upgrade()
    case_id = add_case(store)
    with store.transaction() as session:
        session.execute(text("CREATE TRIGGER no_gone BEFORE INSERT ON checks "
                             "WHEN NEW.verdict = 'http_gone' "
                             "BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END"))
    writer = WriterProcess(WriterSetup(store.url, Debounce()))
    try:
        with pytest.raises(StoreError, match="disk full"):
            writer.write([check(case_id, 1, "online"), check(case_id, 2, "http_gone")])
        # The writer goes on serving after a refused batch.
        assert writer.write([check(case_id, 3, "online")]) == 1
    finally:
        writer.close()
    with store.session() as session:
        assert session.scalars(select(Check.verdict)).all() == ["online"]


def test_a_refused_batch_s_error_never_quotes_what_a_server_sent(sqlite_url, caplog):
    """The error goes to the log and the crawl's message: the statement's
    values (headers, redirect targets a server chose) stay out of it."""
    from dataclasses import replace

    from store import Store

    store = Store(sqlite_url)
    store.upgrade()
    case_id = add_case(store)
    with store.transaction() as session:
        session.execute(text("CREATE TRIGGER no_checks BEFORE INSERT ON checks "
                             "BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END"))
    sent = replace(check(case_id, 1, "online"), headers={"server": "SERVER-SENT-BYTES"},
                   final_url="http://h.test/FROM-THE-LOCATION-HEADER",
                   redirect_chain=["http://h.test/1.jpg"])
    writer = WriterProcess(WriterSetup(store.url, Debounce()))
    try:
        with pytest.raises(StoreError, match="disk full") as raised:
            writer.write([sent])
    finally:
        writer.close()
    message = str(raised.value)
    assert "SERVER-SENT" not in message and "FROM-THE-LOCATION" not in message
    assert "checks" in message  # still says what was refused


def test_a_writer_that_cannot_open_the_store_is_a_clear_error(tmp_path):
    # Said when it starts (before any check is handed over), naming the store.
    with pytest.raises(StoreError, match="cannot open the store: directory of the SQLite "
                                         "file does not exist: .*/no/such/dir"):
        WriterProcess(WriterSetup(f"sqlite:///{tmp_path}/no/such/dir/x.db", Debounce()))


def test_the_writer_exits_when_the_crawl_dies(sqlite_url, tmp_path):
    """The crawl holds the writer's stdin: when it dies, the writer exits."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys\n"
        "from kernel.state import Debounce\n"
        "from store.writer import WriterProcess, WriterSetup\n"
        f"w = WriterProcess(WriterSetup({sqlite_url!r}, Debounce()))\n"
        "print(w._process.pid, flush=True)\n"
        "os._exit(9)\n")
    parent = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=60)
    assert parent.returncode == 9, parent.stderr
    pid = int(parent.stdout.split()[0])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid), "the writer outlived the crawl"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" not in status.read()
    except FileNotFoundError:
        return False

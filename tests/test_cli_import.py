"""`hostwatch import`, `import-notices`, `import-orders`: output and exit status 0/1/2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from hostwatch.cli import main
from store import Case, Notice, Order, Store

HEADER = "id,url,category,reported_at\n"
GOOD = ("A1,https://img.example.com/a.jpg,csam,2026-02-01T10:00:00Z\n"
        "B2,https://img.example.com/b.jpg,ncii,2026-02-01T11:00:00Z\n")


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """Run in tmp_path, so file names show as the user typed them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HOSTWATCH_DB", raising=False)
    return tmp_path


@pytest.fixture
def db(workdir) -> str:
    return f"sqlite:///{workdir / 'hostwatch.db'}"


def hostwatch(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args])


def count(db: str, model: type[Case | Notice | Order]) -> int:
    store = Store(db)
    try:
        with store.session() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0
    finally:
        store.dispose()


def test_every_row_taken_exits_0(db, workdir):
    (workdir / "reports.csv").write_text(HEADER + GOOD)
    result = hostwatch(db, "import", "reports.csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == "reports.csv: 2 added, 0 unchanged, 0 rejected\n"
    assert result.stderr == ""
    again = hostwatch(db, "import", "reports.csv")
    assert again.exit_code == 0
    assert again.stdout == "reports.csv: 0 added, 2 unchanged, 0 rejected\n"
    assert count(db, Case) == 2


def test_rejected_rows_exit_1_and_are_listed_on_stderr(db, workdir):
    (workdir / "reports.csv").write_text(
        "id,url,category,reported_at,notice_sent_at\n"
        "A1,https://img.example.com/a.jpg,csam,2026-02-01T10:00:00Z,2026-02-01T12:00:00Z\n"
        "B2,ftp://img.example.com/b.jpg,csam,2026-13-01,\n"
        "C3,https://img.example.com/c.jpg,porn,2026-02-01T10:00:00Z,\n")
    result = hostwatch(db, "import", "reports.csv")
    assert result.exit_code == 1
    assert result.stdout == "reports.csv: 1 added, 0 unchanged, 2 rejected, 1 notices added\n"
    assert result.stderr.splitlines() == [
        "reports.csv:3: url: scheme must be http or https: 'ftp://img.example.com/b.jpg'",
        "reports.csv:3: reported_at: not an ISO 8601 time with zone: '2026-13-01'",
        "reports.csv:4: category: unknown category 'porn' (one of csam, csam_ai, ncii, "
        "deepfake_adult, sextortion, terrorist, other)",
    ]
    assert (count(db, Case), count(db, Notice)) == (1, 1)


@pytest.mark.parametrize(("content", "message"), [
    (None, "error: reports.csv: no such file (nothing written)"),
    ("", "error: reports.csv: empty file (nothing written)"),
    ("id,url,category\nA1,https://a.example/,csam\n",
     "error: reports.csv: missing required column reported_at (the header has: id, url, "
     "category) (nothing written)"),
    # A header that would retitle the terminal (OSC) is shown escaped.
    ("id,url,cat\x1b]0;pwned\x07egory\nA1,https://a.example/,csam\n",
     "error: reports.csv: missing required column category, reported_at (the header has: "
     "id, url, cat\\x1b]0;pwned\\x07egory) (nothing written)"),
])
def test_unreadable_file_exits_2_and_writes_nothing(db, workdir, content, message):
    if content is not None:
        (workdir / "reports.csv").write_text(content)
    result = hostwatch(db, "import", "reports.csv")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == message
    assert count(db, Case) == 0


def test_a_directory_exits_2(db, workdir):
    (workdir / "reports.csv").mkdir()
    result = hostwatch(db, "import", "reports.csv")
    assert result.exit_code == 2
    assert "is a directory" in result.stderr


def test_store_that_cannot_be_opened_exits_2(workdir):
    (workdir / "reports.csv").write_text(HEADER + GOOD)
    result = hostwatch(f"sqlite:///{workdir}/no/such/dir.db", "import", "reports.csv")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert "nothing written" in result.stderr


def test_format_and_source_options(db, workdir):
    (workdir / "export.txt").write_text(
        '{"id": "A1", "url": "https://a.example/", "category": "csam", '
        '"reported_at": "2026-02-01T10:00:00Z"}\n')
    unknown = hostwatch(db, "import", "export.txt")
    assert unknown.exit_code == 2
    assert "unknown format" in unknown.stderr
    result = hostwatch(db, "import", "--format", "jsonl", "--source", "meldpunt", "export.txt")
    assert result.exit_code == 0, result.output
    store = Store(db)
    with store.session() as session:
        assert session.scalars(select(Case.source)).all() == ["meldpunt"]
    store.dispose()
    bad_source = hostwatch(db, "import", "--source", "", "export.txt")
    assert bad_source.exit_code == 2
    assert "--source" in bad_source.stderr


def test_import_notices_and_orders(db, workdir):
    (workdir / "reports.csv").write_text(HEADER + GOOD)
    assert hostwatch(db, "import", "reports.csv").exit_code == 0
    (workdir / "notices.csv").write_text(
        "case_id,sent_at,recipient,trusted_flagger\n"
        "A1,2026-02-01T12:00:00Z,abuse@hoster.example,1\n"
        "ZZ,2026-02-01T12:00:00Z,abuse@hoster.example,1\n")
    notices = hostwatch(db, "import-notices", "notices.csv")
    assert notices.exit_code == 1
    assert notices.stdout == "notices.csv: 1 added, 0 unchanged, 1 rejected\n"
    assert notices.stderr == "notices.csv:3: case_id: no case 'ZZ' from source 'hotline'\n"
    (workdir / "orders.csv").write_text(
        "case_id,issued_at,issuer,deadline_at,reference\n"
        "A1,2026-02-03T09:00:00Z,ATKM,2026-02-04T09:00:00Z,ATKM-1\n")
    orders = hostwatch(db, "import-orders", "orders.csv")
    # 24 hours is more than an ATKM order may set: taken (exit 0), judged at 12 hours,
    # and said so for the row.
    capped = ("orders.csv:2: deadline_at: later than the 12-hour legal cap for an ATKM "
              "order; judged at 2026-02-03T21:00:00Z\n")
    assert orders.exit_code == 0, orders.output
    assert orders.stdout == "orders.csv: 1 added, 0 unchanged, 0 rejected, 1 with a note\n" \
        + capped
    assert orders.stderr == ""
    assert hostwatch(db, "import-orders", "orders.csv").stdout == (
        "orders.csv: 0 added, 1 unchanged, 0 rejected, 1 with a note\n" + capped)
    (workdir / "in-time.csv").write_text(
        "case_id,issued_at,issuer,deadline_at,reference\n"
        "A1,2026-02-03T09:00:00Z,ATKM,2026-02-03T15:00:00Z,ATKM-2\n")
    assert hostwatch(db, "import-orders", "in-time.csv").stdout == (
        "in-time.csv: 1 added, 0 unchanged, 0 rejected\n")
    missing = hostwatch(db, "import-orders", "nope.csv")
    assert missing.exit_code == 2
    assert (count(db, Notice), count(db, Order)) == (1, 2)


def test_exit_status_reaches_the_shell(db, workdir):
    (workdir / "reports.csv").write_text(HEADER + GOOD + "C3,https://a.example/,csam,never\n")
    completed = subprocess.run(
        [sys.executable, "-m", "hostwatch", "--db", db, "import", "reports.csv"],
        cwd=workdir, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 1, completed.stderr
    assert completed.stdout == "reports.csv: 2 added, 0 unchanged, 1 rejected\n"
    assert completed.stderr == (
        "reports.csv:4: reported_at: not an ISO 8601 time with zone: 'never'\n")

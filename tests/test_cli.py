"""Every command explains itself, with an example, and is in the README."""

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hostwatch.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _command_names(group: click.Group, prefix: str = "") -> list[str]:
    """Every command, with a group's subcommands as "group sub"."""
    names = []
    for name, command in group.commands.items():
        names.append(prefix + name)
        if isinstance(command, click.Group):
            names += _command_names(command, f"{prefix}{name} ")
    return sorted(names)


COMMANDS = _command_names(main)


def test_the_core_commands_exist():
    assert {"import", "import-notices", "import-orders", "crawl", "run", "status", "cases",
            "update", "demo"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name):
    result = CliRunner().invoke(main, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`hostwatch {name} --help` shows no example"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_is_in_the_readme(name):
    assert f"hostwatch {name}" in README


def test_status_on_an_empty_store(tmp_path):
    db = f"sqlite:///{tmp_path / 'h.db'}"
    result = CliRunner().invoke(main, ["--db", db, "status"])
    assert result.exit_code == 0, result.output
    assert "0 cases" in result.output
    assert "no crawl run yet" in result.output


def test_unusable_store_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["--db", f"sqlite:///{tmp_path}/no/such/dir.db", "status"])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_status_and_update_honour_a_suspect_run(tmp_path):
    """`status` shows the last run suspect and the cases awaiting confirmation;
    `update` re-derives states without the suspect run's failures (#10 point 8)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from store import Store
    from store.models import Case, Check, CrawlRun

    db = f"sqlite:///{tmp_path / 'h.db'}"
    store = Store(db)
    store.upgrade()
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    with store.transaction() as session:
        healthy = CrawlRun(started_at=t0, status="finished", tool_version="t", health="healthy")
        broken = CrawlRun(started_at=t0 + timedelta(days=1), status="finished",
                          tool_version="t", health="suspect",
                          health_reason="control http://c.test/ not served")
        session.add_all([healthy, broken])
        session.flush()
        for n in range(3):
            case = Case(source="t", external_id=str(n), url=f"http://h{n}.test/a.jpg",
                        url_normalised=f"http://h{n}.test/a.jpg", host=f"h{n}.test",
                        category="csam", reported_at=t0, imported_at=t0)
            session.add(case)
            session.flush()
            # Written without deriving states, as an old store or a crash leaves them.
            for hours, verdict, run in ((1, "online", healthy), (24, "nxdomain", broken),
                                        (48, "nxdomain", broken)):
                session.add(Check(case_id=case.id, run_id=run.id, checked_at=t0 + timedelta(
                    hours=hours), method="http", verdict=verdict, url=case.url,
                    tool_version="t", prev_hash="0" * 64, record_hash=f"{n}-{hours}"))
    result = CliRunner().invoke(main, ["--db", db, "update"])
    assert result.exit_code == 0, result.output
    with store.session() as session:
        assert set(session.scalars(select(Case.state))) == {"online"}
    result = CliRunner().invoke(main, ["--db", db, "status"])
    assert result.exit_code == 0, result.output
    assert f"last run {broken.id}: finished, suspect" in result.output
    assert "suspect: control http://c.test/ not served" in result.output
    assert "3 cases await confirmation" in result.output
    store.dispose()


def test_status_counts_the_stored_checks_of_a_run_that_did_not_finish(tmp_path):
    """A crawl killed mid-run leaves its written checks; `status` must not say
    "0 checks" beside "N cases await confirmation" of those very checks."""
    from datetime import UTC, datetime, timedelta

    from store import Store
    from store.models import Case, Check, CrawlRun

    db = f"sqlite:///{tmp_path / 'h.db'}"
    store = Store(db)
    store.upgrade()
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    with store.transaction() as session:
        dead = CrawlRun(started_at=t0, status="running", tool_version="t", health="pending",
                        checks_made=0)
        session.add(dead)
        session.flush()
        for n in range(3):
            case = Case(source="t", external_id=str(n), url=f"http://h{n}.test/a.jpg",
                        url_normalised=f"http://h{n}.test/a.jpg", host=f"h{n}.test",
                        category="csam", reported_at=t0, imported_at=t0)
            session.add(case)
            session.flush()
            session.add(Check(case_id=case.id, run_id=dead.id, checked_at=t0 + timedelta(
                hours=1), method="http", verdict="nxdomain", url=case.url,
                tool_version="t", prev_hash="0" * 64, record_hash=f"{n}"))
    result = CliRunner().invoke(main, ["--db", db, "status"])
    assert result.exit_code == 0, result.output
    assert f"last run {dead.id}: running, pending, started" in result.output
    assert "3 checks stored so far" in result.output
    store.dispose()

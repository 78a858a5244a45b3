"""A quiet command line: `hostwatch crawl` and `hostwatch run` at the default
log level print no Scrapy banner, settings dump or Python warnings, and their
outcome is the last line; -v brings Scrapy's start-up lines back.

Each runs as `python -m hostwatch` against the local test internet, with
stderr and stdout in one stream, as a cron job's log file receives them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lab import Serve, Status, TestInternet, marker_body
from store import Store
from tests.crawler.conftest import add_cases, crawl_env

NOISE = ("Scrapy", "Overridden settings", "Enabled extensions", "Enabled downloader",
         "Dumping Scrapy stats", "Spider opened", "Warning", "DeprecationWarning",
         "[scrapy", "[alembic", " INFO: ")


def hostwatch(db_url: str, net: TestInternet, workdir: Path, *args: str,
              **extra: str) -> subprocess.CompletedProcess[str]:
    """`python -m hostwatch --db DB ARGS`, stderr merged into stdout."""
    return subprocess.run(
        [sys.executable, "-m", "hostwatch", "--db", db_url, *args],
        env=crawl_env(net, workdir, **extra), cwd=workdir, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=120, check=False)


def two_cases(db_url: str, net: TestInternet) -> None:
    store = Store(db_url)
    store.upgrade()
    host = net.add_host("quiet.test")
    host.route("/a.jpg", Serve(marker_body("quiet", kind="jpeg")))
    host.route("/b.jpg", Status(410))
    add_cases(store, [host.url("/a.jpg"), host.url("/b.jpg")])
    store.dispose()


def noise_in(output: str) -> list[str]:
    return [line for line in output.splitlines() if any(word in line for word in NOISE)]


@pytest.mark.slow
def test_crawl_says_only_its_outcome_at_the_default_level(sqlite_url, net, tmp_path):
    two_cases(sqlite_url, net)
    result = hostwatch(sqlite_url, net, tmp_path, "crawl")
    assert result.returncode == 0, result.stdout[-3000:]
    assert noise_in(result.stdout) == []
    lines = result.stdout.splitlines()
    assert len(lines) == 1, lines
    assert lines[-1].startswith("run 1 finished: 2 of 2 due cases checked in ")
    assert lines[-1].endswith("(http_gone 1, online 1)")


@pytest.mark.slow
def test_verbose_crawl_shows_scrapys_start_up_lines_and_ends_with_its_outcome(
        sqlite_url, net, tmp_path):
    two_cases(sqlite_url, net)
    result = hostwatch(sqlite_url, net, tmp_path, "-v", "crawl")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Scrapy" in result.stdout and "Overridden settings" in result.stdout
    assert " DEBUG: " not in result.stdout  # -v is INFO; -vv (or DEBUG) every request
    assert result.stdout.splitlines()[-1].startswith("run 1 finished: 2 of 2 due cases")


@pytest.mark.slow
def test_run_ends_with_the_case_states_and_says_nothing_else_of_note(
        sqlite_url, net, tmp_path):
    two_cases(sqlite_url, net)
    result = hostwatch(sqlite_url, net, tmp_path, "run", HOSTWATCH_OFFLINE="1")
    assert result.returncode == 0, result.stdout[-3000:]
    assert noise_in(result.stdout) == []
    lines = result.stdout.splitlines()
    assert lines[0].startswith("run 1 finished: 2 of 2 due cases")
    assert lines[-2].startswith("enrich: 2 checks attributed")
    assert lines[-1] == "cases: online 1, pending_removal 1"


@pytest.mark.slow
def test_a_failed_crawl_ends_with_its_error(sqlite_url, net, tmp_path):
    """The error is the last line, after no banner."""
    two_cases(sqlite_url, net)
    result = hostwatch(sqlite_url, net, tmp_path, "crawl", HOSTWATCH_TIMEOUT="nonsense")
    assert result.returncode == 1
    assert noise_in(result.stdout) == []
    assert result.stdout.splitlines()[-1].startswith("Error: bad setting: HOSTWATCH_TIMEOUT=")

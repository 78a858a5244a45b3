"""A quiet command line: `hostwatch crawl` and `hostwatch run` at the default
log level print no Scrapy banner, settings dump or Python warnings, and their
outcome is the last line; -v brings Scrapy's start-up lines back.

Each runs as `python -m hostwatch` against the local test internet, with
stderr and stdout in one stream, as a cron job's log file receives them.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from lab import Behaviour, Serve, Slow, Status, TestInternet, marker_body
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


def cases_on(db_url: str, net: TestInternet, name: str,
             routes: dict[str, Behaviour]) -> None:
    """A store at ``db_url`` with one case per path of ``routes``, on the host
    ``name`` of the local test internet, which answers each as routed."""
    store = Store(db_url)
    store.upgrade()
    host = net.add_host(name)
    for path, behaviour in routes.items():
        host.route(path, behaviour)
    add_cases(store, [host.url(path) for path in routes])
    store.dispose()


def two_cases(db_url: str, net: TestInternet) -> None:
    """One case online, one gone (410)."""
    cases_on(db_url, net, "quiet.test", {"/a.jpg": Serve(marker_body("quiet", kind="jpeg")),
                                         "/b.jpg": Status(410)})


def a_slow_case_and_a_quick_one(db_url: str, net: TestInternet, seconds: float) -> None:
    """A case whose server takes ``seconds`` to answer, then one served at once:
    the crawl is busy long enough for its progress to show."""
    cases_on(db_url, net, "slow.test", {"/slow.jpg": Slow(seconds),
                                        "/a.jpg": Serve(marker_body("quiet", kind="jpeg"))})


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


def on_a_terminal(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run ``args`` with stdout and stderr on a pseudo-terminal; what it printed."""
    primary, secondary = pty.openpty()
    with subprocess.Popen(args, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=secondary,
                          stderr=secondary) as child:
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        child.wait(timeout=120)
    os.close(primary)
    return b"".join(chunks).decode()


@pytest.mark.slow
def test_progress_is_one_line_rewritten_in_place_on_a_terminal_then_wiped(
        sqlite_url, net, tmp_path):
    a_slow_case_and_a_quick_one(sqlite_url, net, seconds=2)
    output = on_a_terminal(
        [sys.executable, "-m", "hostwatch", "--db", sqlite_url, "crawl"],
        crawl_env(net, tmp_path, HOSTWATCH_PROGRESS="1", HOSTWATCH_TIMEOUT="5"), tmp_path)
    assert "\r\x1b[Khostwatch: checked " in output  # rewritten in place...
    assert "of 2 due cases (" in output
    progress, _, outcome = output.rpartition("\r\x1b[K")  # ...and wiped before the outcome
    assert "\n" not in progress.strip()  # one line, never a new one
    assert outcome.strip().startswith("run 1 finished: 2 of 2 due cases")
    assert noise_in(output) == []


@pytest.mark.slow
def test_progress_off_a_terminal_is_a_plain_line_every_5_s_and_off_with_zero(
        sqlite_url, net, tmp_path):
    a_slow_case_and_a_quick_one(sqlite_url, net, seconds=6)
    shown = hostwatch(sqlite_url, net, tmp_path, "crawl", HOSTWATCH_PROGRESS="1",
                      HOSTWATCH_TIMEOUT="8")
    assert shown.returncode == 0, shown.stdout
    lines = shown.stdout.splitlines()
    assert "\x1b" not in shown.stdout and "\r" not in shown.stdout
    assert lines[:-1] and all(line.startswith("hostwatch: checked ") for line in lines[:-1])
    assert lines[-1].startswith("run 1 finished: 2 of 2 due cases")
    quiet = hostwatch(sqlite_url, net, tmp_path, "crawl", HOSTWATCH_PROGRESS="0",
                      HOSTWATCH_TIMEOUT="8")
    assert quiet.returncode == 0, quiet.stdout
    assert quiet.stdout.splitlines() == [quiet.stdout.splitlines()[-1]]
    assert quiet.stdout.startswith("run 2 finished: 2 of 2 due cases")

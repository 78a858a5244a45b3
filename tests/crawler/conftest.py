"""Crawl fixtures: the local test internet and a crawl in a child process.

Scrapy's reactor cannot restart inside one process, so every crawl runs as
`python -m hostwatch crawl`, the way an operator runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from lab import TestInternet
from store import Case, Check, Store


@pytest.fixture
def net() -> Iterator[TestInternet]:
    with TestInternet(ttl=1) as internet:
        yield internet


def add_cases(store: Store, urls: list[str], refs: dict[str, str] | None = None,
              source: str = "test", pdqs: dict[str, str] | None = None) -> dict[str, int]:
    """Cases for ``urls`` (as a hotline import would create them); url -> case id.
    ``refs`` and ``pdqs``: the reported file's SHA-256 and PDQ, per URL."""
    now = datetime.now(UTC)
    ids: dict[str, int] = {}
    with store.transaction() as session:
        for number, url in enumerate(urls):
            case = Case(source=source, external_id=f"r{number}", url=url, url_normalised=url,
                        host=url.split("/")[2].split(":")[0], category="csam",
                        reported_at=now, imported_at=now, state="unchecked",
                        ref_sha256=(refs or {}).get(url), ref_pdq=(pdqs or {}).get(url),
                        ref_pdq_source="report" if (pdqs or {}).get(url) else None,
                        reappearances=0, check_count=0)
            session.add(case)
            session.flush()
            ids[url] = case.id
    return ids


def crawl_env(net: TestInternet, workdir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "HOSTWATCH_NAMESERVERS": net.nameservers_env,
        "HOSTWATCH_ALLOW_PRIVATE": "127.0.0.0/8",
        "HOSTWATCH_RECHECK_HOURS": "0",
        "HOSTWATCH_TIMEOUT": "2",
        "HOSTWATCH_DNS_TIMEOUT": "2",
        "HOSTWATCH_PROGRESS": "0",
        "HOSTWATCH_DATA_DIR": str(workdir),
        "TMPDIR": str(workdir / "tmp"),
    })
    (workdir / "tmp").mkdir(exist_ok=True)
    env.update(extra)
    return env


def run_crawl(db_url: str, net: TestInternet, workdir: Path, *args: str,
              timeout: float = 120, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hostwatch", "--db", db_url, "crawl", *args],
        env=crawl_env(net, workdir, **extra), cwd=workdir, capture_output=True, text=True,
        timeout=timeout, check=False)


def checks_by_url(store: Store) -> dict[str, list[Check]]:
    with store.session() as session:
        rows = session.execute(select(Case.url, Check).join(Check, Check.case_id == Case.id)
                               .order_by(Check.id)).all()
    out: dict[str, list[Check]] = {}
    for url, check in rows:
        out.setdefault(url, []).append(check)
    return out


@pytest.fixture
def browser_temp() -> Iterator[Path]:
    """Where a browser check's temporary directory goes (HOSTWATCH_BROWSER_TEMP):
    short, because Chromium puts a Unix socket (107 bytes of path at most) in it."""
    path = Path(tempfile.mkdtemp(prefix="hwt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)

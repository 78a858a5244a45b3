"""Enrichment fixtures: the local test internet, and hostwatch commands run
against it in child processes (the crawl's reactor cannot restart)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import TestInternet
from tests.crawler.conftest import crawl_env

TEST_HOSTERS = Path(__file__).with_name("test_hosters.toml")


@pytest.fixture
def net() -> Iterator[TestInternet]:
    with TestInternet(ttl=1) as internet:
        yield internet


def enrich_env(net: TestInternet, workdir: Path, **extra: str) -> dict[str, str]:
    """The crawl's environment plus the test internet's ASN table, AS names,
    RDAP server and the tests' hoster registry."""
    return crawl_env(net, workdir, HOSTWATCH_ASN_DB=str(net.asn_table_path),
                     HOSTWATCH_ASNAMES=str(net.asnames_path),
                     HOSTWATCH_RDAP_URL=net.rdap_url, HOSTWATCH_RDAP_TIMEOUT="3",
                     HOSTWATCH_HOSTERS=str(TEST_HOSTERS), **extra)


def hostwatch(db_url: str, net: TestInternet, workdir: Path, *args: str,
              timeout: float = 120, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hostwatch", "--db", db_url, *args],
        env=enrich_env(net, workdir, **extra), cwd=workdir, capture_output=True, text=True,
        timeout=timeout, check=False)


def cases_json(db_url: str, net: TestInternet, workdir: Path) -> dict[str, dict[str, object]]:
    """`hostwatch cases --json`, by URL."""
    result = hostwatch(db_url, net, workdir, "cases", "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return {str(row["url"]): row for row in rows}

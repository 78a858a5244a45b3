"""The crawl's configuration is passed, not smuggled (#13): `crawler.run.run_crawl`
hands its Config to every Scrapy component in the crawler's settings, and
leaves the process environment as it found it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lab import Serve, Status, marker_body
from store import Store
from tests.crawler.conftest import add_cases, checks_by_url, crawl_env

IMAGE = marker_body("config-image")

# In a child process (Scrapy's reactor runs once per process): a Config made
# from the environment plus values given only to it, then run_crawl.
CHILD = """
import json, os, sys
from crawler.run import run_crawl
from kernel.config import Config

given = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(sys.argv[1]).items()}
before = dict(os.environ)
config = Config.from_env(**given)
stats = run_crawl(config)
with open(sys.argv[2], "w") as out:
    json.dump({"environment_unchanged": dict(os.environ) == before,
               "changed": sorted(k for k in set(before) | set(os.environ)
                                 if before.get(k) != os.environ.get(k)),
               "run_id": stats.get("hostwatch/run_id")}, out)
"""


@pytest.mark.slow
def test_run_crawl_uses_its_config_not_the_environment(sqlite_url, net, tmp_path):
    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("config.test")
    host.route("/a.jpg", Serve(IMAGE))
    host.route("/b.jpg", Status(410))
    add_cases(store, [host.url("/a.jpg"), host.url("/b.jpg")])
    decoy = tmp_path / "decoy"  # what the environment says: never used
    env = crawl_env(net, tmp_path, HOSTWATCH_OFFLINE="1",
                    HOSTWATCH_DB=f"sqlite:///{decoy / 'hostwatch.db'}",
                    HOSTWATCH_DATA_DIR=str(decoy),
                    HOSTWATCH_ALLOW_PRIVATE="0",
                    HOSTWATCH_USER_AGENT="from-the-environment")
    given = {"db": sqlite_url, "data_dir": str(tmp_path),
             "allow_private": ["127.0.0.0/8"], "user_agent": "from-the-config/1"}
    report = tmp_path / "report.json"
    result = subprocess.run([sys.executable, "-c", CHILD, json.dumps(given), str(report)],
                            env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(report.read_text())

    assert outcome["environment_unchanged"], outcome["changed"]
    assert outcome["run_id"] is not None
    # The Config's store, guard and user agent, not the environment's.
    checks = checks_by_url(store)
    assert [c.verdict for c in checks[host.url("/a.jpg")]] == ["online"]
    assert [c.verdict for c in checks[host.url("/b.jpg")]] == ["http_gone"]
    assert not decoy.exists()
    assert net.hits
    assert {hit.user_agent for hit in net.hits} == {"from-the-config/1"}

"""The recheck crawl against the local test internet: every verdict, for real.

Each test runs `python -m hostwatch crawl` in a child process against real
DNS and HTTP servers on 127.0.0.x.
"""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from lab import (
    EndlessRedirect,
    Garbage,
    Huge,
    Redirect,
    RedirectHome,
    RedirectLogin,
    Reset,
    Serve,
    Slow,
    SoftNotFound,
    Status,
    marker_body,
)
from store import CrawlRun
from tests.crawler.conftest import add_cases, checks_by_url, run_crawl

IMAGE = marker_body("reported-image", kind="jpeg")
OTHER = marker_body("some-other-image", kind="jpeg")
REMOVED_PNG = b"\x89PNG\r\n\x1a\n removed-placeholder-image"


@pytest.mark.slow
def test_every_verdict(store, db_url, net, tmp_path):
    good = net.add_host("good.test")
    soft = net.add_host("soft.test")
    soft.default(SoftNotFound())
    net.add_a("private.test", "10.0.0.5")
    net.add_a("closed.test", "127.0.0.250")  # nothing listens there
    net.add_servfail("broken.test")
    routes = {
        "/ok.jpg": Serve(IMAGE),
        "/other.jpg": Serve(OTHER),
        "/gone404.jpg": Status(404),
        "/gone410.jpg": Status(410),
        "/legal.jpg": Status(451),
        "/removed-page": Serve(b"<html><body>This image has been removed.</body></html>",
                               content_type="text/html"),
        "/removed-img.png": Serve(REMOVED_PNG, content_type="image/png"),
        "/to-home.jpg": RedirectHome(),
        "/to-login.jpg": RedirectLogin(),
        "/slow.jpg": Slow(6),
        "/busy.jpg": Status(503),
        "/garbage.jpg": Garbage(),
        "/loop.jpg": EndlessRedirect(),
        "/to-private.jpg": Redirect(f"http://private.test:{net.port}/x.jpg"),
        "/to-metadata.jpg": Redirect("http://169.254.169.254/latest/meta-data/"),
        "/reset.jpg": Reset(),
        "/huge.jpg": Huge(3 * 1024 * 1024),
    }
    for path, behaviour in routes.items():
        good.route(path, behaviour)
    soft.route("/real.jpg", Serve(IMAGE))
    expected = {good.url(path): verdict for path, verdict in {
        "/ok.jpg": "online", "/other.jpg": "changed", "/gone404.jpg": "http_gone",
        "/gone410.jpg": "http_gone", "/legal.jpg": "legal_block",
        "/removed-page": "placeholder", "/removed-img.png": "placeholder",
        "/to-home.jpg": "redirect_away", "/to-login.jpg": "redirect_away",
        "/slow.jpg": "timeout", "/busy.jpg": "server_error", "/garbage.jpg": "bad_response",
        "/loop.jpg": "redirect_loop", "/to-private.jpg": "blocked_address",
        "/to-metadata.jpg": "blocked_address",
        "/reset.jpg": "refused", "/huge.jpg": "online",
    }.items()}
    expected.update({
        soft.url("/missing.jpg"): "placeholder",
        soft.url("/real.jpg"): "online",
        f"http://nosuch.test:{net.port}/a.jpg": "nxdomain",
        f"http://broken.test:{net.port}/a.jpg": "dns_error",
        f"http://closed.test:{net.port}/a.jpg": "refused",
        f"http://private.test:{net.port}/a.jpg": "blocked_address",
    })
    sha = hashlib.sha256(IMAGE).hexdigest()
    refs = {good.url("/ok.jpg"): sha, good.url("/other.jpg"): sha}
    add_cases(store, list(expected), refs)
    hashes = tmp_path / "placeholders.txt"
    hashes.write_text(hashlib.sha256(REMOVED_PNG).hexdigest() + "\n")

    result = run_crawl(db_url, net, tmp_path, HOSTWATCH_MAX_BODY=str(1024 * 1024),
                       HOSTWATCH_PLACEHOLDER_HASHES=str(hashes))
    assert result.returncode == 0, result.stderr[-3000:]

    checks = checks_by_url(store)
    got = {url: [c.verdict for c in checks.get(url, [])] for url in expected}
    assert got == {url: [verdict] for url, verdict in expected.items()}
    ok = checks[good.url("/ok.jpg")][0]
    assert (ok.http_status, ok.reference_match, ok.body_sha256) == (200, True, sha)
    assert ok.peer_ip == good.ip
    huge = checks[good.url("/huge.jpg")][0]
    assert huge.truncated is True
    assert 1024 * 1024 <= huge.bytes_received < 3 * 1024 * 1024
    loop = checks[good.url("/to-home.jpg")][0]
    assert loop.final_url == good.url("/")
    assert loop.redirect_chain == [good.url("/to-home.jpg")]
    private = checks[good.url("/to-private.jpg")][0]
    assert "10.0.0.5" in private.reason
    # The guard refused before connecting: the private address never got a packet,
    # and the test net saw no request for the private name.
    assert not any(hit.host == "private.test" for hit in net.hits)
    assert {hit.user_agent for hit in net.hits} == {"hostwatch/0.1 (+hotline re-check)"}
    with store.session() as session:
        run = session.scalars(select(CrawlRun)).one()
    assert run.status == "finished"
    assert run.checks_made == len(expected)
    assert run.counts["online"] == 3
    assert "run 1 finished" in result.stdout


@pytest.mark.slow
def test_guard_refuses_loopback_without_the_lab_setting(sqlite_url, net, tmp_path):
    from store import Store

    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("h.test")
    host.route("/a.jpg", Serve(IMAGE))
    add_cases(store, [host.url("/a.jpg")])
    result = run_crawl(sqlite_url, net, tmp_path, HOSTWATCH_ALLOW_PRIVATE="0")
    assert result.returncode == 0, result.stderr[-3000:]
    (check,) = checks_by_url(store)[host.url("/a.jpg")]
    assert check.verdict == "blocked_address"
    assert "loopback" in check.reason
    assert net.hits == []


@pytest.mark.slow
def test_scrapy_crawl_recheck_runs_the_same_crawl(sqlite_url, net, tmp_path):
    """`scrapy crawl recheck` from the project folder works like `hostwatch crawl`."""
    import subprocess
    import sys
    from pathlib import Path

    from store import Store
    from tests.crawler.conftest import crawl_env

    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("scrapy.test")
    host.route("/a.jpg", Serve(IMAGE))
    host.route("/b.jpg", Status(410))
    add_cases(store, [host.url("/a.jpg"), host.url("/b.jpg")])
    project = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "recheck"], cwd=project,
        env=crawl_env(net, tmp_path, HOSTWATCH_DB=sqlite_url), capture_output=True, text=True,
        timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    checks = checks_by_url(store)
    assert [c.verdict for c in checks[host.url("/a.jpg")]] == ["online"]
    assert [c.verdict for c in checks[host.url("/b.jpg")]] == ["http_gone"]

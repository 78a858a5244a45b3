"""The safety rule, proven: no byte of a served body is written anywhere.

Every scripted host serves bodies holding a unique marker. After a crawl
(debug logging on, so the logs say as much as they ever will), no file under
the data directory (the SQLite store and its journal included), the temp
directory or the logs contains the marker.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from store import Store
from tests.crawler.conftest import add_cases, checks_by_url, run_crawl
from tests.net import Huge, Redirect, Serve, SoftNotFound, Status, marker_body


def files_containing(root: Path, needle: bytes) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            found.append(path)
    return found


@pytest.mark.slow
def test_no_body_is_written_to_disk_or_logs(sqlite_url, net, tmp_path):
    marker = f"MATERIAL-{uuid.uuid4().hex}"
    image = marker_body(marker, kind="jpeg")
    page = marker_body(marker, kind="html")
    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("material.test")
    host.default(SoftNotFound())
    host.route("/a.jpg", Serve(image))
    host.route("/page.html", Serve(page, content_type="text/html"))
    host.route("/gone.jpg", Status(404, body=page))
    host.route("/big.jpg", Huge(2 * 1024 * 1024, fill=marker.encode()))
    host.route("/moved.jpg", Redirect(host.url("/a.jpg")))
    urls = [host.url(p) for p in ("/a.jpg", "/page.html", "/gone.jpg", "/big.jpg", "/moved.jpg",
                                  "/missing.jpg")]
    add_cases(store, urls)

    result = run_crawl(sqlite_url, net, tmp_path, HOSTWATCH_LOG_LEVEL="DEBUG",
                       HOSTWATCH_MAX_BODY=str(512 * 1024))
    assert result.returncode == 0, result.stderr[-3000:]
    store.dispose()

    # The material was really fetched and hashed: the check knows its hash...
    checks = checks_by_url(store)
    assert checks[host.url("/a.jpg")][0].body_sha256 == hashlib.sha256(image).hexdigest()
    # ...yet it is nowhere: not in the data dir (store, WAL, lock), temp dir or logs.
    needle = marker.encode()
    assert files_containing(tmp_path, needle) == []
    assert marker not in result.stdout
    assert marker not in result.stderr
    assert "DEBUG" in result.stderr  # the logs were as verbose as they get

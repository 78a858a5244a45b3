"""`hostwatch serve` (#15 point 2, first step): real HTTP on loopback.

The server runs as `hostwatch serve --port 0` in a child process; every page
is fetched over a real socket. No reported URL may be a link or a source on
any page, and every response carries the Content-Security-Policy.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from datasette_auth_passwords.utils import hash_password

from hostwatch.api import open_store
from hostwatch.cli import main
from hostwatch.serve import CSP, ServeError, cell_text, check_host
from kernel.config import Config

ROOT = Path(__file__).resolve().parents[1]
HOSTS = ("img.example.nl", "cdn.bad-host.example", "203.0.113.9")
REPORTS = (
    "id,url,category,reported_at\n"
    "R1,https://img.example.nl/a.jpg,csam,2026-02-01T10:00:00Z\n"
    "R2,http://cdn.bad-host.example/gallery/b.png?x=1&y=<b>,csam,2026-02-01T11:00:00Z\n"
    "R3,http://203.0.113.9:8080/c.mp4,ncii,2026-02-02T09:00:00Z\n"
)
DEFANGED = ("hxxps://img[.]example[.]nl/a[.]jpg",
            "hxxp://cdn[.]bad-host[.]example/gallery/b[.]png?x=1&amp;y=&lt;b&gt;",
            "hxxp://203[.]0[.]113[.]9:8080/c[.]mp4")


@pytest.fixture
def store_db(tmp_path: Path) -> str:
    reports = tmp_path / "reports.csv"
    reports.write_text(REPORTS, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'h.db'}"
    checks = tmp_path / "checks.csv"
    checks.write_text("case_id,checked_at,verdict\nR1,2026-02-01T12:00:00Z,online\n",
                      encoding="utf-8")
    with open_store(db) as hw:
        assert hw.import_reports(reports).added == 3
        assert hw.import_checks(checks).added == 1
    return db


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTWATCH_")}
    env.update(PYTHONPATH=str(ROOT), HOSTWATCH_OFFLINE="1",
               HOSTWATCH_NAMESERVERS="127.0.0.1:53", **extra)
    return env


@contextmanager
def serving(db: str, **env: str) -> Iterator[str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "hostwatch", "--db", db, "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(**env))
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if not found:
            child.kill()
            pytest.fail(f"no URL announced: {line!r} {child.communicate()[1]!r}")
        yield found.group(0)
    finally:
        child.terminate()
        child.wait(timeout=10)


def _assert_safe(response: httpx.Response, *, internal_links: bool = False) -> None:
    """No tag names a reported host, and no text shows one as it is; with
    ``internal_links`` (facets, filters), a link may carry a host in its query
    string, to this server, and only there."""
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    html = response.text
    for tag in re.findall(r"<[a-zA-Z][^>]*>", html):
        if internal_links and re.match(r"<input [^>]*value=", tag) and "src=" not in tag:
            continue  # the filter asked for, in the form that keeps it
        link = re.fullmatch(r'<(?:a|link) [^>]*href="([^"]*)"[^>]*>', tag)
        if internal_links and link and "src=" not in tag and any(h in tag for h in HOSTS):
            target = response.url.join(link.group(1).replace("&amp;", "&"))
            assert (target.host, target.port) == (response.url.host, response.url.port), tag
            continue
        for host in HOSTS:
            assert host not in tag, f"{response.url}: {tag}"
    text = re.sub(r"<[^>]*>", " ", html)
    if internal_links:  # what was asked: the filter form's value, the filter's description
        # (text, never a link: its defanging is still to do)
        text = re.sub(r"where [^\n]*?&#34;[^&]*&#34;", " ", text)
    for host in HOSTS:
        assert host not in text, f"{response.url}: {host} appears as it is"


def test_every_page_shows_reported_urls_defanged_and_never_as_links(store_db):
    with serving(store_db) as base, httpx.Client(base_url=base, timeout=10) as client:
        pages = {
            "table": "/h/cases",
            "row": "/h/cases/1",
            "query": "/h?" + str(httpx.QueryParams(sql="select url from cases")),
        }
        for name, path in pages.items():
            response = client.get(path)
            assert response.status_code == 200, (name, response.text[:500])
            _assert_safe(response)
            assert DEFANGED[0] in response.text, name
        table = client.get("/h/cases").text
        assert all(text in table for text in DEFANGED)
        for path in ("/", "/h", "/-/static/app.css", "/h/cases?_sort=url", "/nothing"):
            response = client.get(path)
            assert response.headers["content-security-policy"] == CSP, path
        # A check leads to its case: the foreign key stays a link, on this server.
        checks = client.get("/h/checks")
        assert checks.status_code == 200
        _assert_safe(checks)
        assert re.search(r'<td class="col-case_id[^"]*"><a href="/h/cases/1">1</a></td>',
                         checks.text), checks.text
        # Facets: each value shown defanged; its link stays on the server.
        facets = client.get("/h/cases?_facet=host&_facet=url")
        assert facets.status_code == 200
        assert 'class="facet-results"' in facets.text
        assert "img[.]example[.]nl</a>" in facets.text
        assert DEFANGED[0] + "</a>" in facets.text
        _assert_safe(facets, internal_links=True)
        selected = client.get("/h/cases?_facet=host&host=img.example.nl")
        assert "img[.]example[.]nl &middot;" in selected.text
        _assert_safe(selected, internal_links=True)
        # Read-only: the file is opened ?mode=ro and not offered for download.
        assert client.get("/h.db").status_code in (403, 404)


def test_with_a_password_hash_every_page_needs_a_login(store_db):
    password = "correct horse battery staple"
    hashed = hash_password(password)
    with serving(store_db, HOSTWATCH_SERVE_PASSWORD_HASH=hashed) as base, \
            httpx.Client(base_url=base, timeout=10) as anonymous:
        for path in ("/", "/h", "/h/cases", "/h/cases/1"):
            response = anonymous.get(path)
            assert response.status_code == 302, path
            assert response.headers["location"] == "/-/login"
            assert response.headers["content-security-policy"] == CSP
        login = anonymous.get("/-/login")
        token = re.search(r'name="csrftoken" value="([^"]+)"', login.text)
        assert token is not None
        refused = anonymous.post("/-/login", data={
            "username": "analyst", "password": "wrong", "csrftoken": token.group(1)})
        assert "Invalid username or password" in refused.text
        assert anonymous.get("/h/cases").status_code == 302
        logged_in = anonymous.post("/-/login", data={
            "username": "analyst", "password": password, "csrftoken": token.group(1)})
        assert logged_in.status_code == 302
        response = anonymous.get("/h/cases")
        assert response.status_code == 200
        _assert_safe(response)
        assert DEFANGED[0] in response.text
        metadata = anonymous.get("/-/metadata.json")
        assert metadata.status_code == 200
        assert hashed not in metadata.text  # read from the environment, never shown


def test_a_host_beyond_loopback_without_a_login_is_refused_before_binding(store_db,
                                                                        monkeypatch):
    def no_bind(*_args: object) -> None:
        raise AssertionError("bound a socket before refusing")

    monkeypatch.setattr(socket.socket, "bind", no_bind)
    result = CliRunner().invoke(main, ["--db", store_db, "serve", "--host", "0.0.0.0"],
                                env={"HOSTWATCH_SERVE_PASSWORD_HASH": ""})
    assert result.exit_code == 1
    assert "refusing to serve on 0.0.0.0" in result.output
    assert "HOSTWATCH_SERVE_PASSWORD_HASH" in result.output


def test_a_host_beyond_loopback_is_accepted_with_a_login():
    with_login = Config.from_env({}, serve_password_hash=hash_password("pw"))
    without = Config.from_env({})
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"):
        check_host(host, without)
    for host in ("0.0.0.0", "192.0.2.10", "::", "example.nl"):
        check_host(host, with_login)
        with pytest.raises(ServeError, match="refusing to serve"):
            check_host(host, without)


def test_a_postgresql_store_or_no_file_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(
        main, ["--db", "postgresql+psycopg://u@127.0.0.1:1/x", "serve"])
    assert result.exit_code == 1
    assert "serve reads a SQLite file" in result.output
    assert "hostwatch export sqlite PATH" in result.output
    result = CliRunner().invoke(main, ["--db", f"sqlite:///{tmp_path / 'none.db'}", "serve"])
    assert result.exit_code == 1
    assert "no store at" in result.output


def test_cells_are_escaped_defanged_text():
    assert cell_text("https://a.example/x.jpg?q=<script>") == \
        "hxxps://a[.]example/x[.]jpg?q=&lt;script&gt;"
    assert cell_text("2026-02-01T10:00:00.5+00:00") == "2026-02-01T10:00:00.5+00:00"
    assert cell_text(b"\x00\x01") == "&lt;binary: 2 bytes&gt;"
    assert cell_text({"value": 3, "label": "http://b.example/"}) == "hxxp://b[.]example/"
    assert cell_text(7) is None
    assert cell_text(None) is None

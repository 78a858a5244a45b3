"""`hostwatch serve` (#15 point 2): real HTTP on loopback.

The server runs as `hostwatch serve --port 0` in a child process; every page
is fetched over a real socket. What it serves is a snapshot of the analyst
views: no reported URL may be a link or a source on any page, none may be
read as it is from any table's JSON or CSV or from any SQL query, and every
response carries the Content-Security-Policy.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
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
from kernel.errors import StoreError

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
def serving(db: str, *args: str, scheme: str = "http", **env: str) -> Iterator[str]:
    """``hostwatch serve --port 0`` in a child process: its base URL, once it listens."""
    child = subprocess.Popen(
        [sys.executable, "-m", "hostwatch", "--db", db, "serve", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(**env))
    try:
        assert child.stdout is not None
        lines: list[str] = []
        for line in child.stdout:  # progress lines first, then the URL
            lines.append(line)
            found = re.search(scheme + r"://127\.0\.0\.1:\d+/", line)
            if found:
                break
        else:
            child.kill()
            pytest.fail(f"no URL announced: {lines!r} {child.communicate()[1]!r}")
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
            "table": "/hostwatch/analyst_cases",
            "row": "/hostwatch/analyst_cases/1",
            "query": "/hostwatch?" + str(httpx.QueryParams(
                sql="select url_defanged from analyst_cases")),
        }
        for name, path in pages.items():
            response = client.get(path)
            assert response.status_code == 200, (name, response.text[:500])
            _assert_safe(response)
            assert DEFANGED[0] in response.text, name
        table = client.get("/hostwatch/analyst_cases").text
        assert all(text in table for text in DEFANGED)
        for path in ("/", "/hostwatch", "/-/static/app.css",
                     "/hostwatch/analyst_cases?_sort=url_defanged", "/nothing", "/-/report"):
            response = client.get(path)
            assert response.headers["content-security-policy"] == CSP, path
        # Facets: each value shown defanged; its link stays on the server.
        facets = client.get("/hostwatch/analyst_cases?_facet=host_defanged&_facet=url_defanged")
        assert facets.status_code == 200
        assert 'class="facet-results"' in facets.text
        assert "img[.]example[.]nl</a>" in facets.text
        assert DEFANGED[0] + "</a>" in facets.text
        _assert_safe(facets, internal_links=True)
        selected = client.get("/hostwatch/analyst_cases",
                              params={"_facet": "host_defanged",
                                      "host_defanged": "img[.]example[.]nl"})
        assert "img[.]example[.]nl &middot;" in selected.text
        assert len(re.findall(r'<td class="col-case_id', selected.text)) == 1
        _assert_safe(selected, internal_links=True)
        # Read-only, and the file is not offered for download.
        assert client.get("/hostwatch.db").status_code in (403, 404)


def test_no_table_export_or_query_hands_out_a_raw_url(store_db):
    """The store's own tables (cases, checks, attributions, headers...) hold the
    URLs as they are: they are not served at all, so neither a table's JSON
    or CSV nor any SQL query can reach them."""
    with serving(store_db) as base, httpx.Client(base_url=base, timeout=10) as client:
        listing = client.get("/hostwatch.json").json()
        tables = [table["name"] for table in listing["tables"]]
        assert {"analyst_cases", "analyst_checks", "analyst_deadlines", "analyst_notices",
                "analyst_orders", "analyst_case_durations", "analyst_hosters"} <= set(tables)
        assert not {"cases", "checks", "attributions", "headers"} & set(tables)
        seen = 0
        for table in tables:
            for fmt in ("json", "csv"):
                response = client.get(f"/hostwatch/{table}.{fmt}",
                                      params={"_size": "max", "_stream": "on"})
                assert response.status_code == 200, (table, fmt, response.text[:300])
                for host in HOSTS:
                    assert host not in response.text, f"{table}.{fmt}: {host}"
                seen += response.text.count("hxxp")
        assert seen >= 6  # the defanged URLs are there, in every format
        for sql in ("select url from cases", "select * from checks",
                    "with x as (select url from cases) select * from x",
                    "select * from attributions", "select * from sqlite_master"):
            for fmt in ("json", "csv"):
                response = client.get(f"/hostwatch.{fmt}", params={"sql": sql})
                for host in HOSTS:
                    assert host not in response.text, f"{sql} ({fmt}): {host}"
        for path in ("/hostwatch/cases", "/hostwatch/cases.json", "/hostwatch/checks.csv"):
            assert client.get(path).status_code == 404, path


def test_hosters_link_to_their_line_of_the_hoster_report(store_db):
    from reports.html import hoster_anchor

    with serving(store_db) as base, httpx.Client(base_url=base, timeout=10) as client:
        report = client.get("/-/report")
        assert report.status_code == 200
        assert "<h1>" in report.text and 'id="section-dutch"' in report.text
        _assert_safe(report)
        assert DEFANGED[0] in report.text  # the still-online list, defanged
        hosters = client.get("/hostwatch/analyst_hosters")
        links = re.findall(r'<td class="col-hoster[^"]*"><a href="([^"]+)">([^<]+)</a>',
                           hosters.text)
        assert links, hosters.text[:2000]
        for href, name in links:
            assert href == "/-/report#" + hoster_anchor(name)
            assert f'id="{hoster_anchor(name)}"' in report.text, name


def test_a_snapshot_file_is_served_as_it_is(store_db, tmp_path):
    snapshot = tmp_path / "snap.db"
    with open_store(store_db) as hw:
        hw.export_sqlite(snapshot)
    with serving(f"sqlite:///{snapshot}") as base, \
            httpx.Client(base_url=base, timeout=10) as client:
        page = client.get("/hostwatch/analyst_cases")
        assert page.status_code == 200
        assert all(text in page.text for text in DEFANGED)
        _assert_safe(page)
        assert "snap.db" in client.get("/hostwatch").text  # the description names it
        assert client.get("/-/report").status_code == 404  # no store, no report


def test_a_change_to_the_store_reaches_the_pages(store_db, tmp_path):
    checks = tmp_path / "more.csv"
    checks.write_text("case_id,checked_at,verdict\nR2,2026-02-02T12:00:00Z,online\n",
                      encoding="utf-8")
    with serving(store_db, "--refresh", "0.2") as base, \
            httpx.Client(base_url=base, timeout=10) as client:
        def checked() -> int:
            return len(client.get("/hostwatch/analyst_checks.json").json()["rows"])

        assert checked() == 1
        with open_store(store_db) as hw:
            assert hw.import_checks(checks).added == 1
        deadline = time.monotonic() + 20
        while checked() != 2:
            assert time.monotonic() < deadline, "the new check never showed"
            time.sleep(0.2)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_stopping_removes_the_snapshots(store_db, tmp_path, stop):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-m", "hostwatch", "--db", store_db, "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(TMPDIR=str(scratch)))
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if "http://127.0.0.1:" in line:
                break
        assert [p.name[:16] for p in scratch.iterdir()] == ["hostwatch-serve-"]
        child.send_signal(stop)
        child.wait(timeout=20)
    finally:
        child.kill()
        child.wait()
    assert list(scratch.iterdir()) == []  # stopped cleanly


def test_with_a_password_hash_every_page_needs_a_login(store_db):
    password = "correct horse battery staple"
    hashed = hash_password(password)
    with serving(store_db, HOSTWATCH_SERVE_PASSWORD_HASH=hashed) as base, \
            httpx.Client(base_url=base, timeout=10) as anonymous:
        for path in ("/", "/hostwatch", "/hostwatch/analyst_cases", "/-/report",
                     "/hostwatch/still_online"):
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
        assert anonymous.get("/hostwatch/analyst_cases").status_code == 302
        logged_in = anonymous.post("/-/login", data={
            "username": "analyst", "password": password, "csrftoken": token.group(1)})
        assert logged_in.status_code == 302
        cookie = logged_in.headers["set-cookie"]
        assert cookie.startswith("ds_actor=") and "HttpOnly" in cookie, cookie
        assert "Secure" not in cookie  # plain HTTP on loopback
        response = anonymous.get("/hostwatch/analyst_cases")
        assert response.status_code == 200
        _assert_safe(response)
        assert DEFANGED[0] in response.text
        metadata = anonymous.get("/-/metadata.json")
        assert metadata.status_code == 200
        assert hashed not in metadata.text  # read from the environment, never shown
    with serving(store_db, HOSTWATCH_SERVE_PASSWORD_HASH=hashed) as base, \
            httpx.Client(base_url=base, timeout=10) as client:
        # No HTTP Basic login: the header is dropped, whatever it holds.
        for credentials in (f"analyst:{password}", "anälyst:pässword", "garbage"):
            basic = base64.b64encode(credentials.encode()).decode()
            response = client.get("/hostwatch/analyst_cases",
                                  headers={"Authorization": f"Basic {basic}"})
            assert response.status_code == 302, credentials
        # The password tool (which hashes for anyone) is not served.
        assert client.get("/-/password-tool").status_code == 404
        assert client.post("/-/password-tool", data={"password": "x"}).status_code == 404
        # Guessing is slowed: ten attempts a minute per address, then 429.
        login = client.get("/-/login")
        token = re.search(r'name="csrftoken" value="([^"]+)"', login.text)
        assert token is not None
        answers = [client.post("/-/login", data={
            "username": "analyst", "password": f"guess {n}", "csrftoken": token.group(1)}
        ).status_code for n in range(11)]
        assert answers == [200] * 10 + [429]
        right = client.post("/-/login", data={
            "username": "analyst", "password": password, "csrftoken": token.group(1)})
        assert right.status_code == 429  # even the right one, until the minute is over


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


def test_a_store_that_cannot_be_opened_or_no_file_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(
        main, ["--db", "postgresql+psycopg://u@127.0.0.1:1/x", "serve"])
    assert result.exit_code == 1
    assert "cannot open the store" in result.output
    result = CliRunner().invoke(main, ["--db", f"sqlite:///{tmp_path / 'none.db'}", "serve"])
    assert result.exit_code == 1
    assert "no store at" in result.output
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    result = CliRunner().invoke(main, ["--db", f"sqlite:///{junk}", "serve"])
    assert result.exit_code == 1
    assert f"{junk} is not a SQLite database" in result.output


@pytest.mark.postgres
def test_a_postgresql_store_is_served_through_its_snapshot(pg_url, tmp_path):
    reports = tmp_path / "reports.csv"
    reports.write_text(REPORTS, encoding="utf-8")
    with open_store(pg_url) as hw:
        assert hw.import_reports(reports).added == 3
    with serving(pg_url) as base, httpx.Client(base_url=base, timeout=10) as client:
        page = client.get("/hostwatch/analyst_cases")
        assert page.status_code == 200
        assert all(text in page.text for text in DEFANGED)
        _assert_safe(page)
        assert client.get("/-/report").status_code == 200


def test_cells_are_escaped_defanged_text():
    assert cell_text("https://a.example/x.jpg?q=<script>") == \
        "hxxps://a[.]example/x[.]jpg?q=&lt;script&gt;"
    assert cell_text("2026-02-01T10:00:00.5+00:00") == "2026-02-01T10:00:00.5+00:00"
    assert cell_text(b"\x00\x01") == "&lt;binary: 2 bytes&gt;"
    assert cell_text({"value": 3, "label": "http://b.example/"}) == "hxxp://b[.]example/"
    assert cell_text(7) is None
    assert cell_text(None) is None


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made here (PEM files)."""
    from ipaddress import ip_address

    from cryptography import x509

    from tests.builders import self_signed

    return self_signed(folder, x509.IPAddress(ip_address("127.0.0.1")))


def test_https_with_a_certificate_and_a_clear_error_for_half_a_pair(store_db, tmp_path):
    import ssl

    cert, key = _self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    with serving(store_db, "--tls-cert", str(cert), "--tls-key", str(key),
                 scheme="https", HOSTWATCH_SERVE_PASSWORD_HASH=hash_password("pw")) as base:
        assert base.startswith("https://")
        with httpx.Client(base_url=base, timeout=10, verify=trust) as client:
            page = client.get("/hostwatch/analyst_cases")
            assert page.status_code == 302  # a login first
            token = re.search(r'name="csrftoken" value="([^"]+)"', client.get("/-/login").text)
            assert token is not None
            logged_in = client.post("/-/login", data={
                "username": "analyst", "password": "pw", "csrftoken": token.group(1)})
            cookie = logged_in.headers["set-cookie"]
            assert "HttpOnly" in cookie and "Secure" in cookie, cookie
            page = client.get("/hostwatch/analyst_cases")
            assert page.status_code == 200
            _assert_safe(page)
        with pytest.raises(httpx.HTTPError):  # plain HTTP gets no page
            httpx.get(base.replace("https://", "http://") + "hostwatch", timeout=5)
    for args, message in (
            (["--tls-cert", str(cert)], "needs both --tls-cert and --tls-key"),
            (["--tls-cert", str(cert), "--tls-key", str(tmp_path / "none.pem")],
             "--tls-key " + str(tmp_path / "none.pem") + ": no such file"),
            (["--tls-cert", str(key), "--tls-key", str(key)], "cannot use --tls-cert")):
        result = CliRunner().invoke(main, ["--db", store_db, "serve", "--port", "0", *args])
        assert result.exit_code == 1, result.output
        assert message in result.output


def test_a_new_snapshot_waits_until_the_store_stands_still(store_db, tmp_path):
    """While a crawl keeps writing, the store is not read over and over: a new
    snapshot once the store stood still for one look, or after an hour."""
    from hostwatch import serve as serving

    served = serving.open_served(Config.from_env({}, db=store_db), refresh=0)
    served.build_seconds = 0.0  # pacing: below
    try:
        assert served.due() is False  # nothing changed
        for n, at in enumerate(("2026-02-03T12:00:00Z", "2026-02-04T12:00:00Z")):
            more = tmp_path / f"more{n}.csv"
            more.write_text(f"case_id,checked_at,verdict\nR1,{at},online\n", encoding="utf-8")
            with open_store(store_db) as hw:
                assert hw.import_checks(more).added == 1
            assert served.due() is False  # changed since the last look: still writing
        assert served.due() is True  # stood still for one look
        served.fingerprint = served.seen  # as if written now
        assert served.due() is False
        served.built -= serving.MAX_AGE_SECONDS  # an hour old: "now" has moved
        assert served.due() is True
        served.built = time.monotonic()
        served.build_seconds = 1000.0  # a large store: paced
        served.fingerprint = None
        assert served.due() is False
    finally:
        served.close()
    assert served.folder is not None and not served.folder.exists()


def test_each_new_snapshot_replaces_the_old_one_which_is_then_removed(store_db, tmp_path):
    """Refresh after refresh, the pages show the store's latest state, and
    each retired snapshot file is removed once its grace time is over."""
    import asyncio

    from hostwatch import serve as serving

    served = serving.open_served(Config.from_env({}, db=store_db), refresh=0)
    served.grace = 0.05
    first = served.snapshot

    async def refreshed_twice() -> list[int]:
        counts = []
        for n, at in enumerate(("2026-02-03T12:00:00Z", "2026-02-04T12:00:00Z")):
            more = tmp_path / f"more{n}.csv"
            more.write_text(f"case_id,checked_at,verdict\nR1,{at},online\n", encoding="utf-8")
            with open_store(store_db) as hw:
                assert hw.import_checks(more).added == 1
            served.seen = served.store_fingerprint()  # stood still for one look
            served.build_seconds = 0.0  # no pacing here
            assert await served.refresh_once() is True
            await asyncio.sleep(0.3)  # past the grace time: the old file is retired
            assert served.datasette is not None
            page = await served.datasette.client.get("/hostwatch/analyst_checks.json")
            assert page.status_code == 200, page.text[:300]
            counts.append(len(page.json()["rows"]))
            assert served.snapshot.exists()
        return counts

    try:
        assert asyncio.run(refreshed_twice()) == [2, 3]
        assert served.folder is not None
        assert sorted(p.name for p in served.folder.iterdir()) == [served.snapshot.name]
        assert served.snapshot != first
    finally:
        served.close()


def test_a_password_that_is_no_hash_is_refused(store_db):
    for value in ("correct horse", " ", "argon2$a$b$c", "pbkdf2_sha256$x$salt$hash"):
        result = CliRunner().invoke(main, ["--db", store_db, "serve", "--host", "0.0.0.0"],
                                    env={"HOSTWATCH_SERVE_PASSWORD_HASH": value})
        assert result.exit_code == 1, value
        assert "is not a password hash" in result.output, value


def test_a_file_that_is_no_store_is_refused_and_left_as_it_was(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE foo (x)")
        conn.commit()
    for path in (empty, other):
        before = path.read_bytes()
        result = CliRunner().invoke(main, ["--db", f"sqlite:///{path}", "serve"])
        assert result.exit_code == 1
        assert "neither a hostwatch store nor a snapshot" in result.output
        assert path.read_bytes() == before  # not migrated, not switched to WAL
        assert not Path(f"{path}-wal").exists()


def test_a_port_in_use_is_refused_before_any_snapshot(store_db, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["--db", store_db, "serve", "--port", str(port)],
                                    env={"TMPDIR": str(tmp_path)})
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "snapshot" not in result.output
    assert not list(tmp_path.glob("hostwatch-serve-*"))


def test_tls_files_that_cannot_serve_are_clear_errors(store_db, tmp_path):
    from cryptography.hazmat.primitives import serialization

    cert, key = _self_signed(tmp_path)
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    for args, message in (
            (["--tls-cert", str(cert), "--tls-key", str(locked)], "is encrypted"),
            (["--tls-cert", str(tmp_path), "--tls-key", str(key)], "not a file"),
            (["--tls-cert", str(cert), "--tls-key", str(cert)], "not a PEM certificate")):
        result = CliRunner().invoke(main, ["--db", store_db, "serve", "--port", "0", *args],
                                    input="")
        assert result.exit_code == 1, result.output
        assert message in result.output, result.output
        assert "pass phrase:" not in result.output.lower().replace("a pass phrase", "")


def test_csv_exports_run_no_formula_in_a_spreadsheet(tmp_path):
    reports = tmp_path / "reports.csv"
    reports.write_text(
        "id,url,category,reported_at\n"
        '"=HYPERLINK(""http://x.example/"",""y"")",https://a.example/1.jpg,csam,'
        "2026-02-01T10:00:00Z\n"
        "@SUM(1),https://a.example/2.jpg,csam,2026-02-01T10:00:00Z\n"
        "-2+3,https://a.example/3.jpg,csam,2026-02-01T10:00:00Z\n"
        "-7,https://a.example/4.jpg,csam,2026-02-01T10:00:00Z\n",
        encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'h.db'}"
    with open_store(db) as hw:
        assert hw.import_reports(reports).added == 4
    expected = {'\'=HYPERLINK("http://x.example/","y")', "'@SUM(1)", "'-2+3", "-7"}
    with serving(db) as base, httpx.Client(base_url=base, timeout=10) as client:
        for params in ({}, {"_stream": "on", "_dl": "on"}, {"_size": "2"}):
            response = client.get("/hostwatch/analyst_cases.csv", params=params)
            assert response.status_code == 200
            assert "content-length" not in response.headers or \
                int(response.headers["content-length"]) == len(response.content)
            rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
            found = {row["external_id"] for row in rows}
            assert found <= expected and (len(found) == 4 or params), (params, found)
            assert all(row["case_id"].isdigit() for row in rows)
        query = client.get("/hostwatch.csv", params={"sql": "select '=1+1' as f, -4 as n"})
        assert list(csv.reader(io.StringIO(query.text))) == [["f", "n"], ["'=1+1", "-4"]]
        # An error page on a .csv address stays the page it is.
        missing = client.get("/hostwatch/nosuch.csv")
        assert missing.status_code == 404
        assert missing.text.lstrip().lower().startswith("<!doctype html")


def test_the_csv_guard_sees_whole_records_however_the_stream_is_cut():
    from hostwatch.serve import _CsvGuard

    body = ('id,name\r\n1,"two\r\nlines, =not a start"\r\n2,=1+1\r\n3,"say ""hi"""\r\n'
            "4,-5\r\n5,\"\n=x\"\r\n6,caf\u00e9\r\n").encode()
    whole = _CsvGuard().feed(body, True)
    assert list(csv.reader(io.StringIO(whole.decode(), newline=""))) == [
        ["id", "name"], ["1", "two\r\nlines, =not a start"], ["2", "'=1+1"],
        ["3", 'say "hi"'], ["4", "-5"], ["5", "\n=x"], ["6", "caf\u00e9"]]
    for cut in range(1, len(body)):
        guard = _CsvGuard()
        assert guard.feed(body[:cut], False) + guard.feed(body[cut:], True) == whole, cut


def test_a_failed_or_stopped_snapshot_changes_nothing_and_is_tried_again(store_db, tmp_path,
                                                                        monkeypatch):
    import asyncio

    import store.snapshot
    from hostwatch import serve as serving

    served = serving.open_served(Config.from_env({}, db=store_db), refresh=0)
    served.build_seconds = 0.0
    try:
        before, first = served.fingerprint, served.snapshot
        more = tmp_path / "more.csv"
        more.write_text("case_id,checked_at,verdict\nR2,2026-02-05T12:00:00Z,online\n",
                        encoding="utf-8")
        with open_store(store_db) as hw:
            assert hw.import_checks(more).added == 1
        served.seen = served.store_fingerprint()

        def full(*_args: object, **_kwargs: object) -> None:
            raise StoreError("cannot write the snapshot: database or disk is full")

        monkeypatch.setattr(store.snapshot, "write_snapshot", full)
        with pytest.raises(StoreError, match="disk is full"):
            asyncio.run(served.refresh_once())
        assert (served.fingerprint, served.snapshot) == (before, first)  # still served
        monkeypatch.undo()
        assert served.due() is True  # the next look tries again
        # A stop while writing: abandoned within the writing, nothing left.
        served.stopping.set()
        with pytest.raises(Exception, match="stopping"):
            served.write()
        assert served.folder is not None
        assert sorted(p.name for p in served.folder.iterdir()) == [first.name]
    finally:
        served.close()


def test_a_retired_snapshot_waits_for_the_requests_it_still_serves(store_db, tmp_path):
    import asyncio

    from hostwatch import serve as serving

    served = serving.open_served(Config.from_env({}, db=store_db), refresh=0)
    served.grace = 0.05
    old = served.current
    assert old is not None

    async def refreshed_while_busy() -> None:
        old.busy = 1  # a long CSV export still streaming from the old snapshot
        served.fingerprint, served.build_seconds = None, 0.0
        served.seen = served.store_fingerprint()
        assert await served.refresh_once() is True
        await asyncio.sleep(0.3)
        assert old.path.exists()  # kept while the request runs
        old.busy = 0
        await asyncio.sleep(0.3)
        assert not old.path.exists()  # then retired

    try:
        asyncio.run(refreshed_while_busy())
    finally:
        served.close()


def test_in_place_changes_to_the_store_count_as_changes(store_db):
    from sqlalchemy import text as sql

    from hostwatch import serve as serving

    served = serving.open_served(Config.from_env({}, db=store_db), refresh=0)
    try:
        store = served.hostwatch.store
        for change in ("UPDATE cases SET state = 'removed' WHERE external_id = 'R1'",
                       "UPDATE cases SET check_count = check_count + 1",
                       "UPDATE cases SET removed_at = reported_at WHERE external_id = 'R2'"):
            before = served.store_fingerprint()
            with store.engine.begin() as conn:
                conn.execute(sql(change))
            assert served.store_fingerprint() != before, change
    finally:
        served.close()


def test_login_attempts_are_limited_per_address_and_in_all(monkeypatch):
    from hostwatch import serve as serving

    monkeypatch.setattr(serving, "_logins", {})
    allowed = [serving._login_allowed("192.0.2.1", 0.0) for _ in range(11)]
    assert allowed == [True] * 10 + [False]
    # One IPv6 /64 is one address.
    v6 = [serving._login_allowed(f"2001:db8::{n:x}", 1.0) for n in range(11)]
    assert v6 == [True] * 10 + [False]
    # Thirty a minute from all addresses together, then none...
    many = [serving._login_allowed(f"198.51.100.{n}", 2.0) for n in range(20)]
    assert many.count(True) == 10 and many[-1] is False
    # ...until the minute is over.
    assert serving._login_allowed("203.0.113.7", 62.5) is True


def test_crawled_checks_show_their_addresses_only_defanged(tmp_path):
    """A check that followed a redirect, attributed to a registry hoster: the
    requested URL, the redirect target and the host name attributed are
    shown defanged in every format; the hoster links to its report line."""
    from datetime import UTC, datetime

    from kernel.model import Verdict
    from reports.html import hoster_anchor
    from store import Store
    from tests.builders import add_case, add_hoster

    db = f"sqlite:///{tmp_path / 'h.db'}"
    store = Store(db)
    store.upgrade()
    at = datetime(2026, 2, 1, 10, tzinfo=UTC)
    with store.transaction() as session:
        hoster = add_hoster(session, "polder", "Polder Servers B.V.", "NL", updated_at=at)
        add_case(session, "C1", at, [(at, Verdict.ONLINE)],
                 url="https://start.redirect-host.test/a.jpg",
                 check_fields={"final_url": "https://final.landing-host.test/b.jpg",
                               "peer_ip": "198.51.100.20", "http_status": 200},
                 hoster=hoster,
                 attribution={"hostname": "final.landing-host.test", "ip": "198.51.100.20",
                              "asn": 64500, "as_name": "POLDER-AS", "jurisdiction": "NL",
                              "dutch": True})
    store.dispose()
    hosts = ("start.redirect-host.test", "final.landing-host.test")
    with serving(db) as base, httpx.Client(base_url=base, timeout=10) as client:
        for fmt in ("json", "csv"):
            for table in ("analyst_checks", "analyst_cases"):
                body = client.get(f"/hostwatch/{table}.{fmt}").text
                for host in hosts:
                    assert host not in body, (table, fmt, host)
            checks = client.get(f"/hostwatch/analyst_checks.{fmt}").text
            assert "hxxps://final[.]landing-host[.]test/b[.]jpg" in checks
            assert "final[.]landing-host[.]test" in checks
        history = client.get("/hostwatch/case_history", params={"case": "1"})
        assert history.status_code == 200
        for host in hosts:
            assert host not in history.text
        cases = client.get("/hostwatch/analyst_cases").text
        assert f'href="/-/report#{hoster_anchor("Polder Servers B.V.")}"' in cases
        report = client.get("/-/report").text
        assert f'id="{hoster_anchor("Polder Servers B.V.")}"' in report
        _assert_safe(client.get("/hostwatch/analyst_checks"))

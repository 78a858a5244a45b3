"""The safety rule, proven: no byte of a served body is written anywhere.

Every scripted host serves bodies holding a unique marker. After a crawl
(debug logging on, so the logs say as much as they ever will), no file under
the data directory (the SQLite store and its journal included), the temp
directory or the logs contains the marker.

Hostile hosts go further (#10): replies with no status line, garbage or
oversized headers, broken chunking, a ``data:`` Location..., each with a
marker where a parser's error message would quote it, crawled at DEBUG and
at INFO, over HTTP and in the browser. The markers sit only where hostwatch
keeps no evidence on purpose: hostwatch stores the status, selected headers
(crawler.spiders.recheck.KEPT_HEADERS, through kernel.redact.evidence_header)
and the URLs it requested, so a marker in a Server header or a redirect URL
would rightly be found in the store.

Pictures that get decoded for their PDQ (#12) go further still: re-encodings
of the reported picture and hostile images, each with a marker in a metadata
field (EXIF, a JPEG comment, a PNG text chunk) or after its end, are decoded
by the worker processes, and neither the marker nor any file of theirs is
left behind.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from crawler.perceptual import pdq_of_image
from lab import Huge, Raw, Redirect, Serve, SoftNotFound, Status, marker_body
from lab.hostile import hostile_replies
from lab.images import hostile, picture
from store import Store
from tests.crawler.conftest import add_cases, checks_by_url, run_crawl


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


@pytest.mark.slow
@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
def test_hostile_replies_leave_no_server_bytes_anywhere(sqlite_url, net, tmp_path, level):
    """Malformed replies whose parser errors quote what the server sent: at
    every log level, nothing the server sent outside the evidence hostwatch
    keeps on purpose (status, selected headers, redirect URLs) reaches a log,
    the store or a file. The markers sit only where no evidence is kept."""
    marker = f"HOSTILE-{uuid.uuid4().hex}".encode()
    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("hostile.test")
    replies = hostile_replies(marker)
    for path, data in replies.items():
        host.route(path, Raw(data))
    # The soft-404 probe of a served URL gets a hostile reply too.
    host.default(Raw(replies["/garbage-header"]))
    urls = [host.url(path) for path in replies]
    add_cases(store, urls)

    result = run_crawl(sqlite_url, net, tmp_path, HOSTWATCH_LOG_LEVEL=level)
    assert result.returncode in (0, 4), result.stderr[-3000:]
    store.dispose()

    checks = checks_by_url(store)
    assert set(checks) == set(urls)  # every hostile reply was fetched and recorded
    leaks = [line for line in (result.stdout + result.stderr).splitlines()
             if marker.decode() in line]
    assert leaks == []
    assert files_containing(tmp_path, marker) == []
    for url in urls:  # the record says what hostwatch saw, in its own words
        check = checks[url][0]
        assert marker.decode() not in repr(vars(check))
    if level == "DEBUG":
        assert "DEBUG" in result.stderr


@pytest.mark.slow
def test_hostile_replies_to_the_browser_leave_no_server_bytes_anywhere(sqlite_url, net,
                                                                      tmp_path, browser_temp):
    """The same replies checked in Chromium (through hostwatch's proxy), plus a
    page whose scripts log, throw and request URLs carrying the marker: at
    DEBUG, no log, file or stored field holds it."""
    marker = f"HOSTILE-{uuid.uuid4().hex}".encode()
    text = marker.decode()
    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("hostile.test")
    # A broken chunked body keeps a browser waiting for the rest: left out.
    replies = {path: data for path, data in hostile_replies(marker).items()
               if path != "/bad-chunk-size"}
    for path, data in replies.items():
        host.route(path, Raw(data))
    script = (f'console.log("{text}"); console.error("{text}"); document.title = "{text}";'
              f'setTimeout(() => {{ throw new Error("{text}"); }}, 10);'
              f'Array.prototype.includes = function () {{ throw new Error("{text}"); }};'
              f'fetch("/x-{text}.json");')
    host.route("/page.html", Serve(f"<!doctype html><title>{text}</title><p>hello</p>"
                                   f"<script>{script}</script>".encode(),
                                   content_type="text/html"))
    host.default(Raw(replies["/garbage-header"]))
    urls = [host.url(path) for path in [*replies, "/page.html"]]
    add_cases(store, urls)
    result = run_crawl(sqlite_url, net, tmp_path, "--browser", timeout=300,
                       HOSTWATCH_LOG_LEVEL="DEBUG", HOSTWATCH_BROWSER_TIMEOUT="10",
                       HOSTWATCH_BROWSER_TEMP=str(browser_temp))
    assert result.returncode in (0, 4), result.stderr[-3000:]
    store.dispose()

    checks = checks_by_url(store)
    assert set(checks) == set(urls)
    assert {c.method for url in urls for c in checks[url]} == {"browser"}
    for path in ("/no-status-line", "/garbage-status", "/garbage-version"):
        # The host sent no HTTP: a bad response, not a 400 "from the host".
        assert checks[host.url(path)][0].verdict == "bad_response", path
    leaks = [line for line in (result.stdout + result.stderr).splitlines() if text in line]
    assert leaks == []
    assert files_containing(tmp_path, marker) == []
    for url in urls:
        assert text not in repr(vars(checks[url][0]))
    assert "DEBUG" in result.stderr


@pytest.mark.slow
def test_a_page_cannot_write_into_the_stored_urls_without_a_request(sqlite_url, net, tmp_path,
                                                                     browser_temp):
    """A page's script can change the address bar without any request
    (history.pushState, a fragment): that URL is text the page wrote, not a
    URL hostwatch requested, so it is not stored as the final URL or as a
    redirect hop. A navigation that did request a URL is still recorded."""
    marker = f"HOSTILE-{uuid.uuid4().hex}"
    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("writer.test")
    pages = {
        "/push.html": f'history.pushState({{}}, "", "/{marker}");',
        "/replace.html": f'history.replaceState({{}}, "", "/p?{marker}");',
        "/fragment.html": f'location.hash = "{marker}";',
        "/moves.html": 'location.href = "/landing.html";',
    }
    for path, script in pages.items():
        host.route(path, Serve(f"<!doctype html><p>hello</p><script>{script}</script>"
                               .encode(), content_type="text/html"))
    host.route("/landing.html", Serve(b"<!doctype html><p>landed</p>",
                                      content_type="text/html"))
    # HTTP redirects whose Location carries a fragment or credentials.
    host.route("/frag-redirect", Redirect(f"/landing.html#{marker}"))
    host.route("/creds-redirect", Redirect(f"http://u:{marker}@writer.test:{net.port}"
                                           "/landing.html"))
    urls = [host.url(path) for path in [*pages, "/frag-redirect", "/creds-redirect"]]
    add_cases(store, urls)
    result = run_crawl(sqlite_url, net, tmp_path, "--browser", timeout=300,
                       HOSTWATCH_LOG_LEVEL="DEBUG", HOSTWATCH_BROWSER_TIMEOUT="10",
                       HOSTWATCH_BROWSER_TEMP=str(browser_temp))
    assert result.returncode in (0, 4), result.stderr[-3000:]
    store.dispose()

    checks = checks_by_url(store)
    leaks = {url: {k: v for k, v in vars(checks[url][0]).items() if marker in repr(v)}
             for url in urls}
    assert {url: fields for url, fields in leaks.items() if fields} == {}
    assert {checks[url][0].method for url in urls} == {"browser"}
    assert marker not in result.stdout + result.stderr
    moved = checks[host.url("/moves.html")][0]
    assert moved.final_url == host.url("/landing.html")


@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
def test_a_redirect_s_fragment_and_credentials_are_neither_requested_nor_stored(
        sqlite_url, net, tmp_path, level):
    """A fragment never reaches a server and hostwatch stores no credentials
    (README, "Reported URLs"): a Location that carries either is followed
    to the URL a server would be asked for, and that URL is what the check,
    the soft-404 probe and the logs name, not the server's extra text."""
    marker = f"HOSTILE-{uuid.uuid4().hex}"
    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("creds.test")
    page = marker_body("page", kind="html")
    host.route("/a.html", Serve(page, content_type="text/html"))
    host.route("/fragment", Redirect(f"/a.html#{marker}"))
    host.route("/userinfo", Redirect(f"http://u:{marker}@creds.test:{net.port}/a.html"))
    host.route("/both", Redirect(f"http://{marker}@creds.test:{net.port}/a.html#{marker}"))
    host.default(Status(404))
    urls = [host.url(p) for p in ("/fragment", "/userinfo", "/both")]
    add_cases(store, urls)

    result = run_crawl(sqlite_url, net, tmp_path, HOSTWATCH_LOG_LEVEL=level)
    assert result.returncode == 0, result.stderr[-3000:]
    store.dispose()

    checks = checks_by_url(store)
    for url in urls:
        check = checks[url][0]
        assert (check.verdict, check.final_url) == ("online", host.url("/a.html")), url
        assert check.redirect_chain == [url]
        assert marker not in repr(vars(check))
    assert marker not in result.stdout + result.stderr
    assert files_containing(tmp_path, marker.encode()) == []


def marked_pictures(marker: str) -> dict[str, tuple[bytes, str]]:
    """The reported picture and its re-encodings, each carrying ``marker`` in
    its metadata, and hostile images carrying it too: path -> (bytes, type)."""
    text = marker.encode()
    exif = Image.Exif()
    exif[0x010E] = marker  # ImageDescription
    original = picture(1)

    def encode(fmt: str, **options: object) -> bytes:
        out = io.BytesIO()
        original.save(out, fmt, **options)
        return out.getvalue()

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", marker)
    reported = encode("JPEG", quality=92, exif=exif.tobytes(), comment=text)
    files = {
        "/reported.jpg": (reported, "image/jpeg"),
        "/recompressed.jpg": (encode("JPEG", quality=40, comment=text), "image/jpeg"),
        "/converted.webp": (encode("WEBP", quality=70, exif=exif.tobytes()), "image/webp"),
        "/converted.png": (encode("PNG", pnginfo=info), "image/png"),
        "/truncated.jpg": (reported[: len(reported) // 2], "image/jpeg"),
        "/lies.jpg": (marker_body(marker, kind="html"), "image/jpeg"),
    }
    for name in ("bomb", "canvas", "header_only"):  # the marker after the file's end
        body, content_type = hostile()[name]
        files[f"/{name}.png"] = (body + text, content_type)
    return files


def listing(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


@pytest.mark.slow
def test_decoded_pictures_leave_no_byte_and_no_file_anywhere(sqlite_url, net, tmp_path):
    marker = f"PICTURE-{uuid.uuid4().hex}"
    files = marked_pictures(marker)
    reported = files["/reported.jpg"][0]
    assert marker.encode() in reported
    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("pictures.test")
    for path, (body, content_type) in files.items():
        host.route(path, Serve(body, content_type=content_type))
    urls = [host.url(path) for path in files]
    learning = host.url("/reported.jpg")  # a SHA-256 only: its PDQ is learned
    add_cases(store, urls, refs=dict.fromkeys(urls, hashlib.sha256(reported).hexdigest()),
              pdqs={url: pdq_of_image(reported, 50_000_000).hash or ""
                    for url in urls if url != learning})
    quiet = {"HOSTWATCH_LOG_LEVEL": "DEBUG", "HOSTWATCH_SOFT404_PROBE": "0"}

    # A crawl that decodes nothing, for the files a crawl leaves anyway...
    first = run_crawl(sqlite_url, net, tmp_path, HOSTWATCH_PDQ="0", **quiet)
    assert first.returncode == 0, first.stderr[-3000:]
    before = listing(tmp_path)
    # ...then one that decodes every picture in its worker processes.
    result = run_crawl(sqlite_url, net, tmp_path, **quiet)
    assert result.returncode == 0, result.stderr[-3000:]
    store.dispose()

    checks = checks_by_url(store)
    decoded = {path: checks[host.url(path)][-1] for path in files}
    assert [decoded[path].verdict for path in ("/recompressed.jpg", "/converted.webp",
                                               "/converted.png")] == ["reencoded"] * 3
    assert decoded["/reported.jpg"].body_pdq is not None  # decoded to learn its PDQ
    # Every picture but the page served as image/jpeg (its bytes say it is none).
    assert "hostwatch/pdq_decoded': 8" in result.stderr
    # The pixels and the metadata went nowhere: no marker in any file, log
    # or stored field, no new file in the data dir, temp dir or elsewhere.
    assert files_containing(tmp_path, marker.encode()) == []
    assert marker not in result.stdout + result.stderr
    assert all(marker not in repr(vars(check)) for check in decoded.values())
    assert listing(tmp_path) == before
    assert list((tmp_path / "tmp").iterdir()) == []
    assert "DEBUG" in result.stderr

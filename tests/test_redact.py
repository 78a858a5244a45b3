"""kernel.redact: no log line quotes what a server sent, whoever logs it.

The exceptions are the real ones aiohttp and Scrapy raise for hostile
replies (their messages quote the bytes they choke on); the records go
through the logging module as in a crawl.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest
from aiohttp.http_exceptions import BadStatusLine, LineTooLong
from scrapy import Request
from scrapy.exceptions import DownloadFailedError

from crawler.errors import RefusedTarget
from crawler.verdict import ErrorKind
from kernel import redact
from kernel.errors import ConfigError, StoreError
from kernel.urls import Refusal, UrlError

MARKER = "MATERIAL-5c1e0b9d"


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """Everything logged while kernel.redact is installed, formatted as Scrapy does."""
    factory, hook = logging.getLogRecordFactory(), sys.excepthook
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("[%(name)s] %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    redact.install()
    try:
        yield out
    finally:
        logging.setLogRecordFactory(factory)
        sys.excepthook = hook
        root.removeHandler(handler)
        root.setLevel(level)


def hostile_failure() -> DownloadFailedError:
    """What Scrapy's aiohttp handler raises for a reply without a status line."""
    try:
        try:
            raise BadStatusLine(f"<p>{MARKER}</p>")
        except BadStatusLine as exc:
            raise DownloadFailedError(str(exc)) from exc
    except DownloadFailedError as outer:
        return outer


def test_the_parsers_quote_the_server_in_their_messages():
    # Why this module exists: str() of these exceptions is the server's bytes.
    assert MARKER in str(hostile_failure())
    assert MARKER in str(LineTooLong(MARKER.encode() + b"a" * 100, 8190))


def test_a_library_message_that_is_not_known_safe_is_withheld(log):
    logging.getLogger("aiohttp.client").debug("Bad status line %r", MARKER)
    logging.getLogger("twisted").error(f"Unhandled error: {MARKER}")
    text = log.getvalue()
    assert MARKER not in text
    assert "[aiohttp.client message withheld: " in text
    assert "[twisted message withheld: " in text


def test_hostwatch_own_line_keeps_its_words_but_not_an_exception_message(log):
    logging.getLogger("crawler.spiders.recheck").debug("probe of %s failed: %s",
                                                       "http://a.test/x", hostile_failure())
    text = log.getvalue()
    assert MARKER not in text
    assert "probe of http://a.test/x failed: DownloadFailedError <- BadStatusLine" in text


def test_hostwatch_own_exception_keeps_its_message(log):
    refused = RefusedTarget(ErrorKind.BLOCKED, "a.test -> loopback address")
    logging.getLogger("recheck").error("not fetched: %s", refused)
    assert "not fetched: RefusedTarget: a.test -> loopback address" in log.getvalue()


@pytest.mark.parametrize("error", [
    StoreError("cannot open the store sqlite:///x.db: locked"),
    ConfigError("HOSTWATCH_TIMEOUT='x': not a number"),
    UrlError(Refusal.SCHEME, "ftp"),
])
def test_errors_of_every_layer_keep_their_message(log, error):
    """The kernel's and the outbound layer's errors are hostwatch's own words too."""
    logging.getLogger("outbound.dns").warning("failed: %s", error)
    assert f"[outbound.dns] WARNING: failed: {type(error).__name__}: {error}" in log.getvalue()


def test_every_product_package_but_the_lab_speaks_hostwatch_own_words():
    from tests.test_layers import LAYERS

    assert set(redact.OWN_PACKAGES) == set(LAYERS) - {"lab"}


def test_a_traceback_keeps_its_frames_and_class_names_not_the_message(log):
    try:
        raise hostile_failure()
    except DownloadFailedError:
        logging.getLogger("scrapy.core.scraper").exception("Error downloading %(request)s",
                                                           {"request": Request("http://a.test/")})
    text = log.getvalue()
    assert MARKER not in text
    assert "Error downloading <GET http://a.test/>" in text
    assert "Traceback (most recent call last):" in text
    assert "in hostile_failure" in text  # the frames are there
    assert text.rstrip().endswith("DownloadFailedError <- BadStatusLine")


def test_a_known_scrapy_template_keeps_settings_but_withholds_quoted_text(log):
    logging.getLogger("scrapy.core.scraper").error(
        "Error downloading %(request)s: %(errmsg)s",
        {"request": Request("http://a.test/img.jpg"), "errmsg": f"Bad status line {MARKER}"})
    logging.getLogger("scrapy.core.engine").info("Closing spider (%(reason)s)",
                                                 {"reason": "finished"})
    text = log.getvalue()
    assert MARKER not in text
    assert "Error downloading <GET http://a.test/img.jpg>: <text withheld: " in text
    assert "Closing spider (finished)" in text


def test_bytes_passed_to_a_log_line_are_described(log):
    logging.getLogger("crawler.handler").debug("received %s", MARKER.encode())
    text = log.getvalue()
    assert MARKER not in text
    assert "received <bytes withheld: 17 bytes, sha256 " in text


def test_install_twice_redacts_once(log):
    redact.install()
    logging.getLogger("aiohttp").warning("%s", MARKER)
    assert log.getvalue().count("withheld") == 1


@pytest.mark.parametrize("value", ["http://a.test/removed.jpg", "HTTPS://a.test/",
                                   "/login?next=/x", "removed.html"])
def test_a_stored_location_that_is_an_address_is_kept(value):
    assert redact.evidence_header("location", value) == value


@pytest.mark.parametrize("value", [f"data:image/jpeg;base64,{MARKER}",
                                   f" javascript:alert('{MARKER}')",
                                   f"blob:http://a.test/{MARKER}",
                                   # A browser drops C0 controls and spaces at the ends
                                   # and tabs and line breaks inside: still data: URLs.
                                   f"\x01data:text/html,{MARKER}",
                                   f"da\tta:text/html,{MARKER}",
                                   f"\x00 java\tscript:{MARKER}"])
def test_a_stored_location_that_carries_content_is_described(value):
    stored = redact.evidence_header("location", value)
    assert MARKER not in stored
    assert stored.startswith("<") and "URL withheld" in stored


def test_a_stored_header_value_is_cut():
    assert redact.evidence_header("server", "x" * 2000) == "x" * redact.MAX_HEADER_VALUE


def test_an_uncaught_exception_prints_without_its_message():
    code = ("from kernel import redact\nredact.install()\n"
            f"raise ValueError({MARKER!r})\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 1
    assert MARKER not in result.stderr
    assert result.stderr.rstrip().endswith("ValueError")
    assert "Traceback (most recent call last):" in result.stderr


@pytest.mark.parametrize("name", ["content-length", "age"])
def test_a_numeric_header_that_is_not_a_number_is_described(name):
    assert redact.evidence_header(name, "2048") == "2048"
    stored = redact.evidence_header(name, MARKER)
    assert MARKER not in stored
    assert stored.startswith("<not a number, withheld: ")


def test_redaction_for_a_block_puts_the_logging_back():
    """What enrich and whois of the library API do: redact while they talk to servers."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    saved = logging.getLogRecordFactory(), sys.excepthook
    # A process that never installed redaction (other tests here may have).
    logging.setLogRecordFactory(logging.LogRecord)
    sys.excepthook = sys.__excepthook__
    try:
        with redact.installed():
            logging.getLogger("aiohttp.client").warning("reply: %s", f"<p>{MARKER}</p>")
        logging.getLogger("myapp").warning("after: %s", "the caller's own words")
        restored = logging.getLogRecordFactory(), sys.excepthook
        redact.install()  # a process that redacts already keeps it after the block
        with redact.installed():
            pass
        logging.getLogger("myapp").warning("later: %s", f"<p>{MARKER}</p>")
    finally:
        root.removeHandler(handler)
        logging.setLogRecordFactory(saved[0])
        sys.excepthook = saved[1]
    assert MARKER not in out.getvalue()
    assert "after: the caller's own words" in out.getvalue()
    assert restored == (logging.LogRecord, sys.__excepthook__)

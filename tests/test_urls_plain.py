"""kernel.urls.plain_host: the address guard's short cut must never read a
host differently from a browser (the full parse), from Python's urllib
(Scrapy's slot and the guard's own reading) or from yarl (what aiohttp
connects to). Where any of them might differ, plain_host says None and the
guard does the full parse."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import yarl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kernel.urls import browser_target, plain_host
from tests.test_urls_wpt import ENTRIES, _base_irrelevant


def _agrees(text: str) -> None:
    """When ``text`` is plain, every parser reads its host as plain_host does."""
    host = plain_host(text)
    if host is None:
        return
    target = browser_target(text)
    assert target is not None, f"{text!r}: plain, but a browser would not open it"
    assert target[0] == host, f"{text!r}: browser reads {target[0]!r}, plain {host!r}"
    assert (urlsplit(text).hostname or "").rstrip(".") == host
    assert (yarl.URL(text).host or "").rstrip(".") == host


# Characters that decide where a host ends, or how it reads, under one parser
# or another: case, dots, digits and hex, punycode, ports, user info,
# backslashes, percent escapes, white space and controls, non-ASCII.
_HOST_CHARS = st.sampled_from(list("aAbxX0179.-_:@\\/%?#[] \t\n\r\x00é。"))
_URLS = st.builds(
    lambda scheme, slashes, host, rest: f"{scheme}:{slashes}{host}{rest}",
    st.sampled_from(["http", "https", "HTTP", "ftp", "ws"]),
    st.sampled_from(["//", "/", "///", "\\\\", "/\\"]),
    st.text(_HOST_CHARS, min_size=0, max_size=24)
    | st.sampled_from(["xn--n3h.example", "xn--abc", "0x7f.1", "3232235777", "1.2.3.4",
                       "01.2.3.4", "256.0.0.1", "1.2.3", "example.com.", "a..b", "-a.b",
                       "a.0x1", "a.09", "localhost", "[::1]", "a.b:65535", "a.b:65536",
                       "a.b:0", "a.b:080", "a.b:"]),
    st.sampled_from(["", "/", "/x?y#z", "?q", "#f", "\\x", "\n/", " /", "@evil.test/"]),
)


@settings(max_examples=3000, deadline=None)
@given(_URLS)
@example("http://h1.bench.test:8080/c/1")
@example("http://127.0.0.1/x")
@example("https://example.com./")
def test_plain_hosts_read_alike_in_every_parser(text):
    _agrees(text)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if _base_irrelevant(e)],
                         ids=lambda e: ascii(e["input"])[:60])
def test_plain_hosts_agree_with_the_web_platform_tests(entry):
    host = plain_host(entry["input"])
    if host is None:
        return
    assert not entry.get("failure"), "a URL browsers refuse is not plain"
    assert entry["hostname"].rstrip(".") == host
    _agrees(entry["input"])


@pytest.mark.parametrize(("text", "host"), [
    ("http://h1.bench.test:8080/c/1", "h1.bench.test"),
    ("https://img.example.nl/a.jpg?x=1#top", "img.example.nl"),
    ("http://example.com", "example.com"),
    ("http://example.com.:80/", "example.com"),
    ("http://192.168.1.1/", "192.168.1.1"),
    ("http://a-b.c-d.example/", "a-b.c-d.example"),
    ("http://a.b:65535/", "a.b"),
])
def test_plainly_written_urls_skip_the_full_parse(text, host):
    assert plain_host(text) == host
    _agrees(text)


@pytest.mark.parametrize("text", [
    "http://0x7f.1/",  # 127.0.0.1 to a browser
    "http://3232235777/",  # 192.168.1.1
    "http://127.1/",  # 127.0.0.1
    "http://127.0.0.1./",  # an IPv4 address with a trailing dot
    "http://01.2.3.4/",  # octal to a browser
    "http://example.123/",  # fails in a browser
    "http://xn--abc.example/",  # punycode: checked by the full parse
    "http://Example.com/",  # upper case
    "http://good.example@evil.example/",  # user info
    "http://good.example\\@evil.example/",  # a backslash ends the host in a browser
    "http://evil.example\n.good.example/",  # a newline is dropped by browsers
    "http://evil.example\t.good.example/",
    "http://a.b:65536/",  # no such port
    "http://a..b/",  # an empty label
    "http:/example.com/",  # one slash
    "ftp://example.com/",
    "http://[::1]/",
    "http://a.b:/",
    " http://example.com/",
])
def test_anything_else_gets_the_full_parse(text):
    assert plain_host(text) is None


def test_a_hostile_url_costs_little():
    # No backtracking: a long almost-plain host is rejected in one pass.
    assert plain_host("http://" + "a." * 100_000 + "@x/") is None
    assert plain_host("http://" + "a" * 200_000 + ":99999/") is None

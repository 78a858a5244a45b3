"""kernel.defang: what an analyst sees instead of a reported URL (#15). The
SQL of the analyst views is held to it in tests/store/test_analyst_views.py."""

from __future__ import annotations

import re

import pytest
from ada_url import URL
from hypothesis import given
from hypothesis import strategies as st

from kernel.defang import defang
from kernel.urls import normalise_url

PIECES = st.sampled_from([
    "http://", "https://", "HTTP://", "HtTpS://", "://", ".", "[", "]", "hxxp", "a", "/", ":",
    "@", "ü", "[.]",
    # What else a browser reads as a web address (the URL Standard): a backslash for a
    # slash, no slashes at all, C0 controls and spaces before the scheme, tabs and line
    # breaks inside it; hosts without a dot.
    "http:", "https:", "HTTP:", "hTtPs:", "hxxp:", "hxxps:", "h", "t", "p", "s", "\\", "\t",
    "\n", "\r", " ", "\x00", "\x01", "\x1f", "2130706434", ":9999", "0x7f000002",
    "[::ffff:7f00:2]"])
URLISH = st.one_of(st.text(st.characters(blacklist_categories=["Cs"])),
                   st.lists(PIECES, max_size=12).map("".join))
# What a browser strips before the scheme, and drops inside it.
C0_OR_SPACE = "".join(map(chr, range(0x21)))
TAB_OR_NEWLINE = str.maketrans("", "", "\t\n\r")
# Addresses an import accepts (kernel.urls) and a browser opens as http://127.0.0.2/...
ODD_URLS = {
    "http:\\\\2130706434:9999\\x.jpg": "hxxp:\\\\2130706434:9999\\x[.]jpg",
    "http:2130706434:9999/x": "hxxp:2130706434:9999/x",
    "http:/2130706434/x": "hxxp:/2130706434/x",
    "http:\\\\[::ffff:7f00:2]:9999\\v6.jpg": "hxxp:\\\\[::ffff:7f00:2]:9999\\v6[.]jpg",
    "HTTP:\\\\0x7f000002:9999\\a": "hxxp:\\\\0x7f000002:9999\\a",
    "https:\\\\2130706434\\s.jpg": "hxxps:\\\\2130706434\\s[.]jpg",
    "http:/\\2130706434/x": "hxxp:/\\2130706434/x",
    "\x01 \x1fhttp:2130706434/c0": "\x01 \x1fhxxp:2130706434/c0",
    "\x1b\thTtP:\\\\2130706434/c0": "\x1b\thxxp:\\\\2130706434/c0",
}


def opens_as_a_web_address(text: str) -> bool:
    """Whether a browser, given ``text`` with no base URL, opens an http(s) address."""
    try:
        url = URL(text)
    except ValueError:
        return False
    return url.protocol in ("http:", "https:") and bool(url.host)


@given(URLISH)
def test_no_defanged_text_holds_a_scheme_or_a_bare_dot(url):
    shown = defang(url).lower()
    assert "http://" not in shown and "https://" not in shown
    assert "." not in shown.replace("[.]", "")


@given(URLISH)
def test_defanging_changes_nothing_but_the_scheme_dots_and_inner_schemes(url):
    shown = defang(url)
    plain = url.replace("[.]", ".").replace("[://]", "://")  # a defanged text read back
    lead = plain[:len(plain) - len(plain.lstrip(C0_OR_SPACE))]
    assert shown.startswith(lead)
    shown, plain = shown[len(lead):], plain[len(lead):]
    for fanged in ("hxxps:", "hxxp:"):
        if shown.startswith(fanged):
            scheme, colon, plain = plain.partition(":")
            assert colon and scheme.translate(TAB_OR_NEWLINE).lower() + ":" in (
                fanged, fanged.replace("xx", "tt"))
            shown = shown[len(fanged):]
            break
    assert shown.replace("[.]", ".").replace("[://]", "://") == plain


@given(URLISH)
def test_no_defanged_text_opens_as_a_web_address(url):
    shown = defang(url)
    assert not opens_as_a_web_address(shown), shown
    # Nor what the URL Standard reads as an http(s) scheme, with a host or not.
    scheme, colon, _ = shown.lstrip(C0_OR_SPACE).translate(TAB_OR_NEWLINE).partition(":")
    assert not (colon and scheme.lower() in ("http", "https")), shown


@pytest.mark.parametrize(("url", "expected"), ODD_URLS.items())
def test_odd_addresses_a_browser_opens_are_defanged(url: str, expected: str) -> None:
    assert normalise_url(url).host in ("127.0.0.2", "::ffff:7f00:2")  # an import takes it
    assert opens_as_a_web_address(url)
    assert defang(url) == expected
    assert not opens_as_a_web_address(expected)
    assert defang(expected) == expected


@given(URLISH)
def test_defanging_twice_changes_nothing(url):
    """The web UI defangs every cell, the views' already defanged ones too."""
    assert defang(defang(url)) == defang(url)


@pytest.mark.parametrize(("url", "expected"), [
    ("https://a.example/x.jpg", "hxxps://a[.]example/x[.]jpg"),
    ("http://127.0.0.1:8080/a?b=c.d", "hxxp://127[.]0[.]0[.]1:8080/a?b=c[.]d"),
    ("HTTP://A.EXAMPLE/", "hxxp://A[.]EXAMPLE/"),
    ("https://a.example/see/http://b.example/", "hxxps://a[.]example/see/http[://]b[.]example/"),
    ("hxxps://a[.]example/x[.]jpg", "hxxps://a[.]example/x[.]jpg"),
    # An import refuses a NUL (kernel.urls); a browser strips it before the scheme.
    ("\x00http:\\a.example", "\x00hxxp:\\a[.]example"),
    ("h\tt\ntp:/a.example/x", "hxxp:/a[.]example/x"),  # tabs and line breaks dropped
    ("http:", "hxxp:"),
    ("ftp:\\a.example", "ftp:\\a[.]example"),
])
def test_examples(url: str, expected: str) -> None:
    assert defang(url) == expected


def test_no_defanged_url_looks_like_a_link() -> None:
    # What linkifiers (GFM autolinks, Datasette, mail clients) look for.
    linkish = re.compile(r"https?://|www\.|\w\.\w", re.IGNORECASE)
    for url in ("https://www.example.test/a.jpg", "http://x.test", "https://a.b.c/d.e?f=g.h",
                "https://a.test/r?u=HTTP://b.test"):
        assert not linkish.search(defang(url)), defang(url)


def test_the_documented_examples():
    assert defang("HTTPS://Bad.example/x.jpg?u=http://b.example") == \
        "hxxps://Bad[.]example/x[.]jpg?u=http[://]b[.]example"
    assert defang("bad.example") == "bad[.]example"
    assert defang("http:\\\\2130706434:9999\\x.jpg") == "hxxp:\\\\2130706434:9999\\x[.]jpg"
    assert defang("") == ""

"""kernel.defang: what an analyst sees instead of a reported URL (#15). The
SQL of the analyst views is held to it in tests/store/test_analyst_views.py."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.defang import defang

PIECES = st.sampled_from(["http://", "https://", "HTTP://", "HtTpS://", "://", ".", "[", "]",
                          "hxxp", "a", "/", ":", "@", "ü", "[.]"])
URLISH = st.one_of(st.text(), st.lists(PIECES, max_size=12).map("".join))


@given(URLISH)
def test_no_defanged_text_holds_a_scheme_or_a_bare_dot(url):
    shown = defang(url).lower()
    assert "http://" not in shown and "https://" not in shown
    assert "." not in shown.replace("[.]", "")


@given(URLISH)
def test_defanging_changes_nothing_but_the_scheme_dots_and_inner_schemes(url):
    shown = defang(url)
    plain = url.replace("[.]", ".").replace("[://]", "://")  # a defanged text read back
    for fanged in ("hxxps://", "hxxp://"):
        if shown.startswith(fanged):
            assert plain[:len(fanged)].lower() in (fanged, fanged.replace("xx", "tt"))
            shown, plain = shown[len(fanged):], plain[len(fanged):]
            break
    assert shown.replace("[.]", ".").replace("[://]", "://") == plain


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
    assert defang("") == ""

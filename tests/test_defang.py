"""Reported URLs defanged (kernel/defang.py): nothing a linkifier opens."""

from __future__ import annotations

import re

import pytest

from kernel.defang import defang


@pytest.mark.parametrize(("url", "expected"), [
    ("https://a.example/x.jpg", "hxxps://a[.]example/x[.]jpg"),
    ("http://127.0.0.1:8080/a?b=c.d", "hxxp://127[.]0[.]0[.]1:8080/a?b=c[.]d"),
    ("HTTP://A.EXAMPLE/", "hxxp://A[.]EXAMPLE/"),
    ("https://a.example/see/http://b.example/", "hxxps://a[.]example/see/hxxp://b[.]example/"),
])
def test_scheme_and_every_dot_are_defanged(url: str, expected: str) -> None:
    assert defang(url) == expected


def test_defanging_twice_changes_nothing() -> None:
    once = defang("https://a.b.example/c.d")
    assert defang(once) == once


def test_no_defanged_url_looks_like_a_link() -> None:
    # What linkifiers (GFM autolinks, Datasette, mail clients) look for.
    linkish = re.compile(r"https?://|www\.|\w\.\w", re.IGNORECASE)
    for url in ("https://www.example.test/a.jpg", "http://x.test", "https://a.b.c/d.e?f=g.h",
                "https://a.test/r?u=HTTP://b.test"):
        assert not linkish.search(defang(url)), defang(url)

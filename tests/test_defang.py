"""kernel.defang: what an analyst sees instead of a reported URL (#15). The
SQL of the analyst views is held to it in tests/store/test_analyst_views.py."""

from __future__ import annotations

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
    for fanged in ("hxxps://", "hxxp://"):
        if shown.startswith(fanged):
            assert url[:len(fanged)].lower() == fanged.replace("xx", "tt")
            shown, url = shown[len(fanged):], url[len(fanged):]
            break
    assert shown.replace("[.]", ".").replace("[://]", "://") == url


def test_the_documented_examples():
    assert defang("HTTPS://Bad.example/x.jpg?u=http://b.example") == \
        "hxxps://Bad[.]example/x[.]jpg?u=http[://]b[.]example"
    assert defang("bad.example") == "bad[.]example"
    assert defang("") == ""

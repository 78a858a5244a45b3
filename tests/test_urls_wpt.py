"""Reported URLs against the web-platform-tests URL suite: what browsers open.

lab/data/realdata/wpt_urltestdata.json is the suite browsers are held to:
each input (with an optional base) and what a WHATWG URL parser makes of it,
or ``failure``. A reported URL has no base, so an entry counts when its
meaning does not depend on its base. For each such absolute http(s) input
hostwatch either accepts it, with the host and port a browser would connect
to (read back from the normal form the way the crawler reads it), or refuses
it for one of the documented reasons that do not claim the browser would
refuse it; every input the suite says a browser refuses, hostwatch refuses.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from kernel.urls import Refusal, UrlError, normalise_url
from lab.rdap import REALDATA

SUITE = REALDATA / "wpt_urltestdata.json"
ENTRIES: list[dict[str, Any]] = [e for e in json.loads(SUITE.read_text("utf-8"))
                                 if isinstance(e, dict)]
DEFAULT_PORTS = {"http": 80, "https": 443}
# Refusals that hold for a URL a browser opens: hostwatch cannot check it
# honestly, not "a browser would not open it".
REFUSED_THOUGH_VALID = {Refusal.CONTROL, Refusal.CREDENTIALS, Refusal.HOST_NOT_DNS,
                        Refusal.PORT_ZERO}
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def _as_a_browser_reads(text: str) -> str:
    """Leading/trailing C0 controls and spaces stripped, tabs and newlines
    removed: the URL Standard's first steps."""
    return re.sub(r"[\t\n\r]", "", text.strip("".join(map(chr, range(0x21)))))


def _scheme(text: str) -> str | None:
    match = _SCHEME.match(_as_a_browser_reads(text))
    return match.group(1).lower() if match else None


def _base_irrelevant(entry: dict[str, Any]) -> bool:
    """True when the entry's expectation holds for its input without a base.

    An http(s) input is read against its base only when the base has the
    same scheme and the input does not go on with two slashes (either way)."""
    if entry["base"] is None:
        return True
    scheme = _scheme(entry["input"])
    text = _as_a_browser_reads(entry["input"])
    after = text[len(scheme) + 1:] if scheme else ""
    return _scheme(entry["base"]) != scheme or (
        len(after) >= 2 and after[0] in "/\\" and after[1] in "/\\")


def _http_entries(*, failure: bool) -> list[dict[str, Any]]:
    return [e for e in ENTRIES if _scheme(e["input"]) in DEFAULT_PORTS
            and _base_irrelevant(e) and bool(e.get("failure")) is failure]


OPENED = _http_entries(failure=False)
REFUSED_BY_BROWSERS = _http_entries(failure=True)


def _id(entry: dict[str, Any]) -> str:
    return ascii(entry["input"])[:60]


def test_the_suite_is_the_one_we_think():
    assert len(ENTRIES) == 891
    assert len(OPENED) > 150 and len(REFUSED_BY_BROWSERS) > 40


@pytest.mark.parametrize("entry", OPENED, ids=_id)
def test_an_http_url_a_browser_opens_is_checked_at_the_browser_s_host_and_port(entry):
    try:
        normal = normalise_url(entry["input"])
    except UrlError as exc:
        assert exc.refusal in REFUSED_THOUGH_VALID, (entry, str(exc))
        return
    scheme = entry["protocol"].rstrip(":")
    expected_host = entry["hostname"].strip("[]")
    expected_port = int(entry["port"] or DEFAULT_PORTS[scheme])
    # The normal form, read back as the crawler (Scrapy, urllib) reads it.
    parts = urlsplit(normal.url)
    assert (parts.scheme, parts.hostname, parts.port or DEFAULT_PORTS[scheme]) == (
        scheme, expected_host.lower(), expected_port)
    assert normal.host == expected_host.rstrip(".")
    # The rest is what the browser opens: its URL without the fragment, unless
    # that is a route ("#/...", "#!...": kernel.urls), serialised as the
    # suite says a browser does.
    fragment = entry["hash"][1:]
    href = entry["href"].partition("#")[0]
    assert normal.url == (f"{href}#{fragment}" if fragment.startswith(("/", "!")) else href)


@pytest.mark.parametrize("entry", REFUSED_BY_BROWSERS, ids=_id)
def test_an_http_url_a_browser_refuses_is_refused(entry):
    with pytest.raises(UrlError):
        normalise_url(entry["input"])


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.get("failure")], ids=_id)
def test_every_input_the_suite_fails_is_refused_with_or_without_a_base(entry):
    with pytest.raises(UrlError):
        normalise_url(entry["input"])


@pytest.mark.parametrize("entry", [e for e in ENTRIES
                                   if _scheme(e["input"]) not in DEFAULT_PORTS], ids=_id)
def test_relative_and_other_scheme_inputs_are_refused(entry):
    with pytest.raises(UrlError) as caught:
        normalise_url(entry["input"])
    assert caught.value.refusal in (Refusal.SCHEME, Refusal.CONTROL, Refusal.NOT_UNICODE)

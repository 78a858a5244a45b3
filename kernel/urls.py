"""Reported URLs read the way a browser reads them: one spelling per URL.

A reported URL is what an analyst saw in a browser, so hostwatch parses it
with a WHATWG URL parser (ada-url, the URL Standard that browsers follow) and
checks what a browser would open. Hand-written rules disagree with browsers
exactly where it matters: ``http://3232235777/`` and ``http://0x7f.1/`` are the
IPv4 addresses 192.168.1.1 and 127.0.0.1 to a browser, but a DNS name to a
naive parser, which then finds "nxdomain" and would report the material
removed while the server still serves it.

The normal form is the browser's serialisation, without the fragment unless
it is a route (`ROUTE_PREFIXES`, `is_route`): scheme and host lower-cased, IDN hosts in punycode
(UTS #46 non-transitional, i.e. IDNA 2008: "straße" stays "straße"), numeric
IPv4 hosts (decimal, hex, octal, short dotted) as a dotted quad, IPv6 hosts
compressed, the default port dropped, dot segments resolved, and spaces,
quotes, non-ASCII and the like percent-encoded as UTF-8; existing escapes
are kept as given. This is the URL the browser check opens and the one
cases are grouped by; plain HTTP requests send it without its fragment
(`document_url`), as a browser does: a fragment never reaches the server.

Which fragments are routes. A fragment that starts with "/" or "!"
(``#/photo/21``, ``#!/item/9``, ``#!item/9``) is a route of a single-page app:
the hash-slash and hash-bang conventions of AngularJS, Vue Router and React's
HashRouter (hash mode), Backbone, Ember and many image hosts. The page's
script reads it and shows that item, so ``#/photo/21`` and ``#/photo/22`` are
two things a person sees at one document URL. Any other fragment (``#top``,
``#comments``, ``#page=2``) names a place in the page, or a viewer's option,
and is dropped: ``https://h/a#top`` is ``https://h/a``. Route fragments are
serialised as a browser writes them (the URL Standard's fragment
percent-encode set: spaces, quotes, angle brackets, back-quotes and
non-ASCII escaped, the rest as given).

Some URLs a browser would open cannot be checked honestly; they are refused
with a `Refusal` (the closed set the README documents under "Reported URLs").
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from ada_url import URL, HostType

from kernel.errors import HostwatchError

__all__ = ["ROUTE_PREFIXES", "NormalisedUrl", "Refusal", "UrlError", "browser_target",
           "browser_url", "document_url", "is_route", "normalise_url", "plain_host",
           "redirect_url", "site_of", "url_route", "url_host"]

SCHEMES = ("http", "https")
# A fragment (after the "#") starting with one of these is an app's route.
ROUTE_PREFIXES = ("/", "!")

# What the URL Standard strips from both ends, plus the Unicode spaces a
# paste from a mail or a spreadsheet brings along (a browser would keep a
# trailing no-break space as "%C2%A0" in the path: never what was meant).
_C0_OR_SPACE = "".join(map(chr, range(0x21)))
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The scheme as the URL Standard reads it: an ASCII letter, then letters,
# digits, "+", "-", ".", up to the first ":".
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# A DNS host name hostwatch can look up: after UTS #46 (lower case, punycode)
# letters, digits, "-", and "_" (it occurs in real names: service labels, some
# CDNs, and resolves fine); labels of 1 to 63 characters, 253 in all.
_LABEL = re.compile(r"[a-z0-9_\-]{1,63}")
# A URL whose host every parser reads alike (`plain_host`): http(s), a host of
# lower-case ASCII labels or a dotted-quad IPv4 address, an optional port,
# then the path, query or fragment (or nothing). "\Z", not "$": a host
# followed by a newline is not plain.
_PLAIN = re.compile(r"https?://([a-z0-9][a-z0-9.-]*+)(?::([0-9]{1,5}))?(?=[/?#]|\Z)")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


class Refusal(StrEnum):
    """Why hostwatch refuses a reported URL (documented in the README)."""

    SCHEME = "scheme must be http or https"
    NOT_A_URL = "not a URL a browser would open"
    CONTROL = "control character in URL"
    NOT_UNICODE = "URL is not valid Unicode"
    CREDENTIALS = "user name or password in URL: credentials are not stored, remove them"
    HOST_NOT_DNS = "host is not a DNS name that can be looked up"
    PORT_ZERO = "port 0 cannot be connected to"


class UrlError(HostwatchError, ValueError):
    """A reported URL that hostwatch cannot check; ``refusal`` says why."""

    def __init__(self, refusal: Refusal, detail: str = "") -> None:
        super().__init__(f"{refusal.value} ({detail})" if detail else refusal.value)
        self.refusal = refusal
        self.detail = detail


@dataclass(frozen=True)
class NormalisedUrl:
    url: str
    host: str  # lower-case, punycode, no trailing dot; IPv4 dotted; IPv6 without brackets


def normalise_url(raw: str) -> NormalisedUrl:
    """The normal form of ``raw``, or `UrlError` naming the `Refusal`."""
    if "\x00" in raw:
        # Not even at either end, where other control characters are stripped:
        # PostgreSQL cannot store it, and SQLite's string functions (the analyst
        # views' defanging, store migration 0014) stop at it.
        raise UrlError(Refusal.CONTROL)
    text = raw.strip(_C0_OR_SPACE).strip()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UrlError(Refusal.NOT_UNICODE) from None
    if _CONTROL.search(text):
        # A browser would drop tabs and line breaks inside a URL; in a reported
        # URL they mean a mangled cell (two values run together): ask.
        raise UrlError(Refusal.CONTROL)
    match = _SCHEME.match(text)
    if match is None or match.group(1).lower() not in SCHEMES:
        raise UrlError(Refusal.SCHEME, "" if match else "no scheme")
    try:
        url = URL(text)
    except ValueError:
        raise UrlError(Refusal.NOT_A_URL, _why_not(text)) from None
    if url.username or url.password:
        raise UrlError(Refusal.CREDENTIALS)
    if url.port == "0":
        raise UrlError(Refusal.PORT_ZERO)
    host = _plain_host(url)
    if url.host_type == HostType.DEFAULT:
        _check_dns_name(host)
    if not is_route(url.hash[1:]):
        url.hash = ""  # an anchor: the same document, the same case
    return NormalisedUrl(url=url.href, host=host)


def is_route(fragment: str) -> bool:
    """Whether ``fragment`` (without its "#") is a single-page app's route
    (see the module docstring): it starts with "/" or "!"."""
    return fragment.startswith(ROUTE_PREFIXES)


def url_route(url: str) -> str | None:
    """The route fragment of a normalised ``url`` (without its "#"), or None."""
    fragment = url.partition("#")[2]
    return fragment if is_route(fragment) else None


def document_url(url: str) -> str:
    """A normalised ``url`` without its fragment: what is sent to the server
    (a serialised URL holds a "#" only where its fragment starts)."""
    return url.partition("#")[0]


def browser_target(text: str) -> tuple[str, str] | None:
    """The host (as `url_host` gives it, "" when there is none) and the URL
    a browser would request for ``text`` (an absolute URL, without its
    fragment), from one parse; None when a browser would not open it."""
    try:
        url = URL(text)
    except ValueError:
        return None
    host = _plain_host(url)
    url.hash = ""
    return host, url.href


def plain_host(text: str) -> str | None:
    """The host of ``text`` (as `browser_target` gives it) when the URL is
    plainly written: http or https, a host of lower-case letters, digits and
    hyphens (no empty label, though a final dot is allowed; the last label
    not starting with a digit; none starting "xn--") or a dotted-quad IPv4
    address, a port up to 65535, then "/", "?", "#" or the end. None
    otherwise: then only the full parse (`browser_target`) says.

    Such a host reads the same to every parser (the URL Standard's, Python's
    urllib, aiohttp's yarl), so the address guard can skip the full parse for
    the URLs it sees most: tests/test_urls_plain.py holds this to the
    full parse."""
    match = _PLAIN.match(text)
    if match is None:
        return None
    host, port = match.groups()
    if (port is not None and int(port) > 65535) or ".." in host:
        return None
    name = host[:-1] if host.endswith(".") else host
    last = name.rpartition(".")[2]
    if last[0].isdigit():
        # The URL Standard reads a name ending in a number as an IPv4
        # address (0x7f.1, 3232235777): plain only as a dotted quad.
        return name if host == name and _DOTTED_QUAD.fullmatch(name) else None
    if name.startswith("xn--") or ".xn--" in name:
        return None  # punycode: the full parse checks it
    return name


def browser_url(text: str) -> str | None:
    """``text`` (an absolute URL, e.g. a redirect target) as a browser would
    request it, or None when a browser would not open it."""
    target = browser_target(text)
    return None if target is None else target[1]


def redirect_url(location: str, base: str) -> str | None:
    """The URL a redirect's ``location`` sends to (relative to ``base``), as
    hostwatch requests and stores it: read as a browser reads it, without
    the fragment (never sent to a server) and without a user name or
    password (hostwatch stores no credentials, and sends none a server
    chose). None when a browser would not follow it."""
    try:
        url = URL(location, base)
    except ValueError:
        return None
    href = url.href.partition("#")[0]
    if url.protocol not in ("http:", "https:"):
        return href  # refused by the caller, by its scheme
    # Without the user info (ada's setters refuse an empty user name): the
    # path and query start at the first "/" after "scheme://", as user info
    # and host hold none unescaped.
    return f"{url.protocol}//{url.host}{href[href.index('/', len(url.protocol) + 2):]}"


def url_host(text: str) -> str | None:
    """The host of an absolute URL as a browser reads it (lower-case,
    punycode, IPv4 dotted quad, IPv6 without brackets, no trailing dot), or
    None when there is none."""
    target = browser_target(text)
    return None if target is None else target[0] or None


def _plain_host(url: URL) -> str:
    host = url.hostname
    if url.host_type == HostType.IPV6:
        return host.strip("[]")
    # "example.com." is the same DNS name as "example.com": one host for grouping.
    return host.rstrip(".") if url.host_type == HostType.DEFAULT else host


def _check_dns_name(host: str) -> None:
    """Refuse a host a browser accepts but DNS cannot hold: looking it up
    would answer "no such name" and mark the case removed."""
    if len(host) > 253:
        raise UrlError(Refusal.HOST_NOT_DNS, "longer than 253 characters")
    for label in host.split("."):
        if not label:
            raise UrlError(Refusal.HOST_NOT_DNS, "empty label")
        if len(label) > 63:
            raise UrlError(Refusal.HOST_NOT_DNS, "label longer than 63 characters")
        if not _LABEL.fullmatch(label):
            bad = next(c for c in label if not _LABEL.fullmatch(c))
            raise UrlError(Refusal.HOST_NOT_DNS, f"character {bad!r}")


def _why_not(text: str) -> str:
    """A hint at why the URL parser refused ``text`` (for the analyst; the
    parser's verdict is what counts)."""
    rest = text[text.index(":") + 1:].lstrip("/\\")
    authority = re.split(r"[/\\?#]", rest, maxsplit=1)[0]
    host_port = authority.rpartition("@")[2]
    if host_port.startswith("["):
        return "invalid IPv6 address"
    host, colon, port = host_port.rpartition(":")
    if not colon:
        host, port = host_port, ""
    if port and not (port.isascii() and port.isdigit() and int(port) < 65536):
        return f"invalid port {port!r}"
    if not host:
        return "empty host"
    last = host.rstrip(".").rpartition(".")[2]
    if last and (last.isdigit() or re.fullmatch(r"0[xX][0-9A-Fa-f]*", last)):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return "host ends in a number but is not an IPv4 address"
    return "invalid character in host"


@cache
def _suffixes() -> Any:
    import tldextract  # Scrapy's dependency: its bundled Public Suffix List snapshot

    # No download (no list URLs) and no cache on disk: the bundled snapshot only.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None,
                                 include_psl_private_domains=True)


def site_of(url: str) -> str | None:
    """The site of ``url``, as browsers draw it: its host's registrable domain
    (the Public Suffix List snapshot that ships with tldextract, private
    suffixes included: ``a.github.io`` and ``b.github.io`` are two sites); an
    IP address is a site of its own; a name under a suffix the list does not
    know (``settle.test``, ``x.localhost``) is its last two labels. None for
    a URL without a host."""
    with contextlib.suppress(ValueError):
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
        if not host:
            return None
        with contextlib.suppress(ValueError):
            return str(ipaddress.ip_address(host))
        found = _suffixes()(host)
        if found.suffix and found.domain:
            return f"{found.domain}.{found.suffix}"
        return ".".join(host.split(".")[-2:])
    return None

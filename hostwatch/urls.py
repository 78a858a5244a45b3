"""Normalising reported URLs: one spelling per URL, without changing what is fetched.

The normal form is what the crawler requests and what cases are grouped by:
scheme and host lower-cased, IDN hosts in punycode, default port and fragment
dropped, an empty path made "/". Everything the server sees is kept as
reported: the path and query keep their percent-encoding and dot segments;
only spaces and non-ASCII characters, which cannot travel in a request line,
are percent-encoded (as UTF-8), as a browser would.
"""

from __future__ import annotations

import encodings.idna
import ipaddress
import re
from dataclasses import dataclass

import idna

__all__ = ["NormalisedUrl", "UrlError", "normalise_url"]

DEFAULT_PORTS = {"http": 80, "https": 443}

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# After IDNA encoding: letters, digits, hyphen, dot; underscore occurs in real
# host names (service labels, some CDNs) and resolves fine.
_HOST_CHARS = re.compile(r"[a-z0-9\-_.]+")
_NEEDS_QUOTING = re.compile(r"[^\x21-\x7e]")  # space, and everything outside ASCII


class UrlError(ValueError):
    """A reported URL that hostwatch cannot check; the message says why."""


@dataclass(frozen=True)
class NormalisedUrl:
    url: str
    host: str  # lower-case, punycode, no trailing dot; IPv6 addresses without brackets


def normalise_url(raw: str) -> NormalisedUrl:
    """The normal form of ``raw``, or `UrlError` with a short reason."""
    text = raw.strip()
    if _CONTROL.search(text):
        raise UrlError("control character in URL")
    match = _SCHEME.match(text)
    scheme = match.group(1).lower() if match else ""
    if scheme not in DEFAULT_PORTS:
        raise UrlError("scheme must be http or https")
    rest = text[match.end():] if match else ""
    if not rest.startswith("//"):
        raise UrlError(f"missing '//' after '{scheme}:'")
    rest = rest[2:]
    end = len(rest)
    for delimiter in "/?#":
        found = rest.find(delimiter)
        if found != -1:
            end = min(end, found)
    authority, target = rest[:end], rest[end:]
    if "@" in authority:
        raise UrlError("user name or password in URL: credentials are not stored, remove them")
    host, port_text = _split_host_port(authority)
    display_host, host = _normal_host(host)
    port = _port(port_text)
    netloc = display_host if port in (None, DEFAULT_PORTS[scheme]) else f"{display_host}:{port}"
    target = target.partition("#")[0]
    path, mark, query = target.partition("?")
    return NormalisedUrl(url=f"{scheme}://{netloc}{_quote(path) or '/'}{mark}{_quote(query)}",
                         host=host)


def _split_host_port(authority: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        literal, bracket, after = authority[1:].partition("]")
        if not bracket:
            raise UrlError("IPv6 address without closing ']'")
        if after and not after.startswith(":"):
            raise UrlError(f"unexpected {after!r} after IPv6 address")
        return f"[{literal}]", (after[1:] if after else None)
    host, colon, port = authority.rpartition(":")
    return (host, port) if colon else (authority, None)


def _normal_host(host: str) -> tuple[str, str]:
    """(host as written in the URL, host for DNS and grouping)."""
    if not host:
        raise UrlError("empty host")
    if host.startswith("["):
        if "%" in host:
            raise UrlError(f"IPv6 zone identifiers are not accepted: {host}")
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise UrlError(f"not an IPv6 address: {host}") from None
        return f"[{address.compressed}]", address.compressed
    try:
        if host.isascii():
            # ASCII names pass as they are (lower-cased): real hosts use
            # underscores and other things IDNA would refuse.
            encoded = encodings.idna.Codec().encode(host.lower())[0].decode("ascii")
        else:
            # IDNA 2008 with UTS #46 mapping, as browsers do: "straße.de" is
            # xn--strae-oqa.de, not the IDNA 2003 "strasse.de".
            trailing = "." if host.endswith(".") else ""
            encoded = idna.encode(host.rstrip("."), uts46=True).decode("ascii") + trailing
    except (UnicodeError, idna.IDNAError) as exc:
        raise UrlError(f"host is not a valid domain name ({exc})") from None
    if not encoded.strip("."):
        raise UrlError("empty host")
    if not _HOST_CHARS.fullmatch(encoded):
        raise UrlError("invalid character in host")
    if len(encoded.rstrip(".")) > 253:
        raise UrlError("host longer than 253 characters")
    # "example.com." is the same DNS name as "example.com": one host for grouping.
    return encoded, encoded.rstrip(".")


def _port(text: str | None) -> int | None:
    if not text:  # "http://example.com:/" is the default port (RFC 3986, 6.2.3)
        return None
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 65536:
        raise UrlError(f"invalid port {text!r}")
    return int(text)


def _quote(part: str) -> str:
    """Percent-encode spaces and non-ASCII as UTF-8; leave existing escapes alone."""
    try:
        return _NEEDS_QUOTING.sub(
            lambda m: "".join(f"%{byte:02X}" for byte in m.group().encode("utf-8")), part)
    except UnicodeEncodeError:
        raise UrlError("URL is not valid Unicode") from None

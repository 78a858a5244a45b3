"""The offline routing table: who announces an address, and who that AS is.

- `AsnTable`: IP -> (ASN, announced prefix), from an offline BGP prefix table
  in pyasn's text format (``prefix<TAB>asn`` lines, ``;`` comments, plain or
  gzip), looked up by pyasn's C radix tree.
- `AsNames`: ASN -> `AsName` (handle, name, country), from pyasn's AS-names
  JSON (``{"60781": "LEASEWEB-NL LeaseWeb Netherlands B.V., NL"}``).

Why a module of its own: these are local data files read once and looked up
hundreds of thousands of times a second, with no network, no registry answer
and no outbound guard involved; the RDAP client (`enrichment.rdap_client`)
and the RDAP parser (`enrichment.rdap_parse`) are the other, online half of
who-holds-an-address, and neither needs anything from here.

Errors, all `EnrichmentError`s: `DataFileError` when a table or names file is
missing, unreadable or garbled (the message names the file and, where known,
the line); a lookup of something that is no IP address raises a plain
`EnrichmentError`.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyasn

from enrichment import EnrichmentError

__all__ = ["AsName", "AsNames", "AsnTable", "DataFileError", "parse_as_name"]


class DataFileError(EnrichmentError):
    """A data file (prefix table, AS names) is missing, unreadable or garbled."""

    def __init__(self, source: str, problem: str, line: int | None = None) -> None:
        where = source if line is None else f"{source}, line {line}"
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


# -- reading data files ---------------------------------------------------------

def _read_text(path: Path) -> str:
    """The text of ``path``, gunzipped when its content is gzip (whatever its name)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataFileError(str(path), "no such file") from None
    except OSError as exc:
        raise DataFileError(str(path), f"cannot read it: {exc.strerror or exc}") from exc
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFileError(str(path), f"broken gzip data: {exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataFileError(str(path), "not UTF-8 text", line) from exc


# -- IP -> ASN and prefix ------------------------------------------------------------

_MAX_ASN = 2**32 - 1
# pyasn parses the ASN with strtoul, so "-5" and 99999999999 load silently as
# wrong numbers: catch them first (only a "-" or ten or more digits can be wrong).
_SUSPECT_ASN = re.compile(r"\t[ \t]*(-|\d{10,})")


class AsnTable:
    """IP -> (origin ASN, announced prefix) from an offline BGP prefix table.

    Lookups go straight to pyasn's C radix tree (several 100,000 a second).
    """

    def __init__(self, db: Any, source: str, prefixes: int) -> None:
        self._search = db.radix.search_best
        self.source = source
        self.prefixes = prefixes

    @classmethod
    def load(cls, path: Path | str) -> AsnTable:
        """Load a table file (``.dat`` or gzip-compressed ``.dat.gz``)."""
        path = Path(path)
        return cls._parse(_read_text(path), str(path))

    @classmethod
    def from_lines(cls, lines: str | Iterable[str], source: str = "<lines>") -> AsnTable:
        """Build a table from text or lines (``"1.2.3.0/24\\t64500"``); for tests."""
        text = lines if isinstance(lines, str) else "\n".join(x.rstrip("\n") for x in lines)
        return cls._parse(text, source)

    @classmethod
    def _parse(cls, text: str, source: str) -> AsnTable:
        for match in _SUSPECT_ASN.finditer(text):
            start = text.rfind("\n", 0, match.start()) + 1
            value = match.group(1)
            if text[start] != ";" and (value == "-" or int(value) > _MAX_ASN):
                line = text.count("\n", 0, start) + 1
                raise DataFileError(source, "ASN out of range (0 to 4294967295)", line)
        prefixes = sum(1 for line in text.splitlines()
                       if line.strip() and not line.startswith(";"))
        if prefixes == 0:
            raise DataFileError(source, "no prefixes in the table")
        try:
            db = pyasn.pyasn(None, ipasn_string=text)
        except (RuntimeError, ValueError) as exc:
            bad = _first_bad_line(text)
            if bad is None:
                raise DataFileError(source, f"pyasn cannot load it: {exc}") from exc
            raise DataFileError(source, bad[1], bad[0]) from exc
        return cls(db, source, prefixes)

    def lookup(self, ip: str) -> tuple[int, str] | None:
        """(ASN, most specific announced prefix) of ``ip``; None if unannounced."""
        try:
            node = self._search(ip)
        except ValueError:
            raise EnrichmentError(f"not an IP address: {ip!r}") from None
        if node is None:
            return self._lookup_mapped(ip) if ":" in ip else None
        return node.asn, node.prefix

    def _lookup_mapped(self, ip: str) -> tuple[int, str] | None:
        """An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``) is its IPv4 address."""
        mapped = ipaddress.IPv6Address(ip).ipv4_mapped
        return None if mapped is None else self.lookup(str(mapped))

    def __len__(self) -> int:
        return self.prefixes


def _first_bad_line(text: str) -> tuple[int, str] | None:
    """The first line that is neither a comment nor ``prefix<TAB>asn``, and why."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(";"):
            continue
        prefix, tab, asn = line.partition("\t")
        if not tab or "/" not in prefix:
            return number, f"expected 'prefix<TAB>asn', got {line[:80]!r}"
        try:
            ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            return number, f"not a prefix: {prefix[:80]!r}"
        if not asn.strip().isdigit():
            return number, f"not an ASN: {asn[:80]!r}"
    return None


# -- ASN -> AS name and country ------------------------------------------------------

_HANDLE = re.compile(r"[A-Z0-9][A-Z0-9._-]*")
_RESERVED_NAMES = frozenset({"-Reserved AS-", "-Private Use AS-"})


@dataclass(frozen=True)
class AsName:
    """One AS as the AS-names file describes it."""

    asn: int
    handle: str | None  # e.g. "LEASEWEB-NL"; None for the many LACNIC/AFRINIC
    name: str  # entries that give only the holder's name
    country: str | None  # ISO 3166 code; None where the file says "ZZ" or nothing
    reserved: bool = False  # "-Reserved AS-" / "-Private Use AS-": no holder at all


def parse_as_name(asn: int, text: str) -> AsName:
    """Split ``"HANDLE Org name, CC"`` (the pyasn AS-names format).

    The country is the two upper-case letters after the last comma ("ZZ",
    unknown, gives None); a two-letter tail in lower case ("na") is dropped
    from the name but is no country. The first word is the handle when it
    looks like one (upper case, digits, ``-._``) and more words follow;
    ARIN's ``HANDLE - Name`` separator is dropped. Otherwise the whole rest is
    the name and there is no handle (``"Servicoop S.A., AR"``, ``"-Reserved AS-, ZZ"``).
    """
    body, country = text.strip(), None
    head, comma, tail = body.rpartition(",")
    tail = tail.strip()
    if comma and len(tail) == 2 and tail.isalpha() and tail.isascii():
        body = head.strip()
        country = tail if tail.isupper() and tail != "ZZ" else None
    first, _, rest = body.partition(" ")
    if rest.strip() and _HANDLE.fullmatch(first):
        name = rest.strip().removeprefix("- ").strip()
        return AsName(asn, first, name or first, country)
    return AsName(asn, None, body, country, reserved=body in _RESERVED_NAMES)


class AsNames:
    """ASN -> `AsName`, from pyasn's AS-names JSON (plain or gzip)."""

    def __init__(self, names: Mapping[int, str], source: str) -> None:
        self._names = dict(names)
        self.source = source

    @classmethod
    def load(cls, path: Path | str) -> AsNames:
        path = Path(path)
        text = _read_text(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFileError(str(path), f"not JSON: {exc.msg} (column {exc.colno})",
                                exc.lineno) from exc
        return cls.from_mapping(data, str(path))

    @classmethod
    def from_mapping(cls, data: Any, source: str = "<mapping>") -> AsNames:
        """Build from ``{"asn": "HANDLE Name, CC"}`` (string or int keys)."""
        if not isinstance(data, Mapping):
            raise DataFileError(source, "expected a JSON object of ASN -> name")
        names: dict[int, str] = {}
        for key, value in data.items():
            if not str(key).isdigit() or not isinstance(value, str):
                raise DataFileError(source, f"bad entry {str(key)[:40]!r}: {str(value)[:80]!r}"
                                    " (expected a decimal ASN and a text)")
            names[int(key)] = value
        return cls(names, source)

    def get(self, asn: int) -> AsName | None:
        text = self._names.get(asn)
        return None if text is None else parse_as_name(asn, text)

    def __len__(self) -> int:
        return len(self._names)

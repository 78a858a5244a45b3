"""Defanged URLs: text an analyst can read and no program will open (#15).

The analyst views (store migrations 0013 and 0014, docs/analysts.md) show
every reported URL in this form and never the raw URL; the SQL there applies
the same rule on SQLite and PostgreSQL, and tests/store/test_analyst_views.py
holds the SQL to this function.

The rule, chosen so that plain SQL (``lower``, ``ltrim``, ``substr``,
``replace``) can apply it on both databases:

- text already defanged is read back first (``[.]`` and ``[://]`` as ``.``
  and ``://``), so defanging twice changes nothing: the web UI
  (hostwatch/serve.py) defangs every cell, the views' defanged ones too;
- a leading ``http:`` or ``https:`` becomes ``hxxp:`` / ``hxxps:``, whatever
  follows it: a browser reads ``http:\\\\2130706434\\x``, ``http:/h/x`` and
  ``http:h/x`` as ``http://`` URLs too (the URL Standard: a backslash is a
  slash, missing slashes are fine). The scheme is found as a browser finds
  it: after any leading C0 control characters and spaces (kept as they are),
  in any case, ignoring tabs and line breaks (dropped from the scheme); text
  already defanged (``hxxp:``, ``hxxps:``) stays so;
- in the rest of the text every ``://`` becomes ``[://]`` (a URL inside the
  query string, another scheme), so no ``http://`` is left anywhere;
- every dot becomes ``[.]``.

So the usual ``http://`` and ``https://`` read ``hxxp://`` and ``hxxps://``.
"""

from __future__ import annotations

__all__ = ["defang"]

# What a browser strips before the scheme (the URL Standard's "C0 control or
# space"), and what it drops inside it ("ASCII tab or newline").
_C0_OR_SPACE = "".join(map(chr, range(0x21)))
_TAB_OR_NEWLINE = str.maketrans("", "", "\t\n\r")
# The schemes, raw or already defanged, and what they become.
_SCHEMES = {"http": "hxxp:", "hxxp": "hxxp:", "https": "hxxps:", "hxxps": "hxxps:"}


def defang(url: str) -> str:
    """``url`` defanged (see the module's docstring)."""
    text = url.replace("[.]", ".").replace("[://]", "://")
    body = text.lstrip(_C0_OR_SPACE)
    scheme, colon, rest = body.partition(":")
    # ASCII case-folding only, as SQLite's lower() does.
    head = _SCHEMES.get(_ascii_lower(scheme.translate(_TAB_OR_NEWLINE))) if colon else None
    if head is None:
        return _rest(text)
    return text[:len(text) - len(body)] + head + _rest(rest)


def _rest(text: str) -> str:
    return text.replace("://", "[://]").replace(".", "[.]")


def _ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)

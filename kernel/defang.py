"""Defanged URLs: text an analyst can read and no program will open (#15).

The analyst views (store migration 0013, docs/analysts.md) show every
reported URL in this form and never the raw URL; the SQL there applies the
same rule on SQLite and PostgreSQL, and tests/store/test_analyst_views.py
holds the SQL to this function.

The rule, chosen so that plain SQL (``lower``, ``substr``, ``replace``) can
apply it on both databases:

- a leading ``http://`` or ``https://``, in any case, becomes ``hxxp://`` /
  ``hxxps://``;
- in the rest of the text every ``://`` becomes ``[://]`` (a URL inside the
  query string, another scheme), so no ``http://`` is left anywhere;
- every dot becomes ``[.]``.
"""

from __future__ import annotations

__all__ = ["defang"]

_SCHEMES = (("https://", "hxxps://"), ("http://", "hxxp://"))


def defang(url: str) -> str:
    """``url`` defanged (see the module's docstring)."""
    head = ""
    for scheme, replacement in _SCHEMES:
        # ASCII case-folding only, as SQLite's lower() does.
        if _ascii_lower(url[:len(scheme)]) == scheme:
            head, url = replacement, url[len(scheme):]
            break
    return head + url.replace("://", "[://]").replace(".", "[.]")


def _ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)

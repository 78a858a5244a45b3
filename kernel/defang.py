"""Defanged URLs: text an analyst can read and no program will open (#15).

The analyst views (store migration 0013, docs/analysts.md) show every
reported URL in this form and never the raw URL; the SQL there applies the
same rule on SQLite and PostgreSQL, and tests/store/test_analyst_views.py
holds the SQL to this function.

The rule, chosen so that plain SQL (``lower``, ``substr``, ``replace``) can
apply it on both databases:

- text already defanged is read back first (``[.]`` and ``[://]`` as ``.``
  and ``://``; a leading ``hxxp://``/``hxxps://`` as the scheme), so
  defanging twice changes nothing: the web UI (hostwatch/serve.py) defangs
  every cell, the views' defanged ones too;
- a leading ``http://`` or ``https://``, in any case, becomes ``hxxp://`` /
  ``hxxps://``;
- in the rest of the text every ``://`` becomes ``[://]`` (a URL inside the
  query string, another scheme), so no ``http://`` is left anywhere;
- every dot becomes ``[.]``.
"""

from __future__ import annotations

__all__ = ["defang"]

# The schemes at the start, raw or already defanged, and what they become.
_HEADS = (("https://", "hxxps://"), ("hxxps://", "hxxps://"),
          ("http://", "hxxp://"), ("hxxp://", "hxxp://"))


def defang(url: str) -> str:
    """``url`` defanged (see the module's docstring)."""
    text = url.replace("[.]", ".").replace("[://]", "://")
    head = ""
    for scheme, replacement in _HEADS:
        # ASCII case-folding only, as SQLite's lower() does.
        if _ascii_lower(text[:len(scheme)]) == scheme:
            head, text = replacement, text[len(scheme):]
            break
    return head + text.replace("://", "[://]").replace(".", "[.]")


def _ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)

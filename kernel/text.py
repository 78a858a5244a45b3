"""Text that others chose, made safe to show: `printable()`.

RDAP servers, DNS and crawled servers supply names that hostwatch prints
(`hostwatch whois`) and writes into documents (the evidence packs'
Markdown). Such text may hold control characters that move a terminal's
cursor, clear its screen or reorder what a reader sees (bidi overrides).
"""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: str) -> str:
    """``text`` with every character that is not printable (C0 and C1
    controls such as ESC, DEL, line breaks, bidi overrides and other format
    characters) written as a visible escape (``\\x1b``, ``\\u202e``): the
    reader sees that something was there, and nothing acts on it."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)

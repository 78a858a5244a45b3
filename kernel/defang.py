"""Reported URLs written so that nothing opens them (#15).

A report, a view or a web page that lists reported URLs must never put one a
click away: a reader's program turns ``https://host.example/x.jpg`` into a
link, a Markdown renderer into an anchor. The convention of threat
intelligence ("defanging") breaks what linkifiers look for: the scheme
becomes ``hxxp``/``hxxps`` and every dot ``[.]``, so the text still reads as
the URL an analyst knows, and copying it back is a deliberate act.
"""

from __future__ import annotations

import re

__all__ = ["defang"]

# Any http(s) scheme, also one inside the URL (a redirector's parameter).
_SCHEME = re.compile(r"h(?:tt|xx)p(s?)(?=:)", re.IGNORECASE)


def defang(url: str) -> str:
    """``https://a.example/x.jpg`` -> ``hxxps://a[.]example/x[.]jpg``.

    Every dot is bracketed (a host hides in a path or a query just as well),
    and every ``http``/``https`` scheme, in any case and anywhere in the
    text, becomes ``hxxp``/``hxxps``.
    Idempotent: a defanged URL is returned as it is.
    """
    text = url.replace("[.]", ".").replace(".", "[.]")
    return _SCHEME.sub(lambda m: "hxxp" + m.group(1).lower(), text)

"""What hostwatch says about bytes a server sent: never the bytes themselves.

A server decides what its status line, headers and body say, and parsers
quote what they choke on in their exception messages ("Bad status line:
b'...'", "Got more than 8190 bytes when reading: b'...'"). Such bytes may be
the material itself, and a log file is as much a stored copy as a database
row. So no log record, error message or free-text reason carries them:
hostwatch describes them in its own words (a kind, a class name, a length, a
hash). What it keeps on purpose, as evidence in fields of their own, is the
status code, the selected response headers (`evidence_header()` says what
of them is stored) and the URLs it requested (the reported URL, every
redirect hop, the final URL).

This module is the log side of that rule. `install()` puts a record factory
in front of every log record the process makes, whichever library makes it
and whichever handler prints it:

- hostwatch's own records (loggers under hostwatch's packages and the
  spider's logger) keep their text; an exception, Twisted failure or bytes
  passed as an argument is reduced to its description;
- a third-party record keeps its text only when its message template is one
  listed in ``SAFE_TEMPLATES`` (Scrapy's start-up, per-request and closing
  lines, whose arguments are settings, counts, requests and hostwatch's own
  items), its arguments reduced the same way; any other third-party record
  is withheld: its logger, level, length and a hash are printed instead, as
  its text may quote what a server sent (aiohttp's and Twisted's messages
  do). A library changing a template makes its line withheld, never leaked;
- an exception attached to a record (``logger.exception``, ``exc_info``) is
  printed as its traceback's frames and the class names of its causes; the
  message is kept only for hostwatch's own exception classes. So is an
  exception nothing caught (``sys.excepthook``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

# Packages whose log records and exception messages are hostwatch's own words.
# Every product package but lab (the local test internet plays the servers
# whose words are withheld). tests/test_redact.py keeps this in step with the
# layers (tests/test_layers.py).
OWN_PACKAGES = frozenset({"hostwatch", "kernel", "outbound", "store", "crawler", "enrichment",
                          "reports"})
# Loggers named after a spider (Scrapy's Spider.logger) are hostwatch's too.
OWN_LOGGERS = frozenset({"recheck"})

# Third-party message templates whose text is the library's own, each with
# the arguments whose text it may print as it is: settings, names, counts,
# flags ("*": every argument). Other text arguments are withheld; requests
# print as method and URL (the URLs hostwatch requested are evidence it
# stores), failures as class names, hostwatch's items as themselves.
# Anything else a library logs is withheld (see the module docstring).
ALL = frozenset({"*"})
SAFE_TEMPLATES: dict[str, frozenset[str]] = {
    # scrapy: start-up and shut-down
    "Scrapy %(version)s started (bot: %(bot)s)": ALL,
    "Enabled addons:\n%(addons)s": ALL,
    "Enabled %(componentname)ss:\n%(enabledlist)s": ALL,
    "Overridden settings:\n%(settings)s": ALL,
    "Using reactor: %s.%s": ALL,
    "Using asyncio event loop: %s.%s": ALL,
    "Spider opened": ALL,
    "Closing spider (%(reason)s)": ALL,
    "Spider closed (%(reason)s)": ALL,
    "Received %(signame)s, shutting down gracefully. Send again to force ": ALL,
    "Received %(signame)s twice, forcing unclean shutdown": ALL,
    # scrapy: per request (scrapy.logformatter, the redirect middleware)
    "Crawled (%(status)s) %(request)s%(request_flags)s (referer: %(referer)s)"
    "%(response_flags)s": frozenset({"request_flags", "response_flags"}),
    "Scraped from %(src)s" + os.linesep + "%(item)s": frozenset(),
    "Dropped: %(exception)s" + os.linesep + "%(item)s": frozenset(),
    "Error downloading %(request)s": frozenset(),
    "Error downloading %(request)s: %(errmsg)s": frozenset(),
    "Spider error processing %(request)s (referer: %(referer)s)": frozenset(),
    "Error processing %(item)s": frozenset(),
    "Redirecting (%(reason)s) to %(redirected)s from %(request)s": frozenset({"reason"}),
    "Discarding %(request)s: max redirections reached": frozenset(),
    # asyncio
    "Using selector: %s": ALL,
}

# Pre-formatted third-party messages (f-strings) whose whole text hostwatch
# trusts: Scrapy's version list and its stats, whose keys and values in
# hostwatch's crawl are settings, counts and class names (the per-response
# stats collectors that could record more are switched off in
# crawler.settings).
SAFE_PREFIXES = ("Versions:\n", "Dumping Scrapy stats:\n")
# Libraries that never see a server's bytes: their records are kept as they are.
TRUSTED_LOGGERS = frozenset({"alembic"})

# Header values longer than this are cut before they are stored.
MAX_HEADER_VALUE = 512
# Headers whose value is a number by definition.
NUMERIC_HEADERS = frozenset({"content-length", "age"})
# The scheme of a URL. A stored Location may name http(s) only: any other
# (data:, javascript:...) can carry content itself.
_URL_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]*):")
_C0_OR_SPACE = "".join(map(chr, range(0x21)))
_TAB_OR_NEWLINE = dict.fromkeys(map(ord, "\t\n\r"))
_FACTORY_MARK = "_hostwatch_redacts"


def digest(data: bytes | str) -> str:
    """A short, stable name for some bytes: their length and a SHA-256 prefix."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
    unit = "chars" if isinstance(data, str) else "bytes"
    return f"{len(data)} {unit}, sha256 {hashlib.sha256(raw).hexdigest()[:16]}"


def is_own(thing: object) -> bool:
    """True for an object or class defined in one of hostwatch's packages."""
    cls = thing if isinstance(thing, type) else type(thing)
    return cls.__module__.split(".", 1)[0] in OWN_PACKAGES


def causes(exc: BaseException) -> list[BaseException]:
    """The exception, what it was raised from, and the failures a Twisted
    exception wraps (``reasons``): outermost first, innermost last."""
    seen: list[BaseException] = []
    stack = [exc]
    while stack and len(seen) < 20:
        current = stack.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        if current.__cause__ is not None:
            stack.append(current.__cause__)
        for reason in getattr(current, "reasons", None) or ():
            value = getattr(reason, "value", None)
            if isinstance(value, BaseException):
                stack.append(value)
    return seen


def describe_exception(exc: BaseException) -> str:
    """Class names of the exception and its causes (``A <- B <- C``), and the
    message of the outermost one that is hostwatch's own: third-party messages
    can quote what a server sent."""
    chain = causes(exc)
    names = " <- ".join(dict.fromkeys(type(c).__name__ for c in chain))
    own = next((c for c in chain if is_own(c) and str(c)), None)
    return f"{names}: {own}" if own is not None else names


def evidence_header(name: str, value: str) -> str:
    """What hostwatch stores of a selected response header (``name`` lowercase).

    Headers are evidence (attribution, CDN detection, redirects), stored cut
    to MAX_HEADER_VALUE characters. A Location naming anything but an http(s)
    URL or a relative reference (``data:text/html,...``) is content, not an
    address: it is stored as its scheme, length and hash; so is a value of a
    numeric header (Content-Length, Age) that is not a number.
    """
    if name in ("location", "content-location"):
        scheme = _URL_SCHEME.match(_as_browser_reads(value))
        if scheme and scheme.group(1).lower() not in ("http", "https"):
            return f"<{scheme.group(1).lower()}: URL withheld: {digest(value)}>"
    if name in NUMERIC_HEADERS and not (value.strip().isdigit() and len(value) <= 20):
        # A number by definition: anything else is not evidence of a length.
        return f"<not a number, withheld: {digest(value)}>"
    return value[:MAX_HEADER_VALUE]


def _as_browser_reads(url: str) -> str:
    """``url`` as the URL Standard reads it before parsing: C0 controls and
    spaces stripped from both ends, tabs and line breaks removed anywhere
    (so "\\x01data:..." and "da\\tta:..." are data: URLs to a browser)."""
    return url.strip(_C0_OR_SPACE).translate(_TAB_OR_NEWLINE)


def _is_failure(value: object) -> bool:
    """A twisted.python.failure.Failure, recognised without importing Twisted."""
    return (hasattr(value, "getTraceback") and hasattr(value, "value")
            and hasattr(value, "type"))


def safe_arg(value: Any) -> Any:
    """A log argument as hostwatch may print it (see the module docstring)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, BaseException):
        return describe_exception(value)
    if _is_failure(value):
        inner = value.value
        return describe_exception(inner) if isinstance(inner, BaseException) else "failure"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<bytes withheld: {digest(bytes(value))}>"
    if is_own(value):
        return value
    cls = type(value).__name__
    url = getattr(value, "url", None)
    if isinstance(url, str):
        # Scrapy's Request and Response: the method or status, and the URL
        # (the reported URL or a redirect hop, both stored as evidence).
        method = getattr(value, "method", None)
        status = getattr(value, "status", None)
        head = method if isinstance(method, str) else status if isinstance(status, int) else cls
        return f"<{head} {url}>"
    if isinstance(value, list | tuple | set | frozenset):
        return [safe_arg(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): safe_arg(v) for k, v in value.items()}
    return f"<{cls}>"


def _safe_args(args: Any, trusted: frozenset[str]) -> Any:
    """``args`` reduced by safe_arg(); text kept only for the ``trusted`` keys."""
    def one(key: str, value: Any) -> Any:
        if isinstance(value, str) and "*" not in trusted and key not in trusted:
            return f"<text withheld: {digest(value)}>"
        return safe_arg(value)

    if isinstance(args, Mapping):
        return {k: one(str(k), v) for k, v in args.items()}
    if isinstance(args, tuple):
        return tuple(one(str(n), v) for n, v in enumerate(args))
    return args


def safe_traceback(exc: BaseException) -> str:
    """The frames of ``exc``'s traceback (hostwatch's and libraries' code, not
    data) and the class names of its causes; messages as describe_exception()."""
    frames = "".join(traceback.TracebackException.from_exception(exc).stack.format())
    return f"Traceback (most recent call last):\n{frames}{describe_exception(exc)}"


def redact(record: logging.LogRecord) -> logging.LogRecord:
    """Reduce ``record`` in place to what hostwatch may print (module docstring)."""
    top = record.name.split(".", 1)[0]
    template = record.msg
    if top in OWN_PACKAGES or record.name in OWN_LOGGERS or top in TRUSTED_LOGGERS:
        trusted: frozenset[str] | None = ALL
    elif not isinstance(template, str):
        trusted = None
    elif template.startswith(SAFE_PREFIXES) and not record.args:
        trusted = ALL
    else:
        trusted = SAFE_TEMPLATES.get(template)
    if trusted is not None:
        if record.args:
            record.args = _safe_args(record.args, trusted)
    else:
        text = template if isinstance(template, str) else repr(template)
        record.msg = (f"[{record.name} message withheld: {digest(text)}; it may quote "
                      "what a server sent]")
        record.args = None
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = safe_traceback(record.exc_info[1])
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = f"[traceback withheld: {digest(record.exc_text)}]"
    return record


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """An uncaught exception, printed as safe_traceback() does."""
    sys.stderr.write(safe_traceback(exc.with_traceback(tb)) + "\n")


@contextmanager
def installed() -> Iterator[None]:
    """Redact while the block runs (a library call that talks to servers),
    then put back the log record factory and exception hook found before;
    a process that installed redaction already keeps it."""
    factory, hook = logging.getLogRecordFactory(), sys.excepthook
    install()
    try:
        yield
    finally:
        logging.setLogRecordFactory(factory)
        sys.excepthook = hook


def install() -> None:
    """Redact every log record this process makes from now on, and the
    traceback of an uncaught exception (idempotent)."""
    sys.excepthook = _excepthook
    previous = logging.getLogRecordFactory()
    if getattr(previous, _FACTORY_MARK, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact(previous(*args, **kwargs))

    setattr(factory, _FACTORY_MARK, True)
    logging.setLogRecordFactory(factory)



_SECRET_PARAMS = re.compile(r"(?i)\b(password|passfile|sslpassword)=[^&\s]*")


def without_password(url: str) -> str:
    """A database URL (or libpq connection string) fit for a message: its
    password, in the user part or as a parameter, shown as ``***``."""
    text = _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}=***", url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    authority, slash, tail = rest.partition("/")
    if "@" not in authority:
        return text
    userinfo, _, host = authority.rpartition("@")  # the last @ ends the user part
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}{slash}{tail}"

"""Typed crawler errors and the mapping of fetch failures to error kinds.

This is where a failed fetch becomes what a check records: an error kind and
a short reason in hostwatch's own words. Exception messages of other
libraries are kept only where they cannot hold a byte the server sent (a
timeout, a refused connection); elsewhere the reason names the classes only,
because parsers quote what they choke on (kernel.redact).
"""

from __future__ import annotations

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
    UnsupportedURLSchemeError,
)
from twisted.internet import error as txerror
from twisted.python.failure import Failure

from crawler.verdict import ErrorKind
from kernel.errors import CrawlError
from kernel.redact import causes as exception_causes
from kernel.redact import describe_exception


class CrawlerError(CrawlError):
    """Root of the crawler's own errors."""


class RefusedTarget(IgnoreRequest, CrawlerError):
    """The request was stopped before connecting; ``kind`` says why."""

    def __init__(self, kind: ErrorKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def error_kind(failure: Failure | BaseException) -> tuple[ErrorKind, str]:
    """What kind of failure this was, and a short description of it."""
    exc = failure.value if isinstance(failure, Failure) else failure
    if exc is None:
        return ErrorKind.OTHER, "unknown failure"
    if isinstance(exc, RefusedTarget):
        return exc.kind, exc.detail
    causes = exception_causes(exc)
    detail = _describe(exc, causes)
    names = {type(c).__name__ for c in causes}
    if isinstance(exc, IgnoreRequest) and "max redirections" in str(exc):
        return ErrorKind.REDIRECT_LOOP, "too many redirects"
    if isinstance(exc, DownloadTimeoutError) or any(
            isinstance(c, txerror.TimeoutError | TimeoutError) for c in causes):
        return ErrorKind.TIMEOUT, detail
    if isinstance(exc, DownloadConnectionRefusedError) or any(
            isinstance(c, txerror.ConnectionRefusedError | ConnectionRefusedError)
            for c in causes):
        return ErrorKind.REFUSED, detail
    if names & {"SSLError", "Error"} and any("SSL" in repr(c) or "ssl" in repr(c)
                                               for c in causes):
        return ErrorKind.TLS, detail
    if isinstance(exc, CannotResolveHostError):
        return ErrorKind.DNS_SERVFAIL, detail
    if isinstance(exc, UnsupportedURLSchemeError):
        return ErrorKind.UNSUPPORTED, detail
    if any(type(c).__name__ in {"ParseError", "BadHeaders", "_DataLoss"} for c in causes):
        return ErrorKind.BAD_RESPONSE, detail
    if isinstance(exc, ResponseDataLossError):
        return ErrorKind.BAD_RESPONSE, detail
    if any(isinstance(c, txerror.ConnectionDone | txerror.ConnectionLost | ConnectionResetError)
           for c in causes):
        return ErrorKind.CONNECTION_LOST, detail
    if isinstance(exc, DownloadFailedError | DownloadCancelledError):
        return ErrorKind.BAD_RESPONSE, detail
    return ErrorKind.OTHER, detail


# Failures whose message cannot hold bytes the server sent.
_SAFE_MESSAGES = (txerror.TimeoutError, TimeoutError, txerror.ConnectionRefusedError,
                  ConnectionRefusedError, DownloadTimeoutError, DownloadConnectionRefusedError,
                  IgnoreRequest, txerror.ConnectionDone, txerror.ConnectionLost,
                  ConnectionResetError)


def _describe(exc: BaseException, causes: list[BaseException]) -> str:
    """Class names, plus the message only where it cannot carry response bytes
    (a timeout, a refused connection, hostwatch's own errors): a parse error's
    message quotes what the server sent, which may be the material itself."""
    innermost = causes[-1]
    if isinstance(innermost, _SAFE_MESSAGES):
        names = " <- ".join(dict.fromkeys(type(c).__name__ for c in causes))
        return f"{names}: {innermost}"[:300]
    return describe_exception(exc).splitlines()[0][:500]

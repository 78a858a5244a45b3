"""hostwatch's errors: one tree under one root, ``HostwatchError``.

Each layer raises its own branch; the branches' roots live here so that every
package can name them without importing a package above it (the leaves live
with the code that raises them: ``UrlError`` in kernel/urls.py, ``LockBusy``
in store/lock.py, ``FetchError`` in outbound/http.py, an EnrichmentError...). Catch
``HostwatchError`` to catch everything hostwatch raises on purpose; the
message always names what and where.

    HostwatchError
    ├── InvalidArgument    a value passed to a library call it cannot use (also a ValueError)
    ├── ConfigError        a setting hostwatch cannot use (also a ValueError)
    ├── UrlError           a reported URL hostwatch cannot check (also a ValueError)
    ├── StoreError         the store cannot be opened or used (also a RuntimeError);
    │                      files that cannot be imported, the run lock, hoster lookups
    ├── EnrichmentError    DNS, RDAP, the prefix table, outbound fetches
    ├── CrawlError         the crawl and the browser check
    └── ReportError        reports, evidence packs, XARF, pack verification
"""

from __future__ import annotations


class HostwatchError(Exception):
    """Root of every error hostwatch raises on purpose."""


class InvalidArgument(HostwatchError, ValueError):
    """A value passed to a hostwatch call that it cannot use; the message
    names the argument and the values it takes."""


class ConfigError(HostwatchError, ValueError):
    """A setting has a value hostwatch cannot use."""


class StoreError(HostwatchError, RuntimeError):
    """The store cannot be opened or used."""


class EnrichmentError(HostwatchError):
    """Root of the enrichment's errors (DNS, RDAP, the prefix table, fetches)."""


class CrawlError(HostwatchError):
    """Root of the crawl's errors (the spider, its components, the browser)."""


class ReportError(HostwatchError):
    """Root of the reports' errors (reports, evidence packs, XARF, verification)."""

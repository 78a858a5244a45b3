"""hostwatch: re-check reported abuse-material URLs without keeping the material.

The library API, as the ``hostwatch`` command uses it (hostwatch.api):

- `open_store(db, config=...)` opens (creates, upgrades) a store and returns
  a `Hostwatch` handle; ``Hostwatch(config)`` does the same from a
  `Config` (default: ``Config.from_env()``, the HOSTWATCH_* environment).
  Close it, or use it in a ``with`` block.
- The handle's methods are the commands: ``import_reports``,
  ``import_notices``, ``import_orders``, ``import_checks``; ``crawl`` (plain
  or ``browser=True``; once per process: Scrapy's reactor cannot restart)
  and ``enrich``; ``whois``; ``update_states``, ``status``, ``cases``,
  ``deadlines``; ``hoster_report`` (render it with `render_hoster_report`),
  ``evidence_pack``, ``xarf``, ``export_sqlite``; ``verify`` (the hash chain and evidence
  packs). They return data (`ImportResult`, `CrawlOutcome`, `StoreStatus`,
  `EvidencePack`, `XarfExport`, `Verification`...) and print nothing.
- Errors: one tree under `HostwatchError` (`ConfigError`, `UrlError`;
  `StoreError` with `LockBusy`, `FileError`, `ImportRefused`,
  `HosterNotFound`, `HosterAmbiguous`; `EnrichmentError`; `CrawlError` with
  `CrawlFailed`; `ReportError` with `XarfError`, `ClassificationRequired`;
  `InvalidArgument` for a value a call cannot use).
- Logging: ``crawl`` runs Scrapy, which configures the process's logging
  (a root handler on stderr) and installs hostwatch's redaction for good:
  from then on every log record that is not hostwatch's own words is
  withheld, your program's included (no byte a server sent may reach a
  log). ``enrich`` and ``whois`` redact only while they run. Crawl in a
  child process (``python -m hostwatch crawl``) to keep your logging.

Example::

    import hostwatch

    with hostwatch.open_store("sqlite:///hostwatch.db") as hw:
        print(hw.import_reports("reports.csv").added, "cases added")
        hw.update_states()
        report = hw.hoster_report()
        html = hostwatch.render_hoster_report(report, "html")

The ``hostwatch`` command (hostwatch.cli) is a thin layer over this API.
"""

from hostwatch.api import (
    REPORT_FORMATS,
    CaseRow,
    ClassificationRequired,
    CrawlFailed,
    CrawlOutcome,
    EvidencePack,
    Hostwatch,
    ImportRefused,
    PackVerification,
    StoreStatus,
    Verification,
    XarfExport,
    case_as_dict,
    open_store,
    render_hoster_report,
)
from kernel import __version__
from kernel.config import Config
from kernel.errors import (
    ConfigError,
    CrawlError,
    EnrichmentError,
    HostwatchError,
    InvalidArgument,
    ReportError,
    StoreError,
)
from kernel.urls import UrlError
from reports.xarf import Party, XarfError
from store import CrawlRun, Store
from store.hosters import HosterAmbiguous, HosterLookupError, HosterNotFound
from store.imports import ImportResult
from store.lock import LockBusy
from store.readers import FileError

__all__ = [
    "CaseRow",
    "ClassificationRequired",
    "Config",
    "ConfigError",
    "CrawlError",
    "CrawlFailed",
    "CrawlOutcome",
    "CrawlRun",
    "EnrichmentError",
    "EvidencePack",
    "FileError",
    "Hostwatch",
    "HostwatchError",
    "HosterAmbiguous",
    "HosterLookupError",
    "HosterNotFound",
    "ImportRefused",
    "ImportResult",
    "InvalidArgument",
    "LockBusy",
    "PackVerification",
    "REPORT_FORMATS",
    "Party",
    "ReportError",
    "Store",
    "StoreError",
    "StoreStatus",
    "UrlError",
    "Verification",
    "XarfError",
    "XarfExport",
    "__version__",
    "case_as_dict",
    "open_store",
    "render_hoster_report",
]

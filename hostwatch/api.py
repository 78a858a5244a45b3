"""hostwatch's library API: everything the ``hostwatch`` command does, as calls.

Open a store with `open_store` (or ``Hostwatch(config)``); the handle it
returns has one method per command::

    import hostwatch

    with hostwatch.open_store("sqlite:///hostwatch.db") as hw:
        hw.import_reports("reports.csv")         # hostwatch import
        hw.crawl()                               # hostwatch crawl (once per process)
        hw.enrich()                              # hostwatch enrich
        report = hw.hoster_report()              # hostwatch report hosters
        html = hostwatch.render_hoster_report(report, "html")

Settings come from a `kernel.config.Config` (default: ``Config.from_env()``,
the HOSTWATCH_* environment). Every method returns data and prints nothing;
the CLI (hostwatch.cli) parses arguments, calls these methods, prints and
chooses the exit status. What goes wrong on purpose raises a
`HostwatchError` (kernel.errors), whose branches name the stage:
`StoreError` (also `LockBusy`, `FileError`, `ImportRefused`,
`HosterNotFound`, `HosterAmbiguous`), `EnrichmentError`, `CrawlError` (also
`CrawlFailed`), `ReportError` (also `XarfError`, `ClassificationRequired`,
evidence and pack errors), `ConfigError`, `UrlError`. Writing files can
raise `OSError`.

Heavy parts (Scrapy, the report figures, the evidence packs) are imported
when a method needs them, so ``import hostwatch`` stays quick.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from kernel import redact
from kernel.config import Config
from kernel.errors import CrawlError, InvalidArgument, ReportError, StoreError
from kernel.location import server_and_edge
from kernel.model import CaseState, Category, RunHealth
from kernel.schedule import DUE_DEADLINES, DUE_NIGHTLY
from kernel.urls import Refusal, UrlError
from reports.location import server_location_of
from reports.xarf import Party, XarfError
from store import CrawlRun, Store, queries
from store.imports import ImportResult
from store.lock import RunLock
from store.models import RunWorker
from store.queries import CaseRow
from store.runs import workers_of_run

if TYPE_CHECKING:
    from enrichment.attribute import EnrichResult, Facts
    from reports.deadline_cases import CaseDeadline
    from reports.evidence import EvidenceData
    from reports.hosters import HosterReport
    from reports.verify import PackResult
    from reports.xarf import HosterFacts
    from store.checks import ChainProblem

__all__ = [
    "CaseRow",
    "ClassificationRequired",
    "CrawlFailed",
    "CrawlOutcome",
    "EvidencePack",
    "Hostwatch",
    "ImportRefused",
    "PackVerification",
    "REPORT_FORMATS",
    "StoreStatus",
    "Verification",
    "XarfExport",
    "case_as_dict",
    "open_store",
    "render_hoster_report",
]

# A notice goes to a hoster about material that may still be there; removed
# cases only on request. Unchecked cases have no hoster of record yet.
OPEN_STATES = (CaseState.ONLINE.value, CaseState.PENDING_REMOVAL.value,
               CaseState.REAPPEARED.value)
REPORT_FORMATS = ("html", "md", "csv", "json")
_UPDATE_BATCH = 5000  # cases whose state is derived again per transaction

# Scrapy's reactor cannot be restarted: one crawl per process.
_crawled = False


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class CrawlOutcome:
    """What one `Hostwatch.crawl` did.

    ``nothing_due``: a deadline crawl found no check due and started nothing.
    ``run``: the crawl run it recorded (None when nothing was due).
    ``deadlines``: for a deadline crawl, the order deadlines of the cases it
    checked, judged right after it (notices left out).
    """

    nothing_due: bool = False
    run_id: int | None = None
    run: CrawlRun | None = None
    deadlines: list[CaseDeadline] = field(default_factory=list)
    store_error: str | None = None  # set only on the outcome a CrawlFailed carries

    @property
    def suspect(self) -> bool:
        """The run was judged suspect: its gone and failed checks count for nothing yet."""
        return self.run is not None and self.run.health == RunHealth.SUSPECT.value

    @property
    def finished(self) -> bool:
        """The run checked every due case (or nothing was due)."""
        return self.run is None or self.run.status == "finished"


class WorkerMisconfigured(CrawlError):
    """A worker's store (HOSTWATCH_DB) is not its coordinator's: a setting to
    correct, not an outage (`hostwatch worker` exits 78)."""


class CrawlFailed(CrawlError):
    """The crawl stopped because its checks could not be written; ``outcome``
    is the run as far as it went."""

    def __init__(self, message: str, outcome: CrawlOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome


class ImportRefused(StoreError):
    """The store refused an import's write (a constraint, a full disk...):
    nothing of the file was written."""


@contextmanager
def _import_of(path: Path) -> Iterator[None]:
    """Turn the database's refusal of an import into `ImportRefused`."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except SQLAlchemyError as exc:
        raise ImportRefused(f"{path}: the store refused the import, nothing written: "
                            f"{getattr(exc, 'orig', None) or exc}") from exc


@dataclass(frozen=True)
class StoreStatus:
    """What `hostwatch status` shows: cases per state and the last run."""

    counts: dict[str, int]  # state -> cases (states without cases left out)
    last_run: CrawlRun | None
    # Checks stored so far by the last run when it has not finished (a
    # finished run's count is last_run.checks_made); None otherwise.
    checks_so_far: int | None
    suspect_runs: int  # runs judged suspect, in all
    unconfirmed_cases: int  # cases awaiting confirmation by a healthy run
    # The worker processes of the last run when workers shared it (store.queue).
    workers: list[RunWorker] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Cases in the store."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class EvidencePack:
    """A written evidence pack: its data, files, folder and zip."""

    data: EvidenceData
    files: dict[str, bytes]
    folder: Path
    archive: Path


class ClassificationRequired(XarfError):
    """csam reports need a legal classification and none was given;
    ``cases``: how many csam cases need it."""

    def __init__(self, cases: int) -> None:
        from reports.xarf import CLASSIFICATIONS

        self.cases = cases
        super().__init__(
            f"{cases} csam cases need a classification (classification=), one of "
            f"{', '.join(CLASSIFICATIONS)}: XARF v4 csam reports require the legal "
            "classification, which hostwatch does not record")


@dataclass(frozen=True)
class XarfExport:
    """XARF v4 reports for one hoster's cases (not yet written anywhere)."""

    hoster: HosterFacts
    reports: list[dict[str, Any]]
    states: Counter[str]  # exported cases per state
    skipped: dict[str, list[str]]  # category -> "source/id" of cases without a type

    @property
    def ncii(self) -> int:
        """Reports of hostwatch's own type ncii (not XARF v4)."""
        return sum(1 for report in self.reports if report["type"] == "ncii")


@dataclass(frozen=True)
class PackVerification:
    """One evidence pack checked against the store: ``result``, or ``error``
    when the pack could not be read at all."""

    path: Path
    result: PackResult | None = None
    error: str | None = None

    @property
    def problems(self) -> list[str]:
        """What is wrong with this pack, in words (empty: it holds)."""
        if self.error is not None:
            return [self.error]
        return list(self.result.problems) if self.result else []


@dataclass(frozen=True)
class Verification:
    """The check hash chain and evidence packs, verified."""

    checks: int  # checks whose record hash and link were recomputed
    chain: list[ChainProblem]
    head_check_id: int | None
    packs: list[PackVerification] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Every problem, in words: the chain's, then each pack's."""
        found = [str(problem) for problem in self.chain]
        for pack in self.packs:
            found += pack.problems
        return found

    @property
    def ok(self) -> bool:
        """The chain and every pack hold."""
        return not self.problems

    @property
    def files_checked(self) -> int:
        """Files of the packs checked against their manifests."""
        return sum(p.result.files_checked for p in self.packs if p.result)

    @property
    def pack_checks_checked(self) -> int:
        """Checks of the packs found unchanged in the store."""
        return sum(p.result.checks_checked for p in self.packs if p.result)


# ---------------------------------------------------------------- the handle


class Hostwatch:
    """An open store and the settings to work on it.

    ``Hostwatch(config)`` opens ``config.db`` and brings its schema up to
    date (raises `StoreError` when it cannot). Use it as a context manager,
    or call `close`. Methods mirror the commands: `import_reports`,
    `import_notices`, `import_orders`, `import_checks`, `crawl`, `enrich`,
    `whois`, `update_states`, `status`, `cases`, `deadlines`,
    `hoster_report`, `evidence_pack`, `xarf`, `export_sqlite`, `verify`.
    """

    def __init__(self, config: Config | None = None, *, store: Store | None = None) -> None:
        self.config = Config.from_env() if config is None else config
        if store is None:
            store = Store(self.config.db)
            try:
                store.upgrade()
            except BaseException:
                store.dispose()
                raise
        self.store = store

    def close(self) -> None:
        """Release the store's connections."""
        self.store.dispose()

    def __enter__(self) -> Hostwatch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Hostwatch({self.store.safe_url!r})"

    # -- imports ------------------------------------------------------------

    def import_reports(self, path: str | Path, *, source: str = "hotline",
                       fmt: str | None = None) -> ImportResult:
        """Import hotline reports (CSV or JSON Lines; ``fmt`` "csv" or "jsonl",
        default from the extension): one case per row. Rejected rows are in
        the result; re-importing changes nothing. Raises `FileError` when the
        file cannot be read, `ImportRefused` when the store refuses the write
        (nothing written either way)."""
        from store.imports import import_cases

        with _import_of(Path(path)):
            return import_cases(self.store, Path(path), source=source, fmt=fmt)

    def import_notices(self, path: str | Path, *, source: str = "hotline",
                       fmt: str | None = None) -> ImportResult:
        """Import the notices sent to hosters about imported cases."""
        from store.imports import import_notices

        with _import_of(Path(path)):
            return import_notices(self.store, Path(path), source=source, fmt=fmt)

    def import_orders(self, path: str | Path, *, source: str = "hotline",
                      fmt: str | None = None) -> ImportResult:
        """Import removal orders about imported cases (deadlines beyond the
        legal cap are taken, with a note in the result)."""
        from store.imports import import_orders

        with _import_of(Path(path)):
            return import_orders(self.store, Path(path), source=source, fmt=fmt)

    def import_checks(self, path: str | Path, *, source: str = "hotline",
                      fmt: str | None = None) -> ImportResult:
        """Import an earlier check log; the cases' states are derived again.
        Takes the run lock: raises `LockBusy` while a crawl or enrichment runs."""
        from store.imports import import_checks

        with _import_of(Path(path)), RunLock(self.store, self.config.data_dir):
            return import_checks(self.store, Path(path), self.config.debounce(),
                                 source=source, fmt=fmt)

    # -- crawl and enrichment -----------------------------------------------

    def deadline_checks_due(self, now: datetime | None = None) -> int:
        """How many deadline checks of removal orders are due now."""
        from store.schedule import count_deadline_due

        with self.store.session() as session:
            return count_deadline_due(session, now or datetime.now(UTC),
                                      self.config.schedule_rule())

    def crawl(self, *, limit: int | None = None, deadlines: bool = False,
              browser: bool = False, workers: int | None = None) -> CrawlOutcome:
        """Re-check every due case (``deadlines``: only the deadline checks
        that are due) in this process, with Scrapy; ``browser``: every case
        in Chromium; ``limit``: at most so many cases.

        Scrapy's reactor cannot be restarted, so a process can crawl once:
        a second call raises `CrawlError` (run further crawls in child
        processes, ``python -m hostwatch crawl``). A deadline crawl with
        nothing due returns at once (``nothing_due``) without starting
        Scrapy. Raises `LockBusy` when another run holds the lock, and
        `CrawlFailed` when checks could not be written. A suspect or
        unfinished run is no error: see ``outcome.suspect``/``finished``.

        ``workers``: share the run through the queue (HOSTWATCH_QUEUE; the
        store must be PostgreSQL) with so many worker processes on this
        machine (0: only workers started elsewhere, `work`); raises
        `CrawlError` when the queue cannot be reached.
        """
        global _crawled
        due = DUE_DEADLINES if deadlines else DUE_NIGHTLY
        if deadlines and not self.deadline_checks_due():
            return CrawlOutcome(nothing_due=True)
        if _crawled:
            raise CrawlError("this process has crawled already: Scrapy's reactor cannot "
                             "restart; crawl again in a new process")
        from crawler.run import run_crawl  # Scrapy: slow to import, only here
        from store.lock import LockBusy

        if workers is not None:
            self._check_shared()
        _crawled = True
        stats = run_crawl(self.config, limit, due, browser, workers=workers)
        queue_error = stats.get("hostwatch/queue_error")
        if queue_error and not isinstance(stats.get("hostwatch/run_id"), int):
            raise CrawlError(str(queue_error))
        if stats.get("hostwatch/nothing_due"):
            return CrawlOutcome(nothing_due=True)
        busy = stats.get("hostwatch/lock_busy")
        if busy:
            raise LockBusy(str(busy))
        run_id = stats.get("hostwatch/run_id")
        if not isinstance(run_id, int):
            if stats.get("hostwatch/store_error"):  # the store writer could not start
                raise CrawlError("checks could not be written, no run started: "
                                 f"{stats['hostwatch/store_error']}")
            raise CrawlError("the crawl ended before it started a run; see the log above")
        failed = stats.get("hostwatch/store_error") or queue_error
        with self.store.session() as session:
            run = session.get(CrawlRun, run_id)
        try:
            found = self._run_deadlines(run_id) if due == DUE_DEADLINES else []
        except SQLAlchemyError:
            if not failed:
                raise
            found = []  # the store failed already: the CrawlFailed below says so
        if queue_error:
            raise CrawlFailed(f"the run's cases could not be queued: {queue_error}",
                              CrawlOutcome(run_id=run_id, run=run, deadlines=found,
                                           store_error=str(queue_error)))
        if failed:
            raise CrawlFailed(f"checks could not be written, crawl stopped: {failed}",
                              CrawlOutcome(run_id=run_id, run=run, deadlines=found,
                                           store_error=str(failed)))
        return CrawlOutcome(run_id=run_id, run=run, deadlines=found)

    def _check_shared(self) -> None:
        """A shared run needs a queue and a store on PostgreSQL."""
        if not self.config.queue:
            raise CrawlError("a run shared by workers needs HOSTWATCH_QUEUE, the PostgreSQL "
                             "URL of the queue (often the store's own)")
        if self.store.dialect != "postgresql":
            raise CrawlError("a run shared by workers needs the store on PostgreSQL "
                             "(HOSTWATCH_DB=postgresql+psycopg://...): workers on several "
                             "machines write to it at once")

    def work(self) -> None:
        """Be a worker of shared runs (`hostwatch worker`): take batches of
        due cases from the queue (HOSTWATCH_QUEUE) and check them, until
        SIGTERM or Ctrl-C (then the batches in hand are finished first).
        Raises `CrawlError` when the queue cannot be reached, and
        `WorkerMisconfigured` when the store is not the coordinator's."""
        global _crawled
        if _crawled:
            raise CrawlError("this process has crawled already: Scrapy's reactor cannot "
                             "restart; start a worker in a new process")
        self._check_shared()
        from crawler.run import run_crawl

        _crawled = True
        stats = run_crawl(self.config, worker=True)
        if stats.get("hostwatch/wrong_store"):  # crawler.shared_run.WRONG_STORE_STAT
            raise WorkerMisconfigured(str(stats.get("hostwatch/queue_error")))
        for key in ("hostwatch/queue_error", "hostwatch/store_error"):
            if stats.get(key):
                raise CrawlError(str(stats[key]))

    def _run_deadlines(self, run_id: int) -> list[CaseDeadline]:
        """The order deadlines of the cases run ``run_id`` checked, judged now."""
        from kernel.deadlines import Regime
        from reports.deadline_cases import case_deadlines

        with self.store.session() as session:
            ids = queries.case_ids_checked_in_run(session, run_id)
        if not ids:
            return []
        return [row for row in case_deadlines(self.store, datetime.now(UTC),
                                              self.config.schedule_rule(), among=ids)
                if row.regime is not Regime.NOTICE_24H]

    def enrich(self, *, limit: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> EnrichResult:
        """Attribute every check that has no attribution yet (at most
        ``limit``); ``progress(done, total)`` is called per batch. Holds the
        run lock: raises `LockBusy` while a crawl or another enrichment runs,
        `EnrichmentError` when a data file or the registry fails."""
        from enrichment.attribute import Attributor, enrich

        with Attributor.from_config(self.config, self.store) as attributor, \
                redact.installed(), RunLock(self.store, self.config.data_dir):
            return enrich(self.store, attributor, limit=limit, progress=progress)

    def whois(self, target: str) -> Facts:
        """The full attribution of one URL, host name or IP address, now
        (with HOSTWATCH_OFFLINE=1 no DNS is asked: give an address). Raises
        `UrlError` for a URL without a host."""
        from enrichment.attribute import Attributor, Target, host_of, host_target
        from outbound.dns import is_ip_literal

        # A URL or a host is read as a browser reads it: "http://0x7f.1/" and
        # "3232235777" are addresses, not names for DNS.
        if "://" in target:
            try:
                host = host_of(target)
            except ValueError:  # urllib's reading of a malformed URL ("http://[/")
                host = None
            if host is None:
                raise UrlError(Refusal.NOT_A_URL, f"no host in {target!r}")
            item = Target(host, host if is_ip_literal(host) else None)
        else:
            host = host_target(target)
            item = Target(None, host) if is_ip_literal(host) else Target(host)
        with Attributor.from_config(self.config, self.store) as attributor, \
                redact.installed():
            return attributor.facts([item])[0]

    # -- case states ----------------------------------------------------------

    def update_states(self) -> int:
        """Derive every case's state again from its checks (after changing the
        removal settings); returns how many cases were updated."""
        from store.checks import refresh_cases

        rules = self.config.debounce()
        with self.store.session() as session:
            ids = queries.case_ids(session)
        done = 0
        for start in range(0, len(ids), _UPDATE_BATCH):
            with self.store.transaction() as session:
                done += refresh_cases(session, ids[start:start + _UPDATE_BATCH], rules)
        return done

    def state_counts(self) -> dict[str, int]:
        """Cases per state (states without cases left out)."""
        with self.store.session() as session:
            return queries.state_counts(session)

    def status(self) -> StoreStatus:
        """Cases per state, the last crawl run and what awaits confirmation."""
        with self.store.session() as session:
            counts = queries.state_counts(session)
            last = queries.last_run(session)
            unconfirmed = queries.count_unconfirmed_cases(session)
            suspect = queries.count_suspect_runs(session)
            # checks_made is set when a run closes: a running (or killed) run
            # has written checks already, which the store counts.
            so_far = None if last is None or last.status == "finished" else \
                queries.checks_in_run(session, last.id)
            workers = [] if last is None else workers_of_run(session, last.id)
        return StoreStatus(counts, last, so_far, suspect, unconfirmed, workers)

    def cases(self, *, state: str | None = None, limit: int | None = None,
              hoster: str | None = None) -> Iterator[CaseRow]:
        """Cases by id, each with the attribution of its newest check that
        reached an address and that hoster's key (None until attributed);
        see `case_as_dict`. ``hoster``: only the cases whose hoster of record
        it names (its key or any name a source gave it, as for
        `evidence_pack`; raises `HosterNotFound` / `HosterAmbiguous` before
        the first case). Streamed: consume it before the next call."""
        from store.hosters import find_hoster

        if state is not None:
            _check_choice("state", state, [s.value for s in CaseState])
        if limit is not None and limit < 0:
            raise InvalidArgument(f"limit must not be negative, got {limit}")
        with self.store.session() as session:
            hoster_id = None if hoster is None else find_hoster(session, hoster).id
            yield from queries.iter_cases(session, state, limit, hoster_id)

    def deadlines(self, *, only_open: bool = False,
                  now: datetime | None = None) -> Iterator[CaseDeadline]:
        """Every notice and order deadline, judged at ``now`` (default: now);
        ``only_open``: only those still chased by the deadline crawl."""
        from reports.deadline_cases import case_deadlines

        yield from case_deadlines(self.store, now or datetime.now(UTC),
                                  self.config.schedule_rule(), only_open=only_open)

    # -- reports --------------------------------------------------------------

    def hoster_report(self, *, since: datetime | None = None, until: datetime | None = None,
                      category: str | None = None, clock: str = "report",
                      now: datetime | None = None) -> HosterReport:
        """The hoster-problem report of the cases reported in [since, until)
        (``clock``: hours to removal from the "report", the first "notice" or
        the first "order"). Render it with `render_hoster_report`."""
        from reports.hosters import ReportQuery, hoster_report
        from reports.perceptual import PdqRule
        from reports.takedown import Clock

        _check_period(since, until)
        _check_choice("clock", clock, [c.value for c in Clock])
        if category is not None:
            _check_choice("category", category, [c.value for c in Category])
        # The method states the settings in use, not the defaults.
        query = ReportQuery(since=since, until=until, category=category, clock=Clock(clock),
                            pdq=PdqRule.from_config(self.config),
                            debounce=self.config.debounce(),
                            recheck_hours=self.config.recheck_hours)
        with self.store.session() as session:
            return hoster_report(session, query, now=now)

    def evidence_pack(self, hoster: str, audience: str, output: str | Path, *,
                      since: datetime | None = None, until: datetime | None = None,
                      force: bool = False) -> EvidencePack:
        """Write an evidence pack about one hoster's cases for ``audience``
        "atkm" or "acm": the folder ``output`` and ``output``.zip. ``hoster``:
        its key or any name a source gave it. Raises `HosterNotFound` /
        `HosterAmbiguous`, an evidence `ReportError`, or `OSError`."""
        from reports.evidence import Audience, build_pack, read_evidence, write_pack
        from reports.perceptual import PdqRule

        _check_period(since, until)
        _check_choice("audience", audience.lower(), [a.value for a in Audience])
        with self.store.session() as session:
            data = read_evidence(session, hoster, Audience(audience.lower()),
                                 store_url=self.store.safe_url, rules=self.config.debounce(),
                                 since=since, until=until, pdq=PdqRule.from_config(self.config))
        files = build_pack(data)
        folder, archive = write_pack(files, Path(output), force=force,
                                     generated_at=data.generated_at)
        return EvidencePack(data, files, folder, archive)

    def xarf(self, hoster: str, *, reporter: Party, sender: Party | None = None,
             classification: str | None = None, include_removed: bool = False,
             with_ncii: bool = False) -> XarfExport:
        """XARF v4 reports (dicts) for the open cases of one hoster of record
        (``include_removed``: removed ones too). csam cases need
        ``classification`` (else `ClassificationRequired`); intimate-image
        cases become hostwatch's own type ncii only ``with_ncii``; cases of
        other categories are skipped. Records no notice. Raises
        `HosterNotFound` / `HosterAmbiguous`, `XarfError`."""
        from reports.xarf import (
            CaseFacts,
            HosterFacts,
            NoXarfType,
            SeenFacts,
            build_report,
            xarf_type,
        )
        from store.hosters import find_hoster

        states = (*OPEN_STATES, CaseState.REMOVED.value) if include_removed else OPEN_STATES
        with self.store.session() as session:
            found = find_hoster(session, hoster)
            facts = [
                (CaseFacts(source=case.source, external_id=case.external_id,
                           url=case.url_normalised, host=case.host, category=case.category,
                           state=case.state, reported_at=case.reported_at,
                           ref_sha256=case.ref_sha256, last_verdict=case.last_verdict,
                           last_checked_at=case.last_checked_at,
                           last_served_at=case.last_served_at),
                 SeenFacts(ip=who.ip, hostname=who.hostname, asn=who.asn,
                           nameservers=tuple(who.nameservers or ()),
                           checked_at=check.checked_at, verdict=check.verdict,
                           http_status=check.http_status, content_type=check.content_type))
                for case, who, check in queries.hoster_case_rows(session, found.id, states)]
            target = HosterFacts(key=found.key, legal_name=found.legal_name,
                                 country=found.country, abuse=found.abuse)
        exported = [(case, seen) for case, seen in facts
                    if xarf_type(case.category, with_ncii=with_ncii)]
        skipped: dict[str, list[str]] = defaultdict(list)
        for case, _seen in facts:
            if not xarf_type(case.category, with_ncii=with_ncii):
                skipped[case.category].append(f"{case.source}/{case.external_id}")
        csam = sum(1 for case, _ in exported if xarf_type(case.category) == ("content", "csam"))
        if csam and classification is None:
            raise ClassificationRequired(csam)
        reports: list[dict[str, Any]] = []
        for case, seen in exported:
            try:
                reports.append(build_report(case, seen, target, reporter=reporter,
                                            sender=sender, classification=classification,
                                            with_ncii=with_ncii, report_id=str(uuid.uuid4())))
            except NoXarfType:  # pragma: no cover - filtered above
                continue
            except XarfError as exc:
                raise XarfError(f"case {case.source}/{case.external_id}: {exc}") from exc
        return XarfExport(target, reports, Counter(case.state for case, _ in exported),
                          dict(skipped))

    def export_sqlite(self, path: str | Path, *,
                      progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
        """Write a read-only SQLite snapshot of the analyst views (docs/analysts.md)
        to ``path``, replacing it whole: one table per view, and
        ``snapshot_info`` (when, which schema revision). Works on a store on
        SQLite or PostgreSQL; returns the rows written per view.
        ``progress(view, rows)`` is called at the end of each view and every
        few seconds within a long one. Raises `StoreError` when ``path`` is
        the store itself or its folder is missing, or the export fails."""
        from store.snapshot import write_snapshot

        return write_snapshot(self.store.engine, Path(path), progress=progress)

    def verify(self, packs: Sequence[str | Path] = ()) -> Verification:
        """Recompute the check hash chain and check each evidence pack (folder
        or zip): its manifest, that its chain head is a link of the store's
        chain, that its checks are stored unchanged. Problems are reported in
        the result (``ok``, ``problems``), not raised."""
        from reports.verify import PackError, read_pack, verify_pack
        from store.checks import verify_chain

        checked: list[PackVerification] = []
        with self.store.session() as session:
            count, chain = verify_chain(session)
            head = queries.chain_head(session)
            for pack in packs:
                path = Path(pack)
                try:
                    checked.append(PackVerification(path, verify_pack(session, read_pack(path))))
                except PackError as exc:
                    checked.append(PackVerification(path, error=str(exc)))
        head_id = head.check_id if head is not None and head.check_id else None
        return Verification(count, chain, head_id, checked)


def _check_period(since: datetime | None, until: datetime | None) -> None:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.utcoffset() is None:
            raise InvalidArgument(f"{name} must carry a time zone, got {value.isoformat()}")
    if since and until and until <= since:
        raise InvalidArgument("until must be later than since")


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise InvalidArgument(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def open_store(db: str | None = None, *, config: Config | None = None) -> Hostwatch:
    """Open the store at the database URL ``db`` (default: ``config.db``,
    i.e. $HOSTWATCH_DB or sqlite:///hostwatch.db) with ``config`` (default:
    the HOSTWATCH_* environment), creating or upgrading its schema.

    >>> with open_store("sqlite:///hostwatch.db") as hw:  # doctest: +SKIP
    ...     hw.import_reports("reports.csv")
    """
    if config is None:
        config = Config.from_env(db=db)
    elif db is not None:
        config = replace(config, db=db)
    return Hostwatch(config)


def render_hoster_report(report: HosterReport, fmt: str = "html") -> str:
    """The hoster report as text: "html" (self-contained), "md", "csv" or "json"."""
    from reports.formats import render_csv, render_json, render_markdown
    from reports.html import render_html

    renderers: dict[str, Callable[[HosterReport], str]] = {
        "html": render_html, "md": render_markdown, "csv": render_csv, "json": render_json}
    if fmt not in renderers:
        raise ReportError(f"unknown report format {fmt!r}: one of {', '.join(REPORT_FORMATS)}")
    return renderers[fmt](report)


def case_as_dict(row: CaseRow) -> dict[str, Any]:
    """One case of `Hostwatch.cases` as the JSON object `hostwatch cases --json` prints."""
    case, who, hoster_key = row
    located = server_location_of(who.cdn, who.server_country) if who else None
    return {
        "id": case.external_id, "source": case.source, "url": case.url,
        "category": case.category, "state": case.state,
        "last_verdict": case.last_verdict,
        "last_checked_at": _iso(case.last_checked_at),
        "removed_at": _iso(case.removed_at),
        "reappearances": case.reappearances, "checks": case.check_count,
        "unconfirmed_checks": case.unconfirmed_checks,
        "ref_sha256": case.ref_sha256, "ref_pdq": case.ref_pdq,
        "ref_pdq_source": case.ref_pdq_source,
        "ref_pdq_check_id": case.ref_pdq_check_id,
        "hoster": who.hoster if who else None,
        "hoster_key": hoster_key,
        "hoster_country": who.hoster_country if who else None,
        "jurisdiction": who.jurisdiction if who else None,
        "dutch": who.dutch if who else None,
        "asn": who.asn if who else None,
        "ip": who.ip if who else None,
        "cdn": who.cdn if who else None,
        # Where the server stood (hotline statistics' "hosted in NL"), beside
        # the network operator and the legal entity above (ATKM's reach). A
        # CDN's answering edge is no server location (kernel/location.py):
        # its country is given apart, as the report and the packs treat it.
        "server_country": located,
        "server_country_source": who.server_country_source if who and located else None,
        "geoip_built_at": _iso(who.geoip_built_at) if who and located else None,
        "cdn_edge_country": server_and_edge(bool(who.cdn), who.server_country, None)[1]
        if who else None,
        "as_name": who.as_name if who else None,
        "as_country": who.as_country if who else None,
        "rdap_org": who.rdap_org if who else None,
        "rdap_org_country": who.rdap_org_country if who else None,
        "rdap_country": who.rdap_country if who else None,
        "network_name": who.network_name if who else None,
        # The reseller through which the block was registered, where RDAP names one.
        "rdap_reseller": who.rdap_reseller if who else None,
    }

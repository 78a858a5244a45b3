"""`recheck`: one HTTP check of every due case.

``-a due=deadlines`` checks instead only the cases with a pending deadline
check (store.schedule): the checks at and just after a removal order's
deadline. With none pending it records no run and takes no lock.

The spider is glue: the store says which cases are due (store.runs), the
downloader middleware resolves and guards addresses, `crawler.verdict`
decides, the pipeline writes. The control URLs (HOSTWATCH_CONTROL_URLS) are
fetched the same way before the first case and after the last one, and the
run is judged healthy or suspect when it closes (store.health). The body of
a response is hashed and scanned in memory here and dropped; it is never
stored, logged or written anywhere.

A served file is compared with the case's reference (crawler.perceptual):
when its SHA-256 differs from the reference and the case has a reference
PDQ, or when it is the reported file and the case's PDQ is still to be
learned, the body is decoded in a worker process for its PDQ (awaited, so
the event loop goes on) and dropped. The crawl's stats count the decodes
(``hostwatch/pdq_decoded``, ``hostwatch/pdq_failed``) and the time spent
waiting for them (``hostwatch/pdq_decode_seconds``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response
from scrapy.settings import BaseSettings
from twisted.python.failure import Failure

from crawler.browser import (
    META_ACTIONS,
    META_BROWSER,
    META_BROWSER_RESULT,
    META_PAGE_URL,
    META_REFERENCE,
)
from crawler.browser.decide import decide, pdq_record, with_actions
from crawler.browser.rules import BrowserRules, BrowserUse, Removed, looks_like_shell
from crawler.errors import error_kind
from crawler.perceptual import (
    SNIFF_BYTES,
    PdqSettings,
    Reference,
    close_shared,
    shared_hasher,
    undecodable,
)
from crawler.politeness import META_HOSTER, Politeness
from crawler.settings import apply_config, config_of
from crawler.shared_run import (
    WRONG_STORE_STAT,
    Coordinator,
    Worker,
    WrongStore,
    stop_with_coordinator,
)
from crawler.soft404 import NotFoundProbes, probe_url
from crawler.verdict import (
    ErrorKind,
    NotFoundFingerprint,
    Observation,
    PlaceholderRules,
    body_features,
    classify,
    is_textual,
)
from kernel import __version__, redact
from kernel.cdn import CDN_HEADER_PREFIXES, CDN_HEADERS
from kernel.config import Config
from kernel.errors import StoreError
from kernel.model import Method, Verdict, VerdictGroup
from kernel.schedule import DEADLINE_RUN_METHOD, DUE_DEADLINES, DUE_NIGHTLY
from kernel.urls import document_url, url_route
from store import Store
from store.checks import NewCheck
from store.health import ControlPhase, ControlResult, HealthRule, judge_run
from store.lock import LockBusy, RunLock
from store.queue import QueueUnreachable
from store.runs import (
    DueCase,
    DueRule,
    count_due,
    finish_run,
    iter_due,
    start_run,
    stored_in_run,
    verdicts_of_run,
)
from store.schedule import count_deadline_due, iter_deadline_due

META_CASE = "hostwatch_case"
META_PROBE = "hostwatch_probe"
META_CONTROL = "hostwatch_control"  # (ControlPhase, the configured URL)
ROLE_COORDINATOR = "coordinator"
ROLE_WORKER = "worker"

# Response headers kept with a check (attribution and CDN detection need them).
KEPT_HEADERS = frozenset({
    "server", "via", "x-cache", "x-cache-hits", "x-served-by", "cf-ray", "cf-cache-status",
    "x-amz-cf-id", "x-amz-cf-pop", "x-fastly-request-id", "x-cdn", "x-powered-by",
    "content-type", "content-length", "last-modified", "etag", "location", "age",
    "x-hw", "x-sp-edge", "cdn-pullzone", "cdn-requestid", "cdn-cache", "x-goog-hash",
    "x-guploader-uploadid", "x-azure-ref", "x-msedge-ref",
}) | CDN_HEADERS  # every header the CDN rules (kernel/cdn.py) look at
KEPT_HEADER_PREFIXES = CDN_HEADER_PREFIXES
MAX_KEPT_HEADERS = 40


@dataclass
class _Waiting:
    """A served check parked until its host's soft-404 probe has answered."""

    case: DueCase
    observation: Observation
    check: NewCheck
    reference: Reference


_FROZEN = False


def _freeze_start_up() -> None:
    """What start-up built (modules, settings, the store's engine) stays for
    the whole crawl: keep it out of the garbage collector's passes, which
    then cost less per check. Once per process."""
    global _FROZEN
    if not _FROZEN:
        _FROZEN = True
        gc.collect()
        gc.freeze()


class RecheckSpider(Spider):
    name = "recheck"

    def __init__(self, *args: Any, limit: str | int | None = None,
                 due: str | None = None, browser: str | bool | None = None,
                 role: str | None = None, workers: str | int | None = None,
                 config: Config | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # -a role=coordinator (with -a workers=N) or role=worker: a run shared
        # by workers through the queue (crawler.shared_run); none: this
        # process checks every due case itself.
        self.role = role or ""
        if self.role not in ("", ROLE_COORDINATOR, ROLE_WORKER):
            raise ValueError(f"spider argument role: expected {ROLE_COORDINATOR} or "
                             f"{ROLE_WORKER}, got {role!r}")
        self.local_workers = int(workers or 0)
        self.coordinator: Coordinator | None = None
        self.worker: Worker | None = None
        self.limit = int(limit) if limit not in (None, "") else None
        # -a browser=1: every case in the browser (hostwatch crawl --browser).
        self.force_browser = str(browser or "").lower() in ("1", "true", "yes")
        self.due = due or DUE_NIGHTLY
        if self.due not in (DUE_NIGHTLY, DUE_DEADLINES):
            raise ValueError(f"spider argument due: expected {DUE_NIGHTLY} or {DUE_DEADLINES}, "
                             f"got {due!r}")
        if not isinstance(config, Config):
            # from_crawler hands it over, from the crawler's settings.
            raise TypeError("RecheckSpider needs the crawl's Config (build it with from_crawler)")
        self.config = config
        self.rules = PlaceholderRules.load(self.config.placeholder_hashes,
                                           self.config.placeholder_markers)
        self.browser_rules = BrowserRules.load(self.config.browser_rules)
        self._uses: dict[str, BrowserUse] = {}  # host -> its browser rule's use
        self.browser_checks = 0
        self.browser_failures: set[str] = set()
        self.store = Store(self.config.db)
        self.lock = RunLock(self.store, self.config.data_dir)
        self.probes: NotFoundProbes[_Waiting] = NotFoundProbes()
        self.run_id: int | None = None
        self.cases_due = 0
        self.checks_done = 0
        self.in_flight = 0
        self.counts: dict[str, int] = {}
        self.errors = 0
        self.headers = {"User-Agent": self.config.user_agent}
        self.controls: list[ControlResult] = []
        # Set by the store pipeline when it opens (crawler.pipelines): checks
        # then go to it directly instead of as Scrapy items (see _out).
        self.check_sink: Callable[[NewCheck], None] | None = None
        # Also set by the store pipeline: starts its writer process and waits
        # until it is ready (blocking), before the run's clock starts.
        self.writer_opener: Callable[[], None] | None = None
        self.end_controls_sent = False
        self.debounce = self.config.debounce()
        self.health_rule = HealthRule(self.config.suspect_share, self.config.suspect_min_cases,
                                      self.config.suspect_no_address_share)
        # PDQ (crawler.perceptual): decodes run in worker processes, shared
        # with the browser checks' media (crawler.browser.check).
        self.pdq_settings = PdqSettings.from_config(self.config)
        self.pdq_hasher = shared_hasher(self.pdq_settings)

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        super().update_settings(settings)
        # The crawl's Config (run_crawl's, or HOSTWATCH_* read once under a
        # plain `scrapy crawl`) and the Scrapy settings it sets.
        apply_config(settings)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> RecheckSpider:
        # No log record may quote what a server sent (also under `scrapy crawl`).
        redact.install()
        # Scrapy filters log records in its handler, after building them: a
        # per-response DEBUG record costs CPU even when nobody sees it.
        level = crawler.settings.get("LOG_LEVEL", "INFO")
        for name in ("scrapy", "twisted", "py.warnings"):
            logging.getLogger(name).setLevel(level)
        kwargs["config"] = config_of(crawler.settings)
        spider: RecheckSpider = super().from_crawler(crawler, *args, **kwargs)  # type: ignore[assignment]
        crawler.signals.connect(spider.idle, signal=signals.spider_idle)
        return spider

    # -- feeding the scheduler ------------------------------------------------

    async def start(self) -> AsyncIterator[Request]:
        self.store.upgrade()
        _freeze_start_up()
        if self.role == ROLE_WORKER:
            await self._start_worker()
            return
        deadlines = self.config.schedule_rule()
        if self.due == DUE_DEADLINES:
            # Run every few minutes: with nothing pending, leave no trace and
            # do not contend for the lock with the nightly run.
            with self.store.session() as session:
                if count_deadline_due(session, datetime.now(UTC), deadlines) == 0:
                    self.crawler.stats.set_value("hostwatch/nothing_due", True)
                    self.logger.info("no deadline checks due")
                    return
        try:
            self.lock.acquire()
        except LockBusy as exc:
            self.logger.error("not starting: %s", exc)
            self.crawler.stats.set_value("hostwatch/lock_busy", str(exc))
            return
        if not await self._open_writer():
            return
        now = datetime.now(UTC)
        rule = DueRule(self.config.recheck_hours, self.config.watch_removed_days)
        with self.store.session() as session:
            if self.due == DUE_DEADLINES:
                due = count_deadline_due(session, now, deadlines)
            else:
                due = count_due(session, now, rule)
        self.cases_due = due if self.limit is None else min(due, self.limit)
        method = DEADLINE_RUN_METHOD if self.due == DUE_DEADLINES else Method.HTTP.value
        self.run_id = start_run(self.store, now, self.cases_due, method=method,
                                health=self.health_rule, debounce=self.debounce)
        self.crawler.stats.set_value("hostwatch/run_id", self.run_id)
        self.logger.info("run %s: %d cases due (%s)", self.run_id, self.cases_due, self.due)
        for request in self._control_requests(ControlPhase.START):
            yield request
        batch = self.config.feed_batch
        politeness = Politeness.of(self.crawler)
        if self.due == DUE_DEADLINES:
            feed = iter_deadline_due(self.store, now, deadlines, batch, self.limit)
        else:
            feed = iter_due(self.store, now, rule, batch, self.limit)
        if self.role == ROLE_COORDINATOR:
            await self._coordinate(feed)
            return
        for cases in feed:
            for case in cases:
                yield self._case_request(case, self.force_browser)
            # Scrapy takes everything start() yields at once; hand out the
            # next batch only when this one has mostly been checked. Cases
            # waiting for a full address or hoster (crawler.politeness) do
            # not count, up to a bound: other hosters' cases go on meanwhile.
            while self.in_flight - min(politeness.held, 10 * batch) > batch // 2:
                await asyncio.sleep(0.05)

    def _case_request(self, case: DueCase, force_browser: bool) -> Request:
        self.in_flight += 1
        if force_browser or self._use(case) is BrowserUse.ALWAYS:
            return self._browser_request(case)
        # Without its route fragment, which is never sent to a server
        # (kernel.urls): the browser check opens the route.
        return self._request(document_url(case.url), self.parse, self.failed,
                             {META_CASE: case, META_HOSTER: case.hoster})

    def _run_of(self, case: DueCase) -> int | None:
        """The run a check of ``case`` belongs to (a worker's batches name
        theirs: `store.runs.load_cases`)."""
        if case.run_id is not None:
            return case.run_id
        return None if self.worker is not None else self.run_id

    # -- runs shared by workers (crawler.shared_run) --------------------------

    async def _coordinate(self, feed: Iterator[list[DueCase]]) -> None:
        """Queue the due cases for the workers, start the local ones, and
        follow the run until every batch is done (the spider then closes
        the run as ever, its counts from the store)."""
        assert self.run_id is not None
        coordinator = self.coordinator = Coordinator(self.config, self.store,
                                                     self.local_workers)
        try:
            await coordinator.open()
        except QueueUnreachable as exc:
            self._stop_with(str(exc))
            return
        coordinator.start_workers()
        await coordinator.queue_cases(self.run_id, feed, self.force_browser)
        if coordinator.queued < self.cases_due:
            self.cases_due = coordinator.queued  # fewer due now than counted
        self.logger.info("run %s: %d cases queued for %d local worker(s) and any others",
                         self.run_id, coordinator.queued, self.local_workers)

        def progress(stored: int) -> None:
            self.checks_done = stored

        try:
            self.run_complete = await coordinator.follow(self.run_id, progress)
        except Exception as exc:  # the queue's database gone for good
            self._stop_with(f"run {self.run_id}: the queue could not be followed: "
                            f"{type(exc).__name__}")

    async def _start_worker(self) -> None:
        """Take batches from the queue until stopped (SIGTERM, Ctrl-C)."""
        engine = self.crawler.engine
        assert engine is not None

        def crawl(case: DueCase, run_id: int, browser: bool) -> None:
            self.cases_due += 1  # the progress line: cases taken so far
            engine.crawl(self._case_request(case, browser))

        worker = self.worker = Worker(self.config, self.store, crawl)
        # An always-on worker learns hosts' "not found" pages afresh each run.
        worker.on_new_run = lambda run_id: self.probes.forget_finished()
        # After `self.worker` is set: the writer of a worker stores each case
        # once per run (crawler.pipelines).
        if not await self._open_writer():
            self.worker = None
            return
        try:
            await worker.start()
        except QueueUnreachable as exc:
            self.worker = None
            self._stop_with(str(exc))
            return
        except WrongStore as exc:  # before taking any batch
            self.crawler.stats.set_value(WRONG_STORE_STAT, True)
            self._stop_with(str(exc))
            return
        self.logger.info("worker %s: taking batches from the queue", worker.name)
        previous: dict[int, Any] = {number: signal.getsignal(number)
                                    for number in (signal.SIGINT, signal.SIGTERM)}

        def stop(number: int, frame: Any) -> None:
            if worker.running and not getattr(self, "_draining", False):
                self._draining = True
                asyncio.get_event_loop().call_soon_threadsafe(worker.drain)
                return
            handler = previous.get(number)  # Scrapy's: stop now
            if callable(handler):
                handler(number, frame)

        for number in previous:
            signal.signal(number, stop)
        if stop_with_coordinator():  # started by a coordinator that is gone
            stop(signal.SIGTERM, None)
        asyncio.ensure_future(self._close_after(worker))

    async def _close_after(self, worker: Worker) -> None:
        try:
            await worker.wait()
            if not worker.stopping and worker.fatal is None:
                worker.fatal = f"worker {worker.name}: the queue's worker stopped unasked"
        except Exception as exc:  # the queue failed under it (PostgreSQL went away...)
            worker.fatal = (f"worker {worker.name}: the queue failed: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        if worker.fatal is not None:
            if worker.wrong_store:
                self.crawler.stats.set_value(WRONG_STORE_STAT, True)
            self._stop_with(worker.fatal)
        engine = self.crawler.engine
        if engine is not None:
            await engine.close_spider_async(reason="finished")

    async def _open_writer(self) -> bool:
        """Start the store pipeline's writer (crawler.pipelines) before any
        check: its start-up then neither counts in the run's time nor takes a
        core from the crawl, and a store it cannot open stops the crawl
        before the run is recorded. False when it failed (the crawl stops)."""
        if self.writer_opener is None:
            return True
        try:
            await asyncio.to_thread(self.writer_opener)
        except StoreError as exc:
            self.logger.error("not starting: %s", exc)
            self.crawler.stats.set_value("hostwatch/store_error", str(exc))
            return False
        return True

    def _stop_with(self, message: str) -> None:
        """End the crawl with ``message`` as its error (the queue unreachable)."""
        self.logger.error("%s", message)
        self.crawler.stats.set_value("hostwatch/queue_error", message)

    def stored(self, checks: list[NewCheck]) -> None:
        """The store pipeline: ``checks`` are committed."""
        if self.worker is not None:
            self.worker.stored(checks)

    def _request(self, url: str, callback: Any, errback: Any, meta: dict[str, Any],
                 priority: int = 0) -> Request:
        # dont_filter: Scrapy's duplicate filter ignores fragments, and cases
        # whose URLs differ only by their route (#/photo/21, #/photo/22) must
        # each get their check.
        meta["download_timeout"] = self.config.timeout
        return Request(url, callback=callback, errback=errback, dont_filter=True, meta=meta,
                       priority=priority, headers=self.headers)

    def _use(self, case: DueCase) -> BrowserUse:
        host = case.host or urlsplit(case.url).hostname or ""
        use = self._uses.get(host)
        if use is None:
            # The rules are matched once per host, not once per case: each
            # lookup walks every host rule (a cost per case at feed time).
            if len(self._uses) >= 100_000:
                self._uses.clear()
            use = self._uses[host] = self.browser_rules.use(host)
        if use is BrowserUse.FALLBACK and url_route(case.url) is not None:
            # A route (#/photo/21) exists only in a browser: a plain GET gets
            # the app's start page, which says nothing about the reported item
            # (and may hold a logo, so it would not even look like a shell).
            return BrowserUse.ALWAYS
        return use

    def _browser_request(self, case: DueCase) -> Request:
        host = urlsplit(case.url).hostname or ""
        own = self.browser_rules.removed_for(host)
        # The host's own "removed" texts, everyone's, then the placeholder texts
        # HTTP checks look for.
        removed = Removed(tuple(dict.fromkeys((*own.texts, *self.rules.markers))), own.selectors)
        self.browser_checks += 1
        return self._request(case.url, self.parse_browser, self.failed,
                             {META_CASE: case, META_HOSTER: case.hoster,
                              META_BROWSER: removed, META_PAGE_URL: case.url,
                              META_ACTIONS: self.browser_rules.actions_for(host),
                              META_REFERENCE: self._reference(case)})

    def _reference(self, case: DueCase) -> Reference:
        """The case's reference hashes under HOSTWATCH_PDQ_* (PDQ off: SHA-256 only)."""
        return self.pdq_settings.reference(case.ref_sha256, case.ref_pdq)

    # -- responses ------------------------------------------------------------

    def parse(self, response: Response) -> list[Any] | AsyncIterator[Any]:
        """A response's check (or the request that completes it). A plain
        list, unless the served file is decoded for its PDQ first: Scrapy
        handles a list with less CPU than an async generator's output
        (BENCHMARKS.md, "Loopback CPU per check")."""
        case: DueCase = response.meta[META_CASE]
        try:
            return self._check_response(case, response)
        except Exception as exc:  # recorded on the check, never lost
            return self._out(self._hostwatch_error(case, exc))

    def _hostwatch_error(self, case: DueCase, exc: Exception) -> NewCheck:
        self.logger.error("check of case %s failed in hostwatch: %s", case.id,
                          type(exc).__name__)
        return self._failed_check(case, ErrorKind.OTHER, f"hostwatch error {type(exc).__name__}")

    def _failed_check(self, case: DueCase, kind: ErrorKind, detail: str,
                      chain: Sequence[str] = (), final_url: str | None = None,
                      method: Method = Method.HTTP) -> NewCheck:
        observation = Observation(url=case.url, final_url=final_url, redirect_chain=tuple(chain),
                                  error=kind, error_detail=detail)
        check = NewCheck(case_id=case.id, checked_at=datetime.now(UTC), method=method.value,
                         verdict="", url=case.url, tool_version=__version__,
                         run_id=self._run_of(case), final_url=final_url if chain else None,
                         redirect_chain=list(chain) or None, error_kind=kind.value)
        return self._finish(case, observation, check, None)

    def _check_response(self, case: DueCase, response: Response) -> list[Any] | AsyncIterator[Any]:
        observation, check = self._observe(case, response)
        reference = self._reference(case)
        first = classify(observation, reference=reference, rules=self.rules)
        served = first.verdict.group is VerdictGroup.SERVED or first.verdict is Verdict.CHANGED
        if (served and looks_like_shell(observation.body, observation.content_type)
                and self._use(case) is BrowserUse.FALLBACK):
            # A page its scripts fill in: only the browser can say what it shows.
            return [self._browser_request(case)]
        if served and _wants_pdq(observation, reference):
            # In memory only: the body goes to a decode worker and is dropped.
            return self._decoded(case, observation, check, reference,
                                 self._capped(response.body))
        return self._observed(case, observation, check, reference, served)

    async def _decoded(self, case: DueCase, observation: Observation, check: NewCheck,
                       reference: Reference, body: bytes) -> AsyncIterator[Any]:
        """`_observed`, once the served file's PDQ is decoded (off the event loop)."""
        try:
            observation = await self._with_pdq(observation, check, reference, body)
            items = self._observed(case, observation, check, reference, True)
        except Exception as exc:  # recorded on the check, never lost
            items = self._out(self._hostwatch_error(case, exc))
        for item in items:
            yield item

    def _observed(self, case: DueCase, observation: Observation, check: NewCheck,
                  reference: Reference, served: bool) -> list[Any]:
        if not (served and self.config.soft404_probe):
            return self._out(self._finish(case, observation, check, None, reference))
        # Served: but is it the host's "not found" page? Ask the host once.
        url = observation.final_url or case.url
        done, fingerprint = self.probes.known(url)
        if done:
            return self._out(self._finish(case, observation, check, fingerprint, reference))
        if self.probes.wait(url, _Waiting(case, observation, check, reference)):
            return [self._probe_request(url, case.hoster)]
        return []

    def failed(self, failure: Failure) -> Iterator[NewCheck]:
        request = failure.request  # type: ignore[attr-defined]
        case: DueCase = request.meta[META_CASE]
        kind, detail = error_kind(failure)
        method = Method.BROWSER if META_BROWSER in request.meta else Method.HTTP
        if method is Method.BROWSER and kind is ErrorKind.OTHER:
            detail = f"browser check failed: {detail}"
            if detail not in self.browser_failures:  # once per kind of failure, not per case
                self.browser_failures.add(detail)
                self.logger.error("case %s: %s", case.id, detail)
        yield from self._out(self._failed_check(case, kind, detail,
                                                request.meta.get("redirect_urls", ()),
                                                request.url, method))

    def parse_browser(self, response: Response) -> Iterator[NewCheck]:
        """A browser check's result (crawler.browser): decided, then recorded."""
        case: DueCase = response.meta[META_CASE]
        try:
            check = self._browser_check(case, response.meta[META_BROWSER_RESULT])
        except Exception as exc:  # recorded on the check, never lost
            self.logger.error("browser check of case %s failed in hostwatch: %s", case.id,
                              type(exc).__name__)
            check = self._failed_check(case, ErrorKind.OTHER,
                                       f"hostwatch error {type(exc).__name__}",
                                       method=Method.BROWSER)
        yield from self._out(check)

    def _browser_check(self, case: DueCase, result: Any) -> NewCheck:
        seen = result.visit
        reference = self._reference(case)
        decision, media = decide(seen, result.hashes, reference=reference, rules=self.rules)
        pdq = pdq_record(media, reference)
        decision = with_actions(decision, seen)  # what a consent click did, if one ran
        check = NewCheck(
            case_id=case.id, checked_at=datetime.now(UTC), method=Method.BROWSER.value,
            verdict=decision.verdict.value, url=case.url, tool_version=__version__,
            run_id=self._run_of(case), http_status=seen.status, final_url=seen.final_url,
            redirect_chain=list(seen.redirect_chain) or None, peer_ip=seen.peer_ip,
            content_type=media.content_type if media and media.sha256 else seen.content_type,
            bytes_received=media.length if media and media.sha256 else None,
            truncated=bool(media and media.truncated),
            body_sha256=media.sha256 if media else None,
            body_pdq=pdq.hash, pdq_quality=pdq.quality, pdq_distance=pdq.distance,
            learns_pdq=pdq.learns,
            reference_match=decision.reference_match, reason=decision.reason,
            error_kind=seen.error.value if seen.error else None, headers=seen.headers or None)
        self._count(check, decision.verdict)
        return check

    def _observe(self, case: DueCase, response: Response) -> tuple[Observation, NewCheck]:
        headers: dict[str, str] = {}
        # The dict's own items: Scrapy's Headers.items() normalises each name
        # again, and its names are normalised already.
        for raw_name, values in dict.items(response.headers):
            name = raw_name.decode("latin-1").lower()
            if values and (name in KEPT_HEADERS or name.startswith(KEPT_HEADER_PREFIXES)):
                if len(headers) >= MAX_KEPT_HEADERS:  # the server decides how many
                    break
                headers[name] = redact.evidence_header(name, values[0].decode("latin-1"))
        content_type = headers.get("content-type")
        truncated = bool({"download_stopped", "dataloss"} & set(response.flags))
        # In memory only: hashed and scanned, then the response is dropped.
        body = self._capped(response.body)
        features = body_features(body, requested_url=response.url, content_type=content_type,
                                 rules=self.rules, truncated=truncated)
        chain = tuple(response.meta.get("redirect_urls", ()))
        observation = Observation(url=case.url, status=response.status, final_url=response.url,
                                  redirect_chain=chain, content_type=content_type, body=features)
        declared = headers.get("content-length")
        check = NewCheck(
            case_id=case.id, checked_at=datetime.now(UTC), method=Method.HTTP.value,
            verdict="", url=case.url, tool_version=__version__, run_id=self._run_of(case),
            http_status=response.status, final_url=response.url if chain else None,
            redirect_chain=list(chain) or None,
            peer_ip=str(response.ip_address) if response.ip_address else None,
            content_type=content_type,
            content_length=int(declared) if declared and declared.isdigit() else None,
            bytes_received=len(body), truncated=truncated, body_sha256=features.sha256,
            headers=headers or None)
        return observation, check

    async def _with_pdq(self, observation: Observation, check: NewCheck,
                        reference: Reference, body: bytes) -> Observation:
        """The observation with the served file's PDQ, decoded off the event
        loop (crawler.perceptual.PdqHasher); the check records the hash, its
        quality and its distance to the reference PDQ, and learns the
        reference PDQ when the file is the reported one."""
        assert observation.body is not None
        sha256 = observation.body.sha256
        sniffed = undecodable(body[:SNIFF_BYTES])
        if sniffed is not None:
            # A video, a download, a TIFF...: no worker needed to say so.
            return replace(observation, pdq=sniffed)
        loop = asyncio.get_running_loop()
        started = loop.time()
        pdq = await self.pdq_hasher.pdq(body, urlsplit(observation.final_url
                                                        or observation.url).hostname)
        stats = self.crawler.stats
        stats.inc_value("hostwatch/pdq_decoded")
        seconds = stats.get_value("hostwatch/pdq_decode_seconds", 0.0) + loop.time() - started
        stats.set_value("hostwatch/pdq_decode_seconds", round(seconds, 6))
        if pdq.hash is None:
            stats.inc_value("hostwatch/pdq_failed")
        else:
            check.body_pdq, check.pdq_quality = pdq.hash, pdq.quality
            # The distance the rule used: turned or mirrored, if that is nearer.
            check.pdq_distance = reference.compare(sha256, pdq).distance
            check.learns_pdq = reference.learns(sha256, pdq)
        return replace(observation, pdq=pdq)

    def _capped(self, body: bytes) -> bytes:
        """The body up to HOSTWATCH_MAX_BODY, without copying it when it fits."""
        return body if len(body) <= self.config.max_body else body[:self.config.max_body]

    def _finish(self, case: DueCase, observation: Observation, check: NewCheck,
                fingerprint: NotFoundFingerprint | None,
                reference: Reference | None = None) -> NewCheck:
        decision = classify(observation, rules=self.rules, not_found=fingerprint,
                            reference=self._reference(case) if reference is None else reference)
        check.verdict = decision.verdict.value
        check.reason = decision.reason
        check.reference_match = decision.reference_match
        self._count(check, decision.verdict)
        return check

    def _out(self, check: NewCheck) -> list[NewCheck]:
        """A callback's output for ``check``: nothing when the store pipeline
        takes it directly (`check_sink`), else the check as an item. Scrapy's
        processing of an item (item pipelines, item_scraped signal, log
        record) costs about a tenth of its CPU per response, and hostwatch's
        only item pipeline is the store (BENCHMARKS.md, "Loopback CPU per
        check")."""
        if self.check_sink is None:
            return [check]
        self.check_sink(check)
        return []

    def _count(self, check: NewCheck, verdict: Verdict) -> None:
        self.counts[check.verdict] = self.counts.get(check.verdict, 0) + 1
        if verdict.group is VerdictGroup.TRANSIENT:
            self.errors += 1
        self.checks_done += 1
        self.in_flight -= 1

    # -- control URLs ---------------------------------------------------------

    def _control_requests(self, phase: ControlPhase) -> list[Request]:
        return [self._request(url, self.control_answered, self.control_failed,
                              {META_CONTROL: (phase, url)}, priority=20)
                for url in self.config.control_urls]

    def control_answered(self, response: Response) -> Iterator[NewCheck]:
        phase, url = response.meta[META_CONTROL]
        self._control(ControlResult(phase, url, response.status, None, datetime.now(UTC)))
        return iter(())

    def control_failed(self, failure: Failure) -> Iterator[NewCheck]:
        phase, url = failure.request.meta[META_CONTROL]  # type: ignore[attr-defined]
        kind, _detail = error_kind(failure)  # the kind only: no server bytes kept
        self._control(ControlResult(phase, url, None, kind.value, datetime.now(UTC)))
        return iter(())

    def _control(self, result: ControlResult) -> None:
        self.controls.append(result)
        if not result.served:
            self.logger.warning("run %s: control %s not served at the %s of the run (%s)",
                                self.run_id, result.url, result.phase.value,
                                result.status if result.status is not None else result.error)

    def idle(self) -> None:
        """Every case checked: fetch the control URLs once more before closing.
        A worker waits for batches until it is stopped."""
        if self.worker is not None and self.worker.running:
            raise DontCloseSpider
        if self.run_id is None or self.end_controls_sent or not self.config.control_urls:
            return
        self.end_controls_sent = True
        engine = self.crawler.engine
        assert engine is not None
        for request in self._control_requests(ControlPhase.END):
            engine.crawl(request)
        raise DontCloseSpider

    # -- soft-404 probes ------------------------------------------------------

    def _probe_request(self, url: str, hoster: str | None) -> Request:
        return self._request(probe_url(url), self.probed, self.probe_failed,
                             {META_PROBE: url, META_HOSTER: hoster}, priority=10)

    def probed(self, response: Response) -> Iterator[NewCheck]:
        fingerprint = None
        try:
            content_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
            features = body_features(self._capped(response.body),
                                     requested_url=response.url, content_type=content_type,
                                     rules=self.rules)
            fingerprint = NotFoundFingerprint(response.status, content_type,
                                              features.normalised_sha256, features.length,
                                              features.title)
        except Exception as exc:  # the waiting checks are released all the same
            self.logger.error("soft-404 probe of %s failed: %s", response.url,
                              type(exc).__name__)
        yield from self._release(response.meta[META_PROBE], fingerprint)

    def probe_failed(self, failure: Failure) -> Iterator[NewCheck]:
        request = failure.request  # type: ignore[attr-defined]
        kind, detail = error_kind(failure)
        self.logger.debug("soft-404 probe failed for %s: %s (%s)", request.url, kind.value,
                          detail)
        yield from self._release(request.meta[META_PROBE], None)

    def _release(self, url: str, fingerprint: NotFoundFingerprint | None) -> Iterator[NewCheck]:
        for waiting in self.probes.finish(url, fingerprint):
            yield from self._out(self._finish(waiting.case, waiting.observation, waiting.check,
                                              fingerprint, waiting.reference))

    # -- end of run -----------------------------------------------------------

    async def closed(self, reason: str) -> None:
        try:
            if self.worker is not None:
                self.worker.abandon(reason)
                await self.worker.close()
            if self.coordinator is not None:
                await self.coordinator.close(self.run_id, getattr(self, "run_complete", False))
            if self.run_id is not None:
                self._close_run(reason)
        finally:
            # Also when the store failed: the next run judges what is left
            # unjudged (store.health.judge_pending_runs).
            self.lock.release()
            close_shared()

    def _close_run(self, reason: str) -> None:
        assert self.run_id is not None
        stats = self.crawler.stats
        if stats.get_value("hostwatch/store_error") or stats.get_value("hostwatch/queue_error"):
            status = "failed"  # checks could not be written, or not handed out
        else:
            status = "finished" if reason == "finished" else "stopped"
        written = stats.get_value("hostwatch/checks_written", self.checks_done)
        if self.coordinator is not None:
            # The workers' checks, as stored: counted in the store.
            with self.store.session() as session:
                self.counts = verdicts_of_run(session, self.run_id)
                written = stored_in_run(session, self.run_id)
            self.errors = sum(n for verdict, n in self.counts.items()
                              if Verdict(verdict).group is VerdictGroup.TRANSIENT)
        if status == "finished" and written < self.cases_due:
            status = "incomplete"
        finish_run(self.store, self.run_id, datetime.now(UTC), status, self.counts,
                   self.errors, checks_made=written)
        self.logger.info("run %s %s: %s", self.run_id, status,
                         ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())))
        self._judge()

    def _judge(self) -> None:
        """Judge the run now that its last check is written: healthy, or suspect
        (its failing checks then keep counting for nothing; store.health)."""
        assert self.run_id is not None
        controls = self.controls if self.config.control_urls else None
        with self.store.transaction() as session:
            judgement = judge_run(session, self.run_id, controls, self.health_rule,
                                  self.debounce)
        self.crawler.stats.set_value("hostwatch/health", judgement.health.value)
        if judgement.reason:
            self.logger.warning("run %s is suspect: %s", self.run_id, judgement.reason)


def _wants_pdq(observation: Observation, reference: Reference) -> bool:
    """Whether a served response is decoded for its PDQ: a whole file (not a
    page, not cut at the size cap) that the reference compares by picture,
    or whose PDQ the reference learns (Reference.needs_pdq). Most checks
    have no reference PDQ and a file whose SHA-256 differs: no decode."""
    body = observation.body
    return (body is not None and not body.truncated and reference.needs_pdq(body.sha256)
            and not is_textual(observation.content_type))

"""Runs shared by several workers: the coordinator's and a worker's side.

The queue itself (Procrastinate on PostgreSQL), leases and why this engine:
store.queue. Here:

- `Coordinator` (in `hostwatch crawl --workers N`): queues the run's due
  cases as batches, starts N local worker processes (`hostwatch worker`),
  hands the batches of silent workers back to the queue, follows the
  progress of every worker in the store, and stops its workers when every
  batch is done. The spider around it holds the run lock, records and
  closes the run, fetches the control URLs and judges the run, as in a
  single-process crawl. Its local workers get SIGTERM from Linux when the
  coordinator dies, even by SIGKILL (`stop_with_coordinator`): they finish
  the batches in hand and exit, leaving no process behind.
- `Worker` (in `hostwatch worker`, here or on another machine): a
  Procrastinate worker inside the crawl's own event loop. Each job (a
  batch of case ids) is checked by the spider's own requests and ends once
  its checks are committed; a case is stored once per run (store.checks,
  ``once_per_run``). On SIGTERM or Ctrl-C it takes no new batch, finishes the
  ones it has, and exits; a second signal stops it at once (its batches are
  handed on after the lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kernel.config import Config
from kernel.errors import StoreError
from store import Store
from store.checks import NewCheck
from store.queue import QUEUE, TASK, Queue, batches, worker_name
from store.runs import (
    DueCase,
    load_cases,
    record_worker,
    run_status,
    set_progress,
    stored_in_run,
)

logger = logging.getLogger(__name__)

# Seconds between the coordinator's looks at the queue and the store.
LOOK_SECONDS = 1.0
# Seconds the coordinator keeps trying when its looks at the queue fail.
OUTAGE_SECONDS = 300.0
# Seconds between the coordinator's counts of the run's stored checks.
COUNT_SECONDS = 3.0
# Seconds between a worker's updates of its `status` line.
WORKER_LINE_SECONDS = 2.0
# Set by the coordinator for the local workers it starts: its process id.
COORDINATOR_PID_ENV = "_HOSTWATCH_COORDINATOR_PID"
# The crawl's stat saying a worker stopped because of `WrongStore`.
WRONG_STORE_STAT = "hostwatch/wrong_store"
# prctl(2): the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


class WrongStore(StoreError):
    """The worker's store (HOSTWATCH_DB) is not the coordinator's: the queue
    holds batches of runs this store does not have. A setting to correct, not
    an outage: `hostwatch worker` exits with status 78 (EX_CONFIG), which the
    systemd unit in deploy/ does not restart."""


class BatchAbandoned(Exception):
    """A worker stopped before a batch's checks were all stored: the batch
    goes back to the queue (Procrastinate's retry) for another worker."""


@dataclass
class _Batch:
    run_id: int
    left: set[int]
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())

    progressed: float = field(default_factory=time.monotonic)  # when a check was last stored

    def stored(self, case_id: int) -> None:
        self.left.discard(case_id)
        self.progressed = time.monotonic()
        if not self.left and not self.done.done():
            self.done.set_result(None)


class Worker:
    """The worker side of a shared run, inside a crawl (see the module
    docstring). ``crawl(case, run_id, browser)`` hands a case's request to
    the crawl; ``stored(checks)`` is called with every batch of checks the
    store has committed."""

    def __init__(self, config: Config, store: Store,
                 crawl: Callable[[DueCase, int, bool], None]) -> None:
        self.config = config
        self.store = store
        self._crawl = crawl
        self.queue = Queue(config.queue)
        self.name = worker_name(os.getpid())
        # (run id, case id) -> the batches waiting for that case's check in that
        # run: a case may be in hand for two runs at once (an aborted run's
        # batch and the next run's), and each run needs its own check.
        self._batches: dict[tuple[int, int], list[_Batch]] = {}
        self.stored_checks: dict[int, int] = {}  # run id -> checks this worker stored
        self._lines_sent: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._pworker: Any = None  # Procrastinate's worker (its heartbeat, its jobs)
        self._beat = 1.0
        self._stopping = False
        self.taken = 0  # cases taken from the queue
        self.fatal: str | None = None  # why this worker stopped on its own
        self.wrong_store = False  # ...because its store is not the coordinator's
        self.closed = False  # the crawl is closing: no batch is taken on
        self.current_run: int | None = None
        self.on_new_run: Callable[[int], None] | None = None  # the spider's per-run state

    def in_hand(self, run_id: int, case_id: int) -> bool:
        """Is ``case_id`` being checked for ``run_id``?"""
        return (run_id, case_id) in self._batches

    async def start(self) -> None:
        """Reach the queue (raises store.queue.QueueUnreachable) and start
        taking batches."""
        import procrastinate
        from procrastinate.worker import Worker as ProcrastinateWorker

        await self.queue.open()
        await self.queue.ensure_schema()
        await self._check_store()

        # A batch abandoned by a stopping worker, or whose checks could not
        # be stored, is tried again by a worker (its stored cases skipped).
        retry = procrastinate.RetryStrategy(max_attempts=5, wait=5)

        @self.queue.app.task(name=TASK, queue=QUEUE, pass_context=False, retry=retry)
        async def check_batch(run_id: int, case_ids: list[int],
                              browser: bool = False) -> int:
            return await self.check_batch(run_id, case_ids, browser)

        lease = self.config.queue_lease
        self._beat = max(lease / 3, 0.2)
        self._pworker = ProcrastinateWorker(
            app=self.queue.app, queues=[QUEUE], name=self.name,
            concurrency=self.config.worker_jobs, wait=True, install_signal_handlers=False,
            delete_jobs="successful", update_heartbeat_interval=self._beat,
            stalled_worker_timeout=lease, listen_notify=True, fetch_job_polling_interval=1.0,
            # A stopping worker waits for its batches; each ends within
            # stall_seconds (`_until_done`), so this only bounds the unforeseen.
            shutdown_graceful_timeout=self.stall_seconds + 60)
        self._task = asyncio.ensure_future(self._pworker.run())
        self._lines = asyncio.ensure_future(self._send_lines())

    async def _check_store(self) -> None:
        """Before taking any batch: when batches are queued and none is of a
        run this store has, HOSTWATCH_DB is not the coordinator's store.
        Raises `WrongStore` without taking one, so a worker restarted again
        and again (systemd) does not use up the batches' tries."""
        runs = await self.queue.queued_runs()
        if not runs:
            return
        known = await asyncio.to_thread(
            lambda: [run for run in runs if run_status(self.store, run) is not None])
        if not known:
            raise WrongStore(self._wrong_store(min(runs)))

    def _wrong_store(self, run_id: int) -> str:
        return (f"worker {self.name}: its store has no run {run_id}, which the queue "
                "holds batches of: HOSTWATCH_DB must name the coordinator's store")

    @property
    def stopping(self) -> bool:
        """Asked to stop (SIGTERM, Ctrl-C, a wrong store)."""
        return self._stopping

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def wait(self) -> None:
        """Until the Procrastinate worker has stopped."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def drain(self) -> None:
        """Take no new batch; finish the ones in hand (SIGTERM, Ctrl-C)."""
        if self._task is not None and not self._stopping:
            self._stopping = True
            logger.warning("worker %s: stopping after the batches in hand", self.name)
            self._pworker.stop()  # Procrastinate stops gracefully: its jobs run to the end
            # ...but it stops its heartbeat first: without one, the batches in
            # hand would be handed to other workers after the lease.
            self._draining_beat = asyncio.ensure_future(self._heartbeat_while_draining())

    async def _heartbeat_while_draining(self) -> None:
        while self._task is not None and not self._task.done():
            worker_id = self._pworker.worker_id
            if worker_id is not None:
                with contextlib.suppress(Exception):
                    await self.queue.app.job_manager.update_heartbeat(worker_id)
            await asyncio.sleep(self._beat)

    async def check_batch(self, run_id: int, case_ids: Sequence[int], browser: bool) -> int:
        status = await asyncio.to_thread(run_status, self.store, run_id)
        if status is None:
            # Not this store's run: this worker's HOSTWATCH_DB is not the
            # coordinator's. Leave the batch to the others, and stop.
            message = self._wrong_store(run_id)
            self.fatal = message
            self.wrong_store = True
            self.drain()
            raise BatchAbandoned(message)
        if status != "running":
            # A run stopped or aborted meanwhile: its batches are not checked.
            logger.warning("worker %s: run %s is %s, batch of %d skipped", self.name, run_id,
                           status or "unknown", len(case_ids))
            return 0
        cases = await asyncio.to_thread(load_cases, self.store, case_ids, run_id)
        if not cases:
            return 0
        if self.closed:
            raise BatchAbandoned("the worker is closing")  # abandon() has run already
        self.new_run(run_id)
        batch = _Batch(run_id, {case.id for case in cases})
        self.taken += len(cases)
        try:
            for case in cases:
                waiting = self._batches.setdefault((run_id, case.id), [])
                waiting.append(batch)
                if len(waiting) == 1:  # not being checked already (a batch handed back)
                    self._crawl(case, run_id, browser)
        except BaseException:
            self._forget(batch)
            raise
        await self._until_done(batch)
        return len(cases)

    def _forget(self, batch: _Batch) -> None:
        """Drop ``batch``'s cases not stored yet from the worker's books, so
        that its next try crawls them again."""
        for case_id in list(batch.left):
            key = (batch.run_id, case_id)
            waiting = self._batches.get(key, [])
            if batch in waiting:
                waiting.remove(batch)
            if not waiting:
                self._batches.pop(key, None)

    async def _until_done(self, batch: _Batch) -> None:
        """Until every case of ``batch`` is stored. A batch of which no check
        has been stored for `stall_seconds` is given up (a request lost
        somewhere must not hold the run open for ever): it goes back to the
        queue, and its try there checks the cases still unstored."""
        stall = self.stall_seconds
        while True:
            left = stall - (time.monotonic() - batch.progressed)
            if left <= 0:
                break
            try:
                await asyncio.wait_for(asyncio.shield(batch.done), left)
                return
            except TimeoutError:
                continue  # look again: a check may have been stored meanwhile
        self._forget(batch)
        logger.warning("worker %s: no check of a batch of run %s stored for %.0f s; %d of its "
                       "cases go back to the queue", self.name, batch.run_id, stall,
                       len(batch.left))
        raise BatchAbandoned("batch stalled")

    @property
    def stall_seconds(self) -> float:
        """No check of a batch stored for this long: the batch is given up.
        Far beyond any check's own time-outs (a fetch, a browser visit)."""
        return max(10 * self.config.timeout, 2 * self.config.browser_timeout, 300.0)

    def new_run(self, run_id: int) -> None:
        """A batch of ``run_id``: an always-on worker starts each run afresh
        (what it learned of hosts' "not found" pages belongs to one run)."""
        if run_id != self.current_run:
            self.current_run = run_id
            if self.on_new_run is not None:
                self.on_new_run(run_id)

    def stored(self, checks: Iterable[NewCheck]) -> None:
        """Checks committed (or dropped as second checks of their case in
        their run): their batches are that much nearer done."""
        for check in checks:
            if check.run_id is None:
                continue
            self.stored_checks[check.run_id] = self.stored_checks.get(check.run_id, 0) + 1
            for batch in self._batches.pop((check.run_id, check.case_id), ()):
                batch.stored(check.case_id)

    def abandon(self, reason: str) -> None:
        """The crawl is closing: batches not done go back to the queue."""
        self.closed = True
        for waiting in list(self._batches.values()):
            for batch in waiting:
                if not batch.done.done():
                    batch.done.set_exception(BatchAbandoned(reason))
        self._batches.clear()

    async def _send_lines(self) -> None:
        while True:
            await asyncio.sleep(WORKER_LINE_SECONDS)
            await self.send_lines()

    async def send_lines(self, stopped: bool = False) -> None:
        """This worker's line of `hostwatch status`, per run it worked for."""
        now = datetime.now(UTC)
        busy = {run_id for run_id, _case in self._batches}
        for run_id, count in list(self.stored_checks.items()):
            if not stopped and self._lines_sent.get(run_id) == count and run_id not in busy:
                continue
            try:
                await asyncio.to_thread(record_worker, self.store, run_id, self.name,
                                        os.getpid(), now, checks=count, stopped=stopped)
                self._lines_sent[run_id] = count
            except Exception as exc:  # a status line is not worth stopping for
                logger.warning("worker %s: status line not written: %s", self.name,
                               type(exc).__name__)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        lines = getattr(self, "_lines", None)
        if lines is not None:
            lines.cancel()
        await self.send_lines(stopped=True)
        with contextlib.suppress(Exception):
            await self.queue.close()


@dataclass
class _Following:
    """What the coordinator's looks remember between two looks."""

    started: float = field(default_factory=time.monotonic)
    last_retry: float = field(default_factory=time.monotonic)
    last_saved: float = field(default_factory=time.monotonic)
    last_counted: float = 0.0
    warned: bool = False
    told_exited: bool = False


class Coordinator:
    """The coordinator side of a shared run (see the module docstring)."""

    def __init__(self, config: Config, store: Store, workers: int) -> None:
        self.config = config
        self.store = store
        self.workers = workers
        self.queue = Queue(config.queue)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.queued = 0
        self.stored = 0

    async def open(self) -> None:
        await self.queue.open()
        await self.queue.ensure_schema()
        # Batches of earlier runs not taken yet: their runs are over.
        stale = await self.queue.cancel_queued()
        if stale:
            logger.warning("cancelled %d queued batch(es) of earlier runs", stale)

    def start_workers(self) -> None:
        """N local worker processes, with this crawl's settings."""
        env = {**os.environ, **self.config.to_env(), COORDINATOR_PID_ENV: str(os.getpid())}
        for _ in range(self.workers):
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "hostwatch", "worker"], env=env,
                stdin=subprocess.DEVNULL))

    async def queue_cases(self, run_id: int, feed: Iterable[list[DueCase]],
                          browser: bool) -> None:
        size = self.config.queue_batch
        for cases in feed:
            for batch in batches((case.id for case in cases), size):
                await self.queue.enqueue(run_id, batch, browser=browser)
                self.queued += len(batch)

    async def follow(self, run_id: int, progress: Callable[[int], None]) -> bool:
        """Until every batch of ``run_id`` is done; ``progress(stored)`` on
        every look. False when no worker is left to do the batches. A look
        that fails (the queue's or the store's database gone for a moment)
        is tried again for up to `OUTAGE_SECONDS`, then raises."""
        failing_since: float | None = None
        state = _Following()
        while True:
            try:
                done = await self._look(run_id, progress, state)
                failing_since = None
            except Exception as exc:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > OUTAGE_SECONDS:
                    raise
                logger.warning("run %s: a look at the queue failed (%s); trying again",
                               run_id, type(exc).__name__)
                await asyncio.sleep(LOOK_SECONDS * 5)
                continue
            if done is not None:
                return done
            await asyncio.sleep(LOOK_SECONDS)

    async def _look(self, run_id: int, progress: Callable[[int], None],
                    state: _Following) -> bool | None:
        """One look: True or False when the run is over (see `follow`), None
        while it goes on."""
        lease = self.config.queue_lease
        now = time.monotonic()
        if now - state.last_retry >= min(lease / 3, 5.0):
            await self.queue.retry_stalled(lease)
            state.last_retry = now
        jobs = await self.queue.run_jobs(run_id)
        if now - state.last_counted >= COUNT_SECONDS or jobs.open == 0:
            # A count over the run's rows: not every second on a big run.
            self.stored = await asyncio.to_thread(self._stored, run_id)
            progress(self.stored)
            state.last_counted = now
        if now - state.last_saved >= 5.0:
            await asyncio.to_thread(set_progress, self.store, run_id, self.stored)
            state.last_saved = now
        if not state.warned and jobs.doing == 0 and jobs.todo \
                and now - state.started > max(lease, 10):
            state.warned = True
            logger.warning("run %s: %d batch(es) wait and no worker is taking them; "
                           "start workers with `hostwatch worker` (the same HOSTWATCH_DB "
                           "and HOSTWATCH_QUEUE)", run_id, jobs.todo)
        if jobs.open == 0:
            if jobs.failed:
                logger.error("run %s: %d batch(es) failed in every try; their cases "
                             "are due again next run", run_id, jobs.failed)
            return True
        if self.processes and all(p.poll() is not None for p in self.processes):
            if not state.told_exited:
                state.told_exited = True
                logger.error("run %s: every local worker has exited (status %s); "
                             "batches left: %d", run_id,
                             ", ".join(str(p.returncode) for p in self.processes), jobs.open)
            if self.workers and not await self._remote_workers_alive(lease):
                return False
        return None

    def _stored(self, run_id: int) -> int:
        with self.store.session() as session:
            return stored_in_run(session, run_id)

    async def _remote_workers_alive(self, lease: float) -> bool:
        row = await self.queue.app.connector.execute_query_one_async(
            "SELECT count(*) AS n FROM procrastinate_workers "
            "WHERE last_heartbeat >= now() - make_interval(secs => %(lease)s)",
            lease=lease)
        return bool(row["n"])

    async def close(self, run_id: int | None, finished: bool) -> None:
        """Stop the local workers; a run not finished gets its queued
        batches cancelled."""
        if run_id is not None and not finished:
            with contextlib.suppress(Exception):
                await self.queue.cancel_queued(run_id)
        await asyncio.to_thread(stop_processes, self.processes)
        with contextlib.suppress(Exception):
            await self.queue.close()


def stop_with_coordinator() -> bool:
    """In a local worker of `crawl --workers N`: have Linux send SIGTERM
    when the coordinator that started it dies (prctl PR_SET_PDEATHSIG), so
    a killed coordinator leaves no worker taking batches for ever. True
    when the coordinator is gone already (the caller stops as on SIGTERM).
    A worker started any other way (systemd, by hand) is left alone."""
    # Read once, and not passed on (to the writer, to Chromium).
    coordinator = os.environ.pop(COORDINATOR_PID_ENV, "")
    if not coordinator.isdigit():
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    except (OSError, AttributeError) as exc:  # not Linux
        logger.warning("this worker cannot follow its coordinator's end (%s); stop it with "
                       "SIGTERM if the coordinator dies", exc)
    return os.getppid() != int(coordinator)


def stop_processes(processes: Sequence[subprocess.Popen[bytes]],
                   grace: float = 120.0) -> None:
    """SIGTERM each (they finish their batches), then wait; SIGKILL after ``grace``."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

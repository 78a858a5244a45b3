"""The queue of a run that several workers share: Procrastinate on PostgreSQL.

A shared run (`hostwatch crawl --workers N`, `hostwatch worker`) goes like
this. The coordinator (the `crawl` process) holds the run lock, records the
run, and queues its due cases as batches: one Procrastinate job per batch
(`QUEUE`, task `TASK`, arguments ``run_id`` and ``case_ids``). Worker
processes, on this machine or others, take jobs one at a time each
(Procrastinate's ``FOR UPDATE SKIP LOCKED``: no job goes to two workers) and
check their cases; a job is done once its checks are committed. A worker
sends a heartbeat (Procrastinate's own, every third of the lease); when a
worker's heartbeat is older than HOSTWATCH_QUEUE_LEASE its jobs are stalled,
and the coordinator hands them back to the queue (`retry_stalled`), so a
killed worker loses nothing. A case is stored once per run whatever happens:
its check and its ``run_cases`` row are written in one transaction
(store.checks, ``once_per_run``), and a handed-back batch skips the cases
already stored (`store.runs.load_cases`).

Why Procrastinate and not scrapy-redis: docs/architecture.md, "Scale-out".
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kernel.errors import StoreError
from kernel.redact import without_password

logger = logging.getLogger(__name__)

QUEUE = "hostwatch"
TASK = "check_batch"  # the job's task (crawler.shared_run registers it)
# Jobs still to do or being done (Procrastinate's statuses).
OPEN_STATUSES = ("todo", "doing")


class QueueUnreachable(StoreError):
    """The queue's PostgreSQL cannot be reached (or is no PostgreSQL)."""


def conninfo(url: str) -> str:
    """The libpq connection string of a PostgreSQL URL as hostwatch writes
    them (``postgresql+psycopg://``: SQLAlchemy's driver suffix removed)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise QueueUnreachable(f"HOSTWATCH_QUEUE={without_password(url)!r}: not a URL")
    base = scheme.split("+", 1)[0].lower()
    if base not in ("postgresql", "postgres"):
        raise QueueUnreachable(f"HOSTWATCH_QUEUE: expected a PostgreSQL URL, got {scheme}://")
    return f"postgresql://{rest}"


class Queue:
    """The queue at ``url`` (a PostgreSQL URL): `open` it, use it, `close` it."""

    def __init__(self, url: str, connect_timeout: float = 10.0) -> None:
        import procrastinate

        self.url = url
        self.conninfo = conninfo(url)
        self.connect_timeout = max(1, round(connect_timeout))
        connector = procrastinate.PsycopgConnector(
            conninfo=self.conninfo, kwargs={"connect_timeout": self.connect_timeout},
            min_size=1, max_size=4, timeout=connect_timeout)
        self.app = procrastinate.App(connector=connector)

    async def open(self) -> None:
        """Open the connections, or raise `QueueUnreachable` saying where.

        One plain connection first: the pool would retry in the background
        for 30 s and log each failure."""
        import psycopg

        try:
            probe = await psycopg.AsyncConnection.connect(self.conninfo,
                                                          connect_timeout=self.connect_timeout)
            await probe.close()
            await self.app.open_async()
        except Exception as exc:  # psycopg, pool time-outs: one clear error
            raise QueueUnreachable(f"cannot reach the queue at {without_password(self.url)} "
                                   f"(HOSTWATCH_QUEUE): {_reason(exc)}") from exc

    async def close(self) -> None:
        await self.app.close_async()

    async def ensure_schema(self) -> None:
        """Create Procrastinate's tables in the queue's database unless they
        are there (an advisory lock keeps two processes from racing)."""
        connector = self.app.connector
        await connector.execute_query_async("SELECT pg_advisory_lock(727316)")
        try:
            row = await connector.execute_query_one_async(
                "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS present")
            if not row["present"]:
                await self.app.schema_manager.apply_schema_async()
                logger.info("created Procrastinate's tables in the queue's database")
        finally:
            await connector.execute_query_async("SELECT pg_advisory_unlock(727316)")

    async def enqueue(self, run_id: int, case_ids: Sequence[int], *,
                      browser: bool = False) -> None:
        """Queue one batch of ``run_id``'s due cases as one job."""
        deferrer = self.app.configure_task(TASK, queue=QUEUE)
        await deferrer.defer_async(run_id=run_id, case_ids=list(case_ids), browser=browser)

    async def run_jobs(self, run_id: int) -> RunJobs:
        """How many of ``run_id``'s jobs are queued, taken, failed (one
        count in the database, not the jobs themselves)."""
        row = await self.app.connector.execute_query_one_async(
            "SELECT count(*) FILTER (WHERE status = 'todo') AS todo,"
            " count(*) FILTER (WHERE status = 'doing') AS doing,"
            " count(*) FILTER (WHERE status = 'failed') AS failed"
            " FROM procrastinate_jobs WHERE queue_name = %(queue)s AND task_name = %(task)s"
            " AND args->>'run_id' = %(run)s",
            queue=QUEUE, task=TASK, run=str(run_id))
        return RunJobs(row["todo"], row["doing"], row["failed"])

    async def queued_runs(self) -> set[int]:
        """The runs that have batches queued or taken."""
        rows = await self.app.connector.execute_query_all_async(
            "SELECT DISTINCT args->>'run_id' AS run_id FROM procrastinate_jobs"
            " WHERE queue_name = %(queue)s AND task_name = %(task)s"
            " AND status IN ('todo', 'doing')",
            queue=QUEUE, task=TASK)
        return {int(row["run_id"]) for row in rows if str(row["run_id"] or "").isdigit()}

    async def retry_stalled(self, lease: float) -> int:
        """Hand the jobs of workers silent for ``lease`` seconds back to the
        queue; returns how many. A job that moved on meanwhile (its worker
        was slow, not dead, and finished it) is left as it is."""
        jobs = await self.app.job_manager.get_stalled_jobs(queue=QUEUE, task_name=TASK,
                                                           seconds_since_heartbeat=lease)
        handed = 0
        for job in jobs:
            try:
                await self.app.job_manager.retry_job(job)
            except Exception as exc:  # procrastinate: not found or no longer 'doing'
                logger.info("batch %s not handed on: %s", job.id, type(exc).__name__)
                continue
            handed += 1
        if handed:
            logger.warning("handed %d batch(es) of a silent worker to the other workers",
                           handed)
        return handed

    async def cancel_queued(self, run_id: int | None = None) -> int:
        """Cancel the queued (not yet taken) jobs of ``run_id`` (None: of
        every run): a stopped run's batches are not checked after it."""
        cancelled = 0
        for job in await self.app.job_manager.list_jobs_async(queue=QUEUE, task=TASK,
                                                             status="todo"):
            mine = run_id is None or job.task_kwargs.get("run_id") == run_id
            if mine and job.id is not None \
                    and await self.app.job_manager.cancel_job_by_id_async(job.id):
                cancelled += 1
        return cancelled


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def batches(case_ids: Iterable[int], size: int) -> Iterable[list[int]]:
    batch: list[int] = []
    for case_id in case_ids:
        batch.append(case_id)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(frozen=True)
class RunJobs:
    """The jobs of a run in the queue."""

    todo: int
    doing: int
    failed: int

    @property
    def open(self) -> int:
        return self.todo + self.doing


def worker_name(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}"

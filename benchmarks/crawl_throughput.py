"""Crawl throughput of hostwatch against a bare Scrapy spider and a bare aiohttp loop.

    .venv/bin/python benchmarks/crawl_throughput.py [--cases N] [--hosts H]
                                                    [--memory-cases M] [--size BYTES]
                                                    [--repeat R] [--profile FILE] [--json FILE]

Everything runs on loopback (127.0.0.0/8) and in child processes:

1. the local test internet (``python -m lab serve``): DNS plus H HTTP
   hosts h{i}.bench.test on 127.0.0.x, each serving small bodies at /c/{j};
2. ``hostwatch --db sqlite:///... crawl`` over a fresh SQLite store holding N
   cases (the farm's URLs, spread round-robin over the hosts); the rate is N
   over the run's own started_at..finished_at (``crawl_runs``), so Python and
   Scrapy start-up are left out; every case must end with exactly one check;
3. a bare Scrapy spider with hostwatch's Scrapy settings minus hostwatch's
   own components (middlewares, pipeline, extensions, download handler: it
   gets Scrapy's stock aiohttp handler), fetching
   the same N URLs by IP (http://127.0.0.x:PORT/c/j: Scrapy's default
   resolver is the system's, which does not know the farm's names);
4. a bare aiohttp loop fetching the same N URLs by IP with the same
   concurrency, reading every body fully;
5. peak memory (the child's VmHWM plus its store writer's, polled) of hostwatch crawls of M and
   M/10 cases, to show that memory does not grow with the number of cases
   (``--memory-cases 0`` skips this).

Steps 2-4 run ``--repeat`` times, interleaved; the median run of each is
compared (the machine may be shared: one round is noisy).

Exit status: 0 all targets met, 1 a target missed, 2 a run failed or did not
check every case exactly once. ``--json FILE`` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Run as a script, benchmarks/ comes first on sys.path, and its enrichment.py and
# reports.py would hide the packages of those names (even with REPO on PYTHONPATH).
sys.path[:] = [str(REPO), *(entry for entry in sys.path
                            if Path(entry).resolve() not in (REPO, REPO / "benchmarks"))]

TARGET_VS_SCRAPY = 0.9
TARGET_VS_AIOHTTP = 0.15
FARM_START_SECONDS = 120.0
# Children get at most this long: a floor plus 1/MIN_RATE seconds per request.
CHILD_FLOOR_SECONDS = 120.0
MIN_RATE = 20.0
POLL_SECONDS = 0.05
RSS_SAMPLE_SECONDS = 1.0
LOOPBACK_PREFIX = "127."


class BenchError(RuntimeError):
    """A run failed, or did not do what it was asked."""


# -- child processes -----------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    """The environment of every child: no HOSTWATCH_* or proxy settings leak in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HOSTWATCH_") and not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "*"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


@dataclass
class ChildResult:
    argv: list[str]
    returncode: int
    wall_seconds: float
    max_rss_kib: int
    stdout: str
    stderr: str
    cpu_seconds: float = 0.0
    """User plus system CPU time of the child, start-up included."""
    rss_samples: list[tuple[float, int]] = field(default_factory=list)
    """(seconds since start, VmRSS in KiB), about once a second."""
    rss_parts_kib: list[int] = field(default_factory=list)
    """The peak RSS of each process: the child first, then what it started."""

    def rss_at(self, fraction: float) -> int:
        """The last RSS sample taken before ``fraction`` of the child's wall time (KiB)."""
        before = [kib for at, kib in self.rss_samples if at <= fraction * self.wall_seconds]
        return before[-1] if before else 0

    def json_line(self) -> dict[str, Any]:
        """The last JSON object the child printed on stdout."""
        for line in reversed(self.stdout.splitlines()):
            if line.startswith("{"):
                return dict(json.loads(line))
        raise BenchError(f"{self.argv[2:]} printed no JSON line; stderr:\n{self.tail()}")

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.stderr.splitlines()[-lines:])


def run_child(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> ChildResult:
    """Run ``argv`` to the end (killed after ``timeout`` s); its wall time, CPU and peak RSS.

    The peak RSS is the child's VmHWM (/proc/PID/status) plus the VmHWM of
    each process it started (hostwatch's store writer), read every
    POLL_SECONDS until it exits: a sum of peaks, so an upper bound of the
    peak they had together. Not ru_maxrss: on Linux a child's ru_maxrss
    keeps the high-water mark of the process image it replaced at exec, i.e.
    this (parent) process's RSS at the fork, which grows with the case list.
    The CPU time (wait4) includes the processes the child waited for.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=env, cwd=cwd)
        deadline = started + timeout
        killed = False
        samples: list[tuple[float, int]] = []
        next_sample = started
        peaks: dict[int, int] = {}
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss, _ = _vm_kib(proc.pid)
            for member in process_tree(proc.pid):
                peaks[member] = max(peaks.get(member, 0), _vm_kib(member)[1])
            if rss and time.monotonic() >= next_sample:
                next_sample += RSS_SAMPLE_SECONDS
                samples.append((time.monotonic() - started, rss))
            if time.monotonic() > deadline:
                proc.kill()
                killed = True
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(POLL_SECONDS)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        result = ChildResult(argv, proc.returncode, wall, sum(peaks.values()), out.read(),
                             err.read(), cpu_seconds=usage.ru_utime + usage.ru_stime,
                             rss_samples=samples, rss_parts_kib=list(peaks.values()))
    if killed:
        raise BenchError(f"{argv[2:]} did not finish in {timeout:.0f} s; killed. "
                         f"stderr:\n{result.tail()}")
    if result.returncode != 0:
        raise BenchError(f"{argv[2:]} exited with {result.returncode}; stderr:\n{result.tail()}")
    return result


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        try:
            threads = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for thread in threads:  # a child belongs to the thread that started it
            try:
                with open(f"/proc/{current}/task/{thread}/children") as children:
                    todo.extend(int(child) for child in children.read().split())
            except (OSError, ValueError):
                pass
    return tree


def _vm_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in KiB; zeros once it has exited."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return rss, hwm


def child_timeout(requests: int) -> float:
    return CHILD_FLOOR_SECONDS + requests / MIN_RATE


# -- the server farm -----------------------------------------------------------


def start_farm(argv: list[str], what: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start a farm child and read the JSON line it prints when it is ready.

    stdin stays a pipe: if this process dies, the farm sees EOF and stops.
    """
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=REPO, env=child_env())
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], FARM_START_SECONDS)
    line = proc.stdout.readline() if ready else ""
    if not line:
        proc.kill()
        proc.communicate()
        raise BenchError(f"the {what} did not start in {FARM_START_SECONDS:.0f} s")
    info: dict[str, Any] = json.loads(line)
    return proc, info


@dataclass
class Farm:
    """The local test internet, running as ``python -m lab serve``."""

    hosts: int
    paths: int
    size: int
    proc: subprocess.Popen[str] | None = None
    nameservers: str = ""
    port: int = 0
    names: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    requests_served: int | None = None

    def argv(self) -> list[str]:
        """The farm's command line (benchmarks/pdq_crawl.py adds to it)."""
        return [sys.executable, "-m", "lab", "serve", "--hosts", str(self.hosts),
                "--paths", str(self.paths), "--size", str(self.size)]

    def start(self) -> Farm:
        self.proc, info = start_farm(self.argv(), "server farm")
        self.nameservers = info["nameservers"]
        self.port = int(info["port"])
        self.names = [host["name"] for host in info["hosts"]]
        self.ips = [host["ip"] for host in info["hosts"]]
        addresses = [*self.ips, *(ns.rpartition(":")[0] for ns in self.nameservers.split(","))]
        if not all(address.startswith(LOOPBACK_PREFIX) for address in addresses):
            self.stop()
            raise BenchError(f"the farm is not on loopback: {addresses}")
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # the farm stops when its stdin closes
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stdout is not None:
            for line in proc.stdout.read().splitlines():
                if line.startswith("{") and "requests" in line:
                    self.requests_served = int(json.loads(line)["requests"])
            proc.stdout.close()

    def url(self, case: int, *, by_ip: bool = False) -> str:
        """Case ``case``'s URL: hosts taken round-robin, so every batch spans all hosts."""
        host = case % self.hosts
        path = case // self.hosts
        if path >= self.paths:
            raise ValueError(f"case {case} is beyond the farm's {self.paths} paths per host")
        name = self.ips[host] if by_ip else self.names[host]
        return f"http://{name}:{self.port}/c/{path}"

    def urls(self, count: int, *, by_ip: bool = False) -> list[str]:
        return [self.url(k, by_ip=by_ip) for k in range(count)]


# -- hostwatch -----------------------------------------------------------------


def make_store(db_path: Path, urls: list[str]) -> str:
    """A fresh SQLite store holding one case per URL (SQLAlchemy Core bulk insert)."""
    from sqlalchemy import insert

    from store import Store
    from store.models import Base

    db_url = f"sqlite:///{db_path}"
    store = Store(db_url)
    store.upgrade()
    now = datetime.now(UTC)
    rows = [{"source": "bench", "external_id": f"b{k}", "url": url, "url_normalised": url,
             "host": url.split("/")[2].split(":")[0], "category": "csam", "reported_at": now,
             "imported_at": now, "state": "unchecked", "ref_sha256": None,
             "reappearances": 0, "check_count": 0}
            for k, url in enumerate(urls)]
    cases = Base.metadata.tables["cases"]
    with store.engine.begin() as connection:
        for start in range(0, len(rows), 20_000):
            connection.execute(insert(cases), rows[start:start + 20_000])
    store.dispose()
    return db_url


def hostwatch_env(farm: Farm, workdir: Path) -> dict[str, str]:
    (workdir / "tmp").mkdir(exist_ok=True)
    return child_env(
        HOSTWATCH_NAMESERVERS=farm.nameservers,
        HOSTWATCH_ALLOW_PRIVATE="127.0.0.0/8",
        HOSTWATCH_RECHECK_HOURS="0",
        HOSTWATCH_PROGRESS="0",
        HOSTWATCH_LOG_LEVEL="WARNING",
        HOSTWATCH_DATA_DIR=str(workdir),
        TMPDIR=str(workdir / "tmp"),
    )


@dataclass
class HostwatchRun:
    cases: int
    run_seconds: float
    wall_seconds: float
    max_rss_kib: int
    insert_seconds: float
    counts: dict[str, int]
    summary: str
    cpu_seconds: float = 0.0
    rss_quarters_kib: list[int] = field(default_factory=list)
    """RSS at 25, 50 and 75 % of the child's wall time (the crawl process)."""
    rss_parts_kib: list[int] = field(default_factory=list)
    """Peak RSS of the crawl process, then of the writer process."""

    @property
    def rate(self) -> float:
        return self.cases / self.run_seconds

    @property
    def wall_rate(self) -> float:
        return self.cases / self.wall_seconds


def run_hostwatch(farm: Farm, cases: int, workdir: Path, label: str,
                  profile: Path | None = None) -> HostwatchRun:
    from sqlalchemy import create_engine, distinct, func, select

    from store.models import Case, Check, CrawlRun

    db_path = workdir / f"{label}.db"
    started = time.monotonic()
    db_url = make_store(db_path, farm.urls(cases))
    insert_seconds = time.monotonic() - started
    python = [sys.executable]
    if profile is not None:
        python += ["-m", "cProfile", "-o", str(profile)]
    result = run_child([*python, "-m", "hostwatch", "--db", db_url, "crawl"],
                       hostwatch_env(farm, workdir), workdir, child_timeout(cases))
    engine = create_engine(db_url)
    try:
        with engine.connect() as db:
            run = db.execute(select(CrawlRun.id, CrawlRun.started_at, CrawlRun.finished_at,
                                    CrawlRun.status, CrawlRun.checks_made, CrawlRun.counts)
                             .order_by(CrawlRun.id.desc()).limit(1)).one()
            checks, checked_cases = db.execute(
                select(func.count(), func.count(distinct(Check.case_id)))
                .where(Check.run_id == run.id)).one()
            all_checks = db.scalar(select(func.count()).select_from(Check))
            total = db.scalar(select(func.count()).select_from(Case))
            not_once = db.scalar(select(func.count()).select_from(Case)
                                 .where(Case.check_count != 1))
    finally:
        engine.dispose()
    problems = []
    if run.status != "finished" or run.finished_at is None:
        problems.append(f"run status {run.status}")
    if not (total == cases == checks == checked_cases == all_checks == run.checks_made):
        problems.append(f"{cases} cases asked, {total} stored, {checks} checks by "
                        f"{checked_cases} cases ({all_checks} in all), run says "
                        f"{run.checks_made}")
    if not_once:
        problems.append(f"{not_once} cases do not have exactly one check")
    if problems:
        raise BenchError(f"hostwatch {label}: " + "; ".join(problems))
    seconds = (run.finished_at - run.started_at).total_seconds()
    return HostwatchRun(cases, seconds, result.wall_seconds, result.max_rss_kib, insert_seconds,
                        dict(run.counts), result.stdout.strip().splitlines()[-1],
                        result.cpu_seconds,
                        [result.rss_at(fraction) for fraction in (0.25, 0.5, 0.75)],
                        result.rss_parts_kib)


# -- bare Scrapy ---------------------------------------------------------------


def _lazy_aiohttp_handler() -> Any:
    from scrapy.core.downloader.handlers._aiohttp import AiohttpDownloadHandler

    class LazyAiohttp(AiohttpDownloadHandler):
        lazy = True  # aiohttp needs the running loop
        experimental = False  # no warning in the benchmark's output

    return LazyAiohttp


def bare_scrapy_settings() -> Any:
    """hostwatch's Scrapy settings without hostwatch's own components."""
    from scrapy.settings import Settings

    from crawler.settings import scrapy_overrides
    from kernel.config import Config

    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    for name in ("DOWNLOADER_MIDDLEWARES", "SPIDER_MIDDLEWARES", "ITEM_PIPELINES", "EXTENSIONS"):
        kept = {key: value for key, value in settings.getdict(name).items()
                if not (isinstance(key, str) and key.startswith("crawler."))}
        settings.set(name, kept, priority="project")
    # hostwatch swaps Scrapy's redirect middleware for a subclass; the bare
    # spider keeps the stock one, which does the same work per response.
    downloader = settings.getdict("DOWNLOADER_MIDDLEWARES")
    downloader["scrapy.downloadermiddlewares.redirect.RedirectMiddleware"] = 600
    settings.set("DOWNLOADER_MIDDLEWARES", downloader, priority="project")
    # The same download library as hostwatch (Scrapy's aiohttp handler),
    # without hostwatch's resolver, guard and body cap.
    handlers = settings.getdict("DOWNLOAD_HANDLERS")
    for scheme, handler in list(handlers.items()):
        if isinstance(handler, str) and handler.startswith("crawler."):
            handlers[scheme] = _lazy_aiohttp_handler()
    settings.set("DOWNLOAD_HANDLERS", handlers, priority="project")
    # hostwatch's own downloader and scheduler queue (crawler.downloader,
    # crawler.politeness) are hostwatch's components too: Scrapy's stock ones.
    for name in ("DOWNLOADER", "SCHEDULER_PRIORITY_QUEUE"):
        if str(settings.get(name)).startswith("crawler."):
            settings.set(name, Settings().get(name), priority="project")
    settings.set("SPIDER_MODULES", [], priority="project")
    # The same values as `hostwatch crawl` applies (concurrency, timeouts, ...).
    settings.setdict(scrapy_overrides(Config.from_env()), priority="spider")
    settings.set("CONCURRENT_ITEMS", 1, priority="spider")
    return settings


def child_scrapy(urls_file: Path) -> int:
    from scrapy import Request, Spider, signals
    from scrapy.crawler import CrawlerProcess
    from scrapy.http import Response
    from twisted.python.failure import Failure

    from kernel.config import Config

    config = Config.from_env()
    # hostwatch's settings switch off Scrapy's User-Agent, default-headers and
    # timeout middlewares and set these on each request instead: so does this.
    headers = {"User-Agent": config.user_agent, "Accept": "*/*"}

    class BareSpider(Spider):
        name = "bare"

        def __init__(self, urls: list[str], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.urls = urls
            self.first_request = self.closed_at = 0.0
            self.ok = self.responses = self.failures = self.items = 0

        async def start(self) -> Any:
            self.first_request = time.monotonic()
            for url in self.urls:
                yield Request(url, callback=self.parse, errback=self.failed, dont_filter=True,
                              headers=headers, meta={"download_timeout": config.timeout})

        @classmethod
        def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> Any:
            spider = super().from_crawler(crawler, *args, **kwargs)
            # Counted here: hostwatch's settings switch Scrapy's CoreStats off.
            crawler.signals.connect(spider.scraped, signal=signals.item_scraped)
            return spider

        def scraped(self, **_: Any) -> None:
            self.items += 1

        def parse(self, response: Response) -> Iterator[dict[str, int]]:
            self.responses += 1
            self.ok += response.status == 200
            yield {"status": response.status, "bytes": len(response.body)}

        def failed(self, failure: Failure) -> None:
            self.failures += 1

        def closed(self, reason: str) -> None:
            self.closed_at = time.monotonic()

    urls = urls_file.read_text().split()
    process = CrawlerProcess(bare_scrapy_settings(), install_root_handler=True)
    crawler = process.create_crawler(BareSpider)
    process.crawl(crawler, urls=urls)
    process.start()
    spider = crawler.spider
    assert isinstance(spider, BareSpider)
    print(json.dumps({"requests": len(urls), "responses": spider.responses, "ok": spider.ok,
                      "failures": spider.failures, "items": spider.items,
                      "seconds": spider.closed_at - spider.first_request,
                      "concurrency": crawler.settings.getint("CONCURRENT_REQUESTS"),
                      "per_host": crawler.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN")}),
          flush=True)
    return 0


# -- bare aiohttp --------------------------------------------------------------


def child_aiohttp(urls_file: Path, concurrency: int, per_host: int, timeout: float) -> int:
    import asyncio

    import aiohttp

    urls = urls_file.read_text().split()
    counts = {"responses": 0, "ok": 0, "failures": 0, "bytes": 0}

    async def fetch_all() -> float:
        connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=per_host)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                         cookie_jar=aiohttp.DummyCookieJar(),
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            todo = iter(urls)

            async def worker() -> None:
                for url in todo:  # one shared iterator: each URL is fetched once
                    try:
                        async with session.get(url, allow_redirects=False) as response:
                            body = await response.read()
                    except (aiohttp.ClientError, TimeoutError):
                        counts["failures"] += 1
                        continue
                    counts["responses"] += 1
                    counts["ok"] += response.status == 200
                    counts["bytes"] += len(body)

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.monotonic() - started

    seconds = asyncio.run(fetch_all())
    print(json.dumps({"requests": len(urls), **counts, "seconds": seconds,
                      "concurrency": concurrency, "per_host": per_host}), flush=True)
    return 0


# -- baselines, from the parent ------------------------------------------------


@dataclass
class BaselineRun:
    name: str
    requests: int
    seconds: float
    wall_seconds: float
    max_rss_kib: int
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def run_baseline(kind: str, farm: Farm, cases: int, workdir: Path) -> BaselineRun:
    from kernel.config import Config

    config = Config.from_env({})  # hostwatch's defaults
    urls_file = workdir / f"{kind}-urls.txt"
    urls = farm.urls(cases, by_ip=True)
    urls_file.write_text("\n".join(urls) + "\n")
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", kind,
            "--urls-file", str(urls_file), "--concurrency", str(config.concurrency),
            "--per-host", str(config.concurrency_per_ip), "--timeout", str(config.timeout)]
    env = child_env(HOSTWATCH_LOG_LEVEL="WARNING", HOSTWATCH_PROGRESS="0",
                    TMPDIR=str(workdir / "tmp"))
    (workdir / "tmp").mkdir(exist_ok=True)
    result = run_child(argv, env, workdir, child_timeout(cases))
    figures = result.json_line()
    if figures["ok"] != cases or figures["responses"] != cases:
        raise BenchError(f"{kind}: {figures['ok']} of {cases} requests answered 200 "
                         f"({figures['responses']} responses, {figures['failures']} failures)")
    if kind == "scrapy" and figures["items"] != cases:
        raise BenchError(f"scrapy: {figures['items']} items for {cases} responses")
    return BaselineRun(kind, cases, float(figures["seconds"]), result.wall_seconds,
                       result.max_rss_kib, result.cpu_seconds)


# -- report --------------------------------------------------------------------


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio >= target else "FAIL"


def revision(tree: Path = REPO) -> str:
    """The commit measured (``+changes`` when the work tree differs from it)."""
    try:
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True).stdout
        dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--",
                                "crawler", "store", "hostwatch", "enrichment"],
                               capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.strip() + (" +changes" if dirty.strip() else "")


def machine() -> str:
    return (f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


@contextmanager
def step(text: str) -> Iterator[None]:
    print(f"... {text} ({load()})", file=sys.stderr, flush=True)
    started = time.monotonic()
    yield
    print(f"    done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


def median_run(runs: list[Any]) -> Any:
    """The run with the median rate (the slower middle one for an even count)."""
    return sorted(runs, key=lambda run: run.rate)[(len(runs) - 1) // 2]


def throughput(farm: Farm, cases: int, rounds: int, workdir: Path, profile: Path | None,
               results: dict[str, Any]) -> bool:
    from kernel.config import Config

    config = Config.from_env({})
    hws: list[HostwatchRun] = []
    scrapys: list[BaselineRun] = []
    aios: list[BaselineRun] = []
    for number in range(1, rounds + 1):
        # Interleaved, so that a burst of other work on the machine hits all three alike.
        with step(f"round {number}/{rounds}: hostwatch crawl of {cases} cases"):
            hws.append(run_hostwatch(farm, cases, workdir, f"throughput-{number}", profile))
        with step(f"round {number}/{rounds}: bare Scrapy spider, {cases} GETs by IP"):
            scrapys.append(run_baseline("scrapy", farm, cases, workdir))
        with step(f"round {number}/{rounds}: bare aiohttp loop, {cases} GETs by IP"):
            aios.append(run_baseline("aiohttp", farm, cases, workdir))
    hw, scrapy_run, aio = median_run(hws), median_run(scrapys), median_run(aios)

    vs_scrapy = hw.rate / scrapy_run.rate
    vs_aiohttp = hw.rate / aio.rate
    print(f"\nThroughput: {cases} checks, {farm.hosts} hosts, {farm.size}-byte bodies, "
          f"concurrency {config.concurrency} ({config.concurrency_per_ip} per host), "
          f"{rounds} round(s)")
    print("hostwatch resolves h*.bench.test through the farm's DNS; the bare Scrapy spider and "
          "aiohttp loop\nrequest http://127.0.0.x:PORT/c/j by IP (the system resolver does not "
          "know the farm's names).")
    if profile is not None:
        print(f"hostwatch ran under cProfile ({profile}): its figures are slowed down.")
    if rounds > 1:
        print("\nround  hostwatch/s  scrapy/s  aiohttp/s  hw/scrapy  hw/aiohttp   CPU s hw/scrapy")
        for number, (h, s, a) in enumerate(zip(hws, scrapys, aios, strict=True), start=1):
            print(f"{number:>5} {h.rate:>12.0f} {s.rate:>9.0f} {a.rate:>10.0f} "
                  f"{h.rate / s.rate:>10.2f} {h.rate / a.rate:>11.2f}   "
                  f"{h.cpu_seconds:>5.1f} / {s.cpu_seconds:.1f}")
        print("(below: the median run of each, by rate)")
    rows = [
        ("hostwatch crawl (crawl_runs interval)", hw.cases, hw.run_seconds, hw.rate,
         mib(hw.max_rss_kib), f"{hw.cpu_seconds:.1f}"),
        ("hostwatch crawl (whole child, start-up incl.)", hw.cases, hw.wall_seconds,
         hw.wall_rate, "", ""),
        ("bare Scrapy spider (first request..close)", scrapy_run.requests, scrapy_run.seconds,
         scrapy_run.rate, mib(scrapy_run.max_rss_kib), f"{scrapy_run.cpu_seconds:.1f}"),
        ("bare aiohttp loop (first request..last)", aio.requests, aio.seconds, aio.rate,
         mib(aio.max_rss_kib), f"{aio.cpu_seconds:.1f}"),
    ]
    print(f"\n{'run':<46} {'checks':>7} {'seconds':>8} {'checks/s':>9} {'peak RSS':>9} "
          f"{'CPU s':>6}")
    for name, count, seconds, rate, rss, cpu in rows:
        print(f"{name:<46} {count:>7} {seconds:>8.2f} {rate:>9.0f} {rss:>9} {cpu:>6}")
    print("(CPU s: user + system time of the whole child, start-up included; steadier than "
          "wall time\n on a busy machine)")
    print(f"\n{'ratio':<26} {'value':>6} {'target':>8}")
    print(f"{'hostwatch / bare Scrapy':<26} {vs_scrapy:>6.2f} {'>= ' + str(TARGET_VS_SCRAPY):>8}"
          f"  {verdict(vs_scrapy, TARGET_VS_SCRAPY)}")
    print(f"{'hostwatch / bare aiohttp':<26} {vs_aiohttp:>6.2f} "
          f"{'>= ' + str(TARGET_VS_AIOHTTP):>8}  {verdict(vs_aiohttp, TARGET_VS_AIOHTTP)}")
    print(f"\nhostwatch: {hw.summary}")
    print(f"(store of {cases} cases made in {hw.insert_seconds:.1f} s; every case has exactly "
          f"one check in every round)")
    results["throughput"] = {
        "cases": cases, "hosts": farm.hosts, "size": farm.size, "rounds": rounds,
        "concurrency": config.concurrency, "per_host": config.concurrency_per_ip,
        "hostwatch": [{**asdict(run), "rate": run.rate, "wall_rate": run.wall_rate}
                      for run in hws],
        "scrapy": [{**asdict(run), "rate": run.rate} for run in scrapys],
        "aiohttp": [{**asdict(run), "rate": run.rate} for run in aios],
        "median_rates": {"hostwatch": hw.rate, "scrapy": scrapy_run.rate, "aiohttp": aio.rate},
        "hostwatch_vs_scrapy": vs_scrapy, "hostwatch_vs_aiohttp": vs_aiohttp,
    }
    return vs_scrapy >= TARGET_VS_SCRAPY and vs_aiohttp >= TARGET_VS_AIOHTTP


def memory(farm: Farm, cases: int, workdir: Path, results: dict[str, Any]) -> None:
    from kernel.config import Config

    runs = []
    for count in (max(cases // 10, 1), cases):
        with step(f"hostwatch crawl of {count} cases (memory)"):
            runs.append(run_hostwatch(farm, count, workdir, f"memory-{count}"))
    print(f"\nPeak memory of `hostwatch crawl` (VmHWM of the crawl plus that of its store "
          f"writer; feed batch {Config.from_env({}).feed_batch}):")
    print(f"{'cases':>8} {'peak RSS':>9} {'= crawl + writer':>18} {'run s':>8} {'checks/s':>9}   "
          f"crawl RSS at 25 / 50 / 75 % of the run")
    for run in runs:
        quarters = " / ".join(f"{kib / 1024:.0f}" for kib in run.rss_quarters_kib)
        parts = " + ".join(f"{kib / 1024:.0f}" for kib in run.rss_parts_kib)
        print(f"{run.cases:>8} {mib(run.max_rss_kib):>9} {parts:>18} {run.run_seconds:>8.1f} "
              f"{run.rate:>9.0f}   {quarters} MiB")
    small, large = runs
    print(f"{large.cases // small.cases}x the cases: {large.max_rss_kib / small.max_rss_kib:.2f}x "
          f"the peak RSS ({(large.max_rss_kib - small.max_rss_kib) / 1024:+.0f} MiB)")
    results["memory"] = [{**asdict(run), "rate": run.rate} for run in runs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=5000,
                        help="checks in the throughput comparison (default 5000; 0 skips it)")
    parser.add_argument("--hosts", type=int, default=20, help="farm hosts (default 20)")
    parser.add_argument("--memory-cases", type=int, default=100_000,
                        help="cases of the big memory run; M/10 for the small one "
                             "(default 100000; 0 skips it)")
    parser.add_argument("--size", type=int, default=2048, help="body bytes (default 2048)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="throughput rounds, interleaved; the median of each is compared "
                             "(default 1)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="run the throughput hostwatch crawl under cProfile, "
                             "writing this file (slows it down)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    # Internal: the baselines re-run this file in a child process.
    parser.add_argument("--child", choices=("scrapy", "aiohttp"), help=argparse.SUPPRESS)
    parser.add_argument("--urls-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--per-host", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=30.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "scrapy":
        return child_scrapy(args.urls_file)
    if args.child == "aiohttp":
        return child_aiohttp(args.urls_file, args.concurrency, args.per_host, args.timeout)
    if args.cases < 0 or args.memory_cases < 0 or min(args.hosts, args.size, args.repeat) < 1:
        parser.error("--cases and --memory-cases must be >= 0; --hosts, --size and --repeat "
                     ">= 1")

    paths = math.ceil(max(args.cases, args.memory_cases, 1) / args.hosts)
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                               "machine": machine(), "revision": revision(),
                               "argv": sys.argv[1:]}
    print(f"hostwatch crawl throughput, {results['date']}; commit {results['revision']}; "
          f"{machine()}")
    met = True
    farm = Farm(args.hosts, paths, args.size)
    try:
        with tempfile.TemporaryDirectory(prefix="hostwatch-bench-") as tmp:
            with step(f"starting the farm: {args.hosts} hosts x {paths} paths"):
                farm.start()
            if args.cases:
                met = throughput(farm, args.cases, args.repeat, Path(tmp), args.profile,
                                 results)
            if args.memory_cases:
                memory(farm, args.memory_cases, Path(tmp), results)
    except BenchError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        farm.stop()
    print(f"\nthe farm answered {farm.requests_served} requests in all")
    results["farm_requests"] = farm.requests_served
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

"""hostwatch against a bare aiohttp loop on a latency farm: a night as it is (#16).

    .venv/bin/python benchmarks/farm.py [--cases N] [--concurrency C] [--per-host P]
                                        [--timeout S] [--repeat R] [--curve C1,C2,...]
                                        [--timeouts S1,S2] [--memory] [--json FILE]

A loopback benchmark answers at once; a real night does not. The farm (a
child process, ``--serve``) makes the servers of a night:

- ``--hosts`` names ``h{i}.farm.test`` on ``--addresses`` loopback addresses
  (127.77.x.y; name i on address i mod K, so several names can share one);
- a DNS server on 127.0.0.1 answering for them, a share of the names
  (``--dns-slow``) only after a delay (``--dns-delay``, seconds, uniform);
- a Zipf-like spread of the cases over the names (``--skew``; weight of the
  name of rank r = 1/r**skew): a few names hold most URLs, as real hosters do;
- per URL, drawn from ``--seed`` (the same URL behaves the same in every run
  and every farm process): a lognormal delay before the answer (``--median-ms``,
  ``--sigma``); ``--hang`` of the URLs never answer (the client's time-out
  ends them); ``--trickle`` send their body in ten pieces over
  ``--trickle-seconds``; the rest answer with a small body (``--size``).

The HTTP side runs in ``--farm-procs`` forked processes sharing the listening
sockets, so the farm is not the bottleneck (its CPU time is printed per run).

Then, on the same farm, interleaved ``--repeat`` times:

1. **hostwatch**: ``hostwatch --db sqlite:///... crawl`` on a fresh store of N
   cases (the farm's URLs), HOSTWATCH_NAMESERVERS = the farm's DNS,
   HOSTWATCH_OFFLINE=1, HOSTWATCH_ALLOW_PRIVATE=127.0.0.0/8 and explicit
   HOSTWATCH_CONCURRENCY, _CONCURRENCY_PER_HOST and HOSTWATCH_TIMEOUT. Rate =
   N over the run's ``crawl_runs`` interval; every case must end with exactly
   one check (crawl_throughput.py's validation).
2. **bare aiohttp**: the same N URLs, by name, resolved through the same DNS
   server with dnspython's async resolver (A and AAAA, answers kept for their
   TTL, as hostwatch's resolver does), the same global and per-host limits and
   total time-out (running from when the request got its slot, as in
   hostwatch); every body read fully. Each name has its own queue and
   per-host workers, so a URL starts as soon as both limits allow: the best
   any scheduler can do under those limits (a loop of C workers over one
   shared list is not: on a skewed farm its workers all end up waiting for
   the biggest name). Rate = N over first request..last.

``--curve`` repeats that for each concurrency (x each ``--timeouts`` and
``--per-hosts`` value); ``--memory`` adds hostwatch crawls of N/10 and N for
peak RSS; ``--workers 1,2,4`` is the hook for ``hostwatch crawl --workers``
(skipped with a message while the command has no such option). The projection
to 1,000,000 cases is printed from the measured rate (see ``project()``).

Loopback only; no body is written anywhere. Exit status: 0 the ratio target
(hostwatch >= 0.8 of bare aiohttp) met, 1 missed, 2 a run failed or did not
check every case exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import json
import math
import mmap
import os
import random
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# The local PostgreSQL (trust auth) for --workers: a database per run is made there.
PG_SERVER = os.environ.get("HOSTWATCH_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
sys.path[:] = [str(REPO), *(entry for entry in sys.path
                            if Path(entry).resolve() not in (REPO, REPO / "benchmarks"))]

from benchmarks.crawl_throughput import (  # noqa: E402  (after the path fix above)
    LOOPBACK_PREFIX,
    BenchError,
    child_env,
    load,
    machine,
    make_store,
    mib,
    process_tree,
    revision,
    run_child,
    start_farm,
    step,
)

TARGET_VS_AIOHTTP = 0.8
DOMAIN = "farm.test"
ADDRESS_BASE = (127, 77)  # 127.77.x.y: clear of the lab's 127.0.0.x and the DNS on 127.0.0.1
DNS_TTL = 300
MIN_RATE = 5.0  # children get 120 s + N / MIN_RATE before they are killed
PROJECTED_CASES = 1_000_000

HANG, TRICKLE, SERVE = "hang", "trickle", "serve"


# -- what the farm does, from the seed (pure; the farm and the parent agree) ---


@dataclass(frozen=True)
class Spec:
    """The farm's shape; every figure of a URL follows from it and the URL's number."""

    seed: int = 1
    hosts: int = 50
    addresses: int = 50
    skew: float = 1.0
    median_ms: float = 150.0
    sigma: float = 1.0
    hang: float = 0.02
    trickle: float = 0.01
    trickle_seconds: tuple[float, float] = (2.0, 8.0)
    size: int = 2048
    dns_slow: float = 0.2
    dns_delay: tuple[float, float] = (0.2, 2.0)

    def name(self, host: int) -> str:
        return f"h{host}.{DOMAIN}"

    def address(self, host: int) -> str:
        slot = host % self.addresses
        return f"{ADDRESS_BASE[0]}.{ADDRESS_BASE[1]}.{slot // 250}.{slot % 250 + 1}"

    def all_addresses(self) -> list[str]:
        return sorted({self.address(host) for host in range(self.hosts)})

    def host_of(self, case: int) -> int:
        """The name case ``case`` is on: Zipf-weighted, rank 0 the heaviest."""
        draw = random.Random(f"{self.seed}:host:{case}").random()
        return min(bisect.bisect_left(_cumulative(self.hosts, self.skew), draw), self.hosts - 1)

    def behaviour(self, case: int) -> Behaviour:
        rng = random.Random(f"{self.seed}:url:{case}")
        delay = rng.lognormvariate(math.log(self.median_ms / 1000), self.sigma)
        draw = rng.random()
        if draw < self.hang:
            return Behaviour(HANG, delay)
        if draw < self.hang + self.trickle:
            return Behaviour(TRICKLE, delay, rng.uniform(*self.trickle_seconds))
        return Behaviour(SERVE, delay)

    def dns_delay_of(self, host: int) -> float:
        rng = random.Random(f"{self.seed}:dns:{host}")
        return rng.uniform(*self.dns_delay) if rng.random() < self.dns_slow else 0.0

    def url(self, case: int, port: int) -> str:
        return f"http://{self.name(self.host_of(case))}:{port}/c/{case}"

    def body(self, case: int) -> bytes:
        head = f"<html><head><title>farm case {case}</title></head><body><p>".encode()
        tail = b"</p></body></html>"
        return head + b"x" * max(self.size - len(head) - len(tail), 0) + tail

    def argv(self) -> list[str]:
        return ["--seed", str(self.seed), "--hosts", str(self.hosts),
                "--addresses", str(self.addresses), "--skew", str(self.skew),
                "--median-ms", str(self.median_ms), "--sigma", str(self.sigma),
                "--hang", str(self.hang), "--trickle", str(self.trickle),
                "--trickle-seconds", _pair(self.trickle_seconds), "--size", str(self.size),
                "--dns-slow", str(self.dns_slow), "--dns-delay", _pair(self.dns_delay)]


@dataclass(frozen=True)
class Behaviour:
    kind: str
    delay: float
    """Seconds before the status line (hang: before nothing at all)."""
    trickle_seconds: float = 0.0


@lru_cache(maxsize=8)
def _cumulative(hosts: int, skew: float) -> list[float]:
    weights = [1 / (rank + 1) ** skew for rank in range(hosts)]
    total = sum(weights)
    cumulative, running = [], 0.0
    for weight in weights:
        running += weight
        cumulative.append(running / total)
    return cumulative


def _pair(values: tuple[float, float]) -> str:
    return f"{values[0]},{values[1]}"


def _parse_pair(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    pair = (float(low), float(high or low))
    if not 0 <= pair[0] <= pair[1]:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH with 0 <= LOW <= HIGH: {text!r}")
    return pair


def _parse_list(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


# -- the farm process (--serve) ------------------------------------------------

COUNTERS = ("requests", "hangs", "trickles", "not_found")


class _Counters:
    """Per-process request counters in shared memory (kept across the fork)."""

    def __init__(self, processes: int) -> None:
        self.memory = mmap.mmap(-1, 8 * len(COUNTERS) * processes)
        self.processes = processes

    def add(self, process: int, counter: str, value: int = 1) -> None:
        offset = 8 * (process * len(COUNTERS) + COUNTERS.index(counter))
        (current,) = struct.unpack_from("q", self.memory, offset)
        struct.pack_into("q", self.memory, offset, current + value)

    def totals(self) -> dict[str, int]:
        totals = dict.fromkeys(COUNTERS, 0)
        for process in range(self.processes):
            for index, counter in enumerate(COUNTERS):
                (value,) = struct.unpack_from("q", self.memory,
                                              8 * (process * len(COUNTERS) + index))
                totals[counter] += value
        return totals


def _listeners(spec: Spec) -> tuple[list[socket.socket], int]:
    """One listening socket per farm address, all on one port."""
    sockets: list[socket.socket] = []
    port = 0
    for attempt in range(20):
        try:
            for address in spec.all_addresses():
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, port))
                sock.listen(4096)
                sock.setblocking(False)
                port = sock.getsockname()[1]
                sockets.append(sock)
            return sockets, port
        except OSError:
            for sock in sockets:
                sock.close()
            sockets, port = [], 0
            if attempt == 19:
                raise
    raise AssertionError("unreachable")


async def _serve_http(spec: Spec, sockets: list[socket.socket], counters: _Counters,
                      process: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                counters.add(process, "requests")
                path = head.split(b" ", 2)[1].decode("latin-1")
                case = int(path[3:]) if path.startswith("/c/") and path[3:].isdigit() else -1
                if case < 0:
                    counters.add(process, "not_found")
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n"
                                 b"Content-Length: 22\r\n\r\n<html>not found</html>\n")
                    await writer.drain()
                    continue
                behaviour = spec.behaviour(case)
                await asyncio.sleep(behaviour.delay)
                if behaviour.kind == HANG:
                    counters.add(process, "hangs")
                    while await reader.read(4096):  # until the client gives up
                        pass
                    return
                body = spec.body(case)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(body))
                if behaviour.kind == TRICKLE:
                    counters.add(process, "trickles")
                    pieces = 10
                    step_bytes = math.ceil(len(body) / pieces)
                    for start in range(0, len(body), step_bytes):
                        await asyncio.sleep(behaviour.trickle_seconds / pieces)
                        writer.write(body[start:start + step_bytes])
                        await writer.drain()
                else:
                    writer.write(body)
                    await writer.drain()
                if b"\r\nconnection: close" in head.lower():
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                ValueError, IndexError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(handle, sock=sock, backlog=4096) for sock in sockets]
    await asyncio.gather(*(server.serve_forever() for server in servers))


def _dns_server(spec: Spec) -> Any:
    """lab's DNS zone, with the slow names answering late (a thread per query)."""
    from dnslib.server import BaseResolver, DNSLogger, DNSServer

    from lab.dns_server import Zone, canonical

    zone = Zone(origin=DOMAIN, ttl=DNS_TTL)
    delays: dict[str, float] = {}
    for host in range(spec.hosts):
        zone.add_a(spec.name(host), spec.address(host))
        if (delay := spec.dns_delay_of(host)) > 0:
            delays[canonical(spec.name(host))] = delay

    class SlowResolver(BaseResolver):  # type: ignore[misc]
        def resolve(self, request: Any, handler: Any) -> Any:
            delay = delays.get(canonical(str(request.q.qname)))
            if delay:
                time.sleep(delay)
            return zone.answer(request)

    import socketserver

    class UDPServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
        daemon_threads = True

    server = DNSServer(SlowResolver(), "127.0.0.1", 0, logger=DNSLogger(log="error", prefix=False),
                       server=UDPServer)
    server.start_thread()
    return server


def serve(spec: Spec, processes: int) -> int:
    """The farm: fork the HTTP processes, start the DNS, print JSON, wait for EOF on stdin."""
    sockets, port = _listeners(spec)
    counters = _Counters(processes)
    children = []
    for process in range(processes):
        pid = os.fork()
        if pid == 0:  # an HTTP process: serves until killed
            signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
            try:
                asyncio.run(_serve_http(spec, sockets, counters, process))
            finally:
                os._exit(0)
        children.append(pid)
    for sock in sockets:
        sock.close()
    dns = _dns_server(spec)
    dns_port = dns.server.server_address[1]
    print(json.dumps({"port": port, "nameservers": f"127.0.0.1:{dns_port}",
                      "addresses": spec.all_addresses(), "pids": children}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin() -> None:
        while os.read(sys.stdin.fileno(), 4096):
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait()
    for pid in children:
        os.kill(pid, signal.SIGTERM)
    for pid in children:
        os.waitpid(pid, 0)
    dns.stop()
    print(json.dumps(counters.totals()), flush=True)
    return 0


# -- the farm, from the parent -------------------------------------------------


@dataclass
class FarmProc:
    spec: Spec
    processes: int
    proc: subprocess.Popen[str] | None = None
    port: int = 0
    nameservers: str = ""
    totals: dict[str, int] = field(default_factory=dict)

    def start(self) -> FarmProc:
        argv = [sys.executable, str(Path(__file__).resolve()), "--serve",
                "--farm-procs", str(self.processes), *self.spec.argv()]
        self.proc, info = start_farm(argv, "latency farm")
        self.port = int(info["port"])
        self.nameservers = info["nameservers"]
        if not all(address.startswith(LOOPBACK_PREFIX)
                   for address in [*info["addresses"], self.nameservers]):
            self.stop()
            raise BenchError(f"the farm is not on loopback: {info}")
        return self

    def cpu_seconds(self) -> float:
        """User + system CPU of the farm and its processes so far (/proc)."""
        assert self.proc is not None
        total = 0
        for pid in process_tree(self.proc.pid):
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                pass
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:  # communicate() closes stdin: the farm stops at EOF
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        for line in out.splitlines():
            if line.startswith("{") and "requests" in line:
                self.totals = json.loads(line)

    def urls(self, cases: int) -> list[str]:
        return [self.spec.url(case, self.port) for case in range(cases)]


# -- runs ----------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    concurrency: int
    per_host: int
    timeout: float

    def __str__(self) -> str:
        return f"{self.concurrency}/{self.per_host}, timeout {self.timeout:g} s"


@dataclass
class Run:
    tool: str
    cases: int
    limits: Limits
    seconds: float
    wall_seconds: float
    cpu_seconds: float
    farm_cpu_seconds: float
    max_rss_kib: int
    load: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.cases / self.seconds


def child_timeout(cases: int) -> float:
    return 120.0 + cases / MIN_RATE


def run_hostwatch(farm: FarmProc, cases: int, limits: Limits, workdir: Path, label: str,
                  profile: Path | None = None, extra_env: dict[str, str] | None = None,
                  db_url: str | None = None, argv_tail: tuple[str, ...] = ()) -> Run:
    from sqlalchemy import create_engine, distinct, func, select

    from store.models import Case, Check, CrawlRun

    if db_url is None:
        db_url = make_store(workdir / f"{label}.db", farm.urls(cases))
    (workdir / "tmp").mkdir(exist_ok=True)
    env = child_env(
        HOSTWATCH_NAMESERVERS=farm.nameservers, HOSTWATCH_OFFLINE="1",
        HOSTWATCH_ALLOW_PRIVATE="127.0.0.0/8", HOSTWATCH_RECHECK_HOURS="0",
        HOSTWATCH_PROGRESS="0", HOSTWATCH_LOG_LEVEL="WARNING", HOSTWATCH_DATA_DIR=str(workdir),
        HOSTWATCH_CONCURRENCY=str(limits.concurrency),
        HOSTWATCH_CONCURRENCY_PER_HOST=str(limits.per_host),
        HOSTWATCH_TIMEOUT=f"{limits.timeout:g}", TMPDIR=str(workdir / "tmp"),
        **(extra_env or {}))
    python = [sys.executable]
    if profile is not None:
        python += ["-m", "cProfile", "-o", str(profile)]
    farm_cpu = farm.cpu_seconds()
    before = load()
    result = run_child([*python, "-m", "hostwatch", "--db", db_url, "crawl", *argv_tail],
                       env, workdir, child_timeout(cases))
    farm_cpu = farm.cpu_seconds() - farm_cpu
    engine = create_engine(db_url)
    try:
        with engine.connect() as db:
            run = db.execute(select(CrawlRun.id, CrawlRun.started_at, CrawlRun.finished_at,
                                    CrawlRun.status, CrawlRun.checks_made, CrawlRun.counts)
                             .order_by(CrawlRun.id.desc()).limit(1)).one()
            checks, checked = db.execute(select(func.count(), func.count(distinct(Check.case_id)))
                                         .where(Check.run_id == run.id)).one()
            total = db.scalar(select(func.count()).select_from(Case))
            not_once = db.scalar(select(func.count()).select_from(Case)
                                 .where(Case.check_count != 1))
    finally:
        engine.dispose()
    if run.status != "finished" or not (total == cases == checks == checked == run.checks_made) \
            or not_once:
        raise BenchError(f"hostwatch {label}: run {run.status}, {cases} cases, {total} stored, "
                         f"{checks} checks of {checked} cases, {not_once} not checked once")
    seconds = (run.finished_at - run.started_at).total_seconds()
    return Run("hostwatch", cases, limits, seconds, result.wall_seconds, result.cpu_seconds,
               farm_cpu, result.max_rss_kib, before, dict(run.counts))


def run_aiohttp(farm: FarmProc, cases: int, limits: Limits, workdir: Path) -> Run:
    urls_file = workdir / "aiohttp-urls.txt"
    urls_file.write_text("\n".join(farm.urls(cases)) + "\n")
    argv = [sys.executable, str(Path(__file__).resolve()), "--child-aiohttp",
            "--urls-file", str(urls_file), "--nameservers", farm.nameservers,
            "--concurrency", str(limits.concurrency), "--per-host", str(limits.per_host),
            "--timeout", str(limits.timeout)]
    farm_cpu = farm.cpu_seconds()
    before = load()
    result = run_child(argv, child_env(), workdir, child_timeout(cases))
    farm_cpu = farm.cpu_seconds() - farm_cpu
    figures = result.json_line()
    if figures["done"] != cases:
        raise BenchError(f"aiohttp: {figures['done']} of {cases} URLs done")
    counts = {key: int(figures[key]) for key in ("ok", "other_status", "timeout", "error")}
    return Run("aiohttp", cases, limits, float(figures["seconds"]), result.wall_seconds,
               result.cpu_seconds, farm_cpu, result.max_rss_kib, before, counts)


def child_aiohttp(urls_file: Path, nameservers: str, limits: Limits) -> int:
    """The bare loop: shared limits, names through dnspython, bodies read fully."""
    import aiohttp
    import dns.asyncresolver
    import dns.exception
    import dns.nameserver
    import dns.resolver
    from aiohttp.abc import AbstractResolver, ResolveResult

    host, _, port = nameservers.partition(":")

    class DnsResolver(AbstractResolver):
        """A and AAAA through dnspython, kept for their TTL (as hostwatch does)."""

        def __init__(self) -> None:
            self.resolver = dns.asyncresolver.Resolver(configure=False)
            self.resolver.nameservers = [dns.nameserver.Do53Nameserver(host, int(port))]
            self.resolver.timeout, self.resolver.lifetime = 2.5, 5.0
            self.answers: dict[str, tuple[float, list[str]]] = {}

        async def resolve(self, name: str, port: int = 0,
                          family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
            cached = self.answers.get(name)
            if cached is None or cached[0] < time.monotonic():
                found: list[str] = []
                ttl = float(DNS_TTL)
                for rdtype in ("A", "AAAA"):
                    try:
                        answer = await self.resolver.resolve(name, rdtype, search=False)
                    except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                        continue
                    except dns.exception.DNSException as exc:
                        raise OSError(f"{name}: {type(exc).__name__}") from exc
                    found += [rr.to_text() for rr in answer.rrset or ()]
                    ttl = min(ttl, answer.rrset.ttl if answer.rrset else ttl)
                if not found:
                    raise OSError(f"{name}: no address")
                cached = self.answers[name] = (time.monotonic() + ttl, found)
            return [ResolveResult(hostname=name, host=ip, port=port, family=socket.AF_INET,
                                  proto=0, flags=socket.AI_NUMERICHOST)
                    for ip in cached[1] if ":" not in ip]

        async def close(self) -> None:
            return None

    urls = urls_file.read_text().split()
    counts = dict.fromkeys(("done", "ok", "other_status", "timeout", "error", "bytes"), 0)

    async def fetch_all() -> float:
        resolver = DnsResolver()
        connector = aiohttp.TCPConnector(limit=limits.concurrency,
                                         limit_per_host=limits.per_host,
                                         resolver=resolver, use_dns_cache=False)
        async with aiohttp.ClientSession(
                connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=limits.timeout)) as session:
            # No head-of-line blocking: each host has its own queue and
            # per-host workers, and a request then waits for one of the global
            # slots. A URL starts as soon as both limits allow: the best a
            # scheduler can do under these limits.
            queues: dict[str, collections.deque[str]] = {}
            for url in urls:
                queues.setdefault(url.split("/")[2].split(":")[0], collections.deque()).append(url)
            gate = asyncio.Semaphore(limits.concurrency)

            async def worker(name: str, queue: collections.deque[str]) -> None:
                while queue:
                    url = queue.popleft()
                    try:
                        # As hostwatch: the name is resolved first (its downloader
                        # middleware), then the request waits for a slot, and only
                        # the download itself runs against the time-out.
                        await resolver.resolve(name)
                        async with gate, session.get(url, allow_redirects=False) as response:
                            body = await response.read()
                        counts["ok" if response.status == 200 else "other_status"] += 1
                        counts["bytes"] += len(body)
                    except TimeoutError:
                        counts["timeout"] += 1
                    except (aiohttp.ClientError, OSError):
                        counts["error"] += 1
                    counts["done"] += 1

            started = time.monotonic()
            await asyncio.gather(*(worker(name, queue) for name, queue in queues.items()
                                   for _ in range(min(limits.per_host, len(queue)))))
            return time.monotonic() - started

    seconds = asyncio.run(fetch_all())
    print(json.dumps({**counts, "seconds": seconds}), flush=True)
    return 0


# -- measuring -----------------------------------------------------------------


def compare(farm: FarmProc, cases: int, limits: Limits, rounds: int, workdir: Path,
            profile: Path | None = None) -> tuple[list[Run], list[Run]]:
    """``rounds`` interleaved runs of each tool; a round's order alternates."""
    hws: list[Run] = []
    aios: list[Run] = []
    for number in range(1, rounds + 1):
        order = ("hostwatch", "aiohttp") if number % 2 else ("aiohttp", "hostwatch")
        for tool in order:
            with step(f"round {number}/{rounds}: {tool}, {cases} cases, {limits}"):
                if tool == "hostwatch":
                    hws.append(run_hostwatch(farm, cases, limits, workdir,
                                             f"hw-{limits.concurrency}-{limits.per_host}-"
                                             f"{limits.timeout:g}-{number}", profile))
                else:
                    aios.append(run_aiohttp(farm, cases, limits, workdir))
    return hws, aios


def median_rate(runs: list[Run]) -> float:
    return statistics.median(run.rate for run in runs)


def print_runs(runs: list[Run]) -> None:
    print(f"{'tool':<10} {'limits':<24} {'cases':>7} {'seconds':>8} {'checks/s':>9} "
          f"{'CPU s':>6} {'farm CPU s':>10} {'peak RSS':>9}  load before")
    for run in runs:
        print(f"{run.tool:<10} {str(run.limits):<24} {run.cases:>7} {run.seconds:>8.1f} "
              f"{run.rate:>9.1f} {run.cpu_seconds:>6.1f} {run.farm_cpu_seconds:>10.1f} "
              f"{mib(run.max_rss_kib):>9}  {run.load}")


def describe(spec: Spec, cases: int) -> dict[str, Any]:
    """What the farm holds for these cases: shares per behaviour, the top names."""
    kinds: dict[str, int] = {}
    per_host = [0] * spec.hosts
    delays = []
    cases = max(cases, 1)
    for case in range(cases):
        behaviour = spec.behaviour(case)
        kinds[behaviour.kind] = kinds.get(behaviour.kind, 0) + 1
        per_host[spec.host_of(case)] += 1
        delays.append(behaviour.delay)
    delays.sort()
    top = sorted(per_host, reverse=True)
    return {"kinds": kinds, "top_host_share": top[0] / cases,
            "top5_share": sum(top[:5]) / cases,
            "delay_median_ms": 1000 * delays[len(delays) // 2],
            "delay_p90_ms": 1000 * delays[int(len(delays) * 0.9)],
            "delay_mean_ms": 1000 * sum(delays) / len(delays),
            "slow_dns_names": sum(spec.dns_delay_of(host) > 0 for host in range(spec.hosts))}


def project(rate: float, cases: int, seconds: float) -> str:
    """1,000,000 cases at the measured rate: the same farm shape, ten (or more)
    times the cases per name, so the per-host limit and the hanging URLs cost
    the same per case; start-up and the feed are per case too."""
    hours = PROJECTED_CASES / rate / 3600
    return (f"{cases} cases in {seconds:.0f} s ({rate:.1f} checks/s): 1,000,000 cases "
            f"projected at {hours:.1f} h (1,000,000 / {rate:.1f} per s, same farm shape)")


# -- worker scaling hook -------------------------------------------------------


def workers_hook(farm: FarmProc, cases: int, limits: Limits, workers: list[int],
                 workdir: Path, results: dict[str, Any]) -> None:
    """``hostwatch crawl --workers N`` on a PostgreSQL store and queue, once it exists."""
    env = child_env(HOSTWATCH_NAMESERVERS="127.0.0.1:1", HOSTWATCH_OFFLINE="1")
    helptext = subprocess.run([sys.executable, "-m", "hostwatch", "crawl", "--help"],
                              capture_output=True, text=True, env=env, cwd=workdir,
                              timeout=120).stdout
    if "--workers" not in helptext:
        print("\n--workers: `hostwatch crawl --help` has no --workers option in this tree; "
              "worker scaling skipped.")
        results["workers"] = "skipped: no --workers option"
        return
    from sqlalchemy import create_engine, text

    from store import Store

    rows = []
    for count in workers:
        name = f"hostwatch_farm_{count}"
        admin = create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
        with admin.connect() as db:
            db.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            db.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        db_url = f"{PG_SERVER}/{name}"
        store = Store(db_url)
        store.upgrade()
        store.dispose()
        _fill_store(db_url, farm.urls(cases))
        with step(f"hostwatch crawl --workers {count}, {cases} cases, PostgreSQL"):
            run = run_hostwatch(farm, cases, limits, workdir, f"workers-{count}",
                                extra_env={"HOSTWATCH_QUEUE": db_url}, db_url=db_url,
                                argv_tail=("--workers", str(count)))
        rows.append(run)
    print("\nWorker scaling (PostgreSQL store and queue):")
    print_runs(rows)
    base = rows[0].rate if rows else 0.0
    for count, run in zip(workers, rows, strict=True):
        print(f"  {count} worker(s): {run.rate:.1f} checks/s, "
              f"{run.rate / base if base else 0:.2f}x the first")
    results["workers"] = [{**asdict(run), "rate": run.rate, "workers": count}
                          for count, run in zip(workers, rows, strict=True)]


def _fill_store(db_url: str, urls: list[str]) -> None:
    from sqlalchemy import create_engine, insert

    from store.models import Base

    now = datetime.now(UTC)
    rows = [{"source": "bench", "external_id": f"b{k}", "url": url, "url_normalised": url,
             "host": url.split("/")[2].split(":")[0], "category": "csam", "reported_at": now,
             "imported_at": now, "state": "unchecked", "ref_sha256": None,
             "reappearances": 0, "check_count": 0} for k, url in enumerate(urls)]
    engine = create_engine(db_url)
    with engine.begin() as db:
        for start in range(0, len(rows), 20_000):
            db.execute(insert(Base.metadata.tables["cases"]), rows[start:start + 20_000])
    engine.dispose()


# -- main ----------------------------------------------------------------------


def spec_of(args: argparse.Namespace) -> Spec:
    return Spec(seed=args.seed, hosts=args.hosts, addresses=args.addresses or args.hosts,
                skew=args.skew, median_ms=args.median_ms, sigma=args.sigma, hang=args.hang,
                trickle=args.trickle, trickle_seconds=args.trickle_seconds, size=args.size,
                dns_slow=args.dns_slow, dns_delay=args.dns_delay)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    farm = p.add_argument_group("the farm")
    farm.add_argument("--seed", type=int, default=1)
    farm.add_argument("--hosts", type=int, default=50, help="host names (default 50)")
    farm.add_argument("--addresses", type=int, default=0,
                      help="loopback addresses the names share (default: one per name)")
    farm.add_argument("--skew", type=float, default=1.0,
                      help="Zipf exponent of URLs over names (0 = even; default 1.0)")
    farm.add_argument("--median-ms", type=float, default=150.0,
                      help="median delay before an answer (default 150)")
    farm.add_argument("--sigma", type=float, default=1.0,
                      help="sigma of the lognormal delay (default 1.0)")
    farm.add_argument("--hang", type=float, default=0.02,
                      help="share of URLs that never answer (default 0.02)")
    farm.add_argument("--trickle", type=float, default=0.01,
                      help="share of URLs whose body trickles (default 0.01)")
    farm.add_argument("--trickle-seconds", type=_parse_pair, default=(2.0, 8.0),
                      help="LOW,HIGH seconds a trickling body takes (default 2,8)")
    farm.add_argument("--size", type=int, default=2048, help="body bytes (default 2048)")
    farm.add_argument("--dns-slow", type=float, default=0.2,
                      help="share of names whose DNS answer is late (default 0.2)")
    farm.add_argument("--dns-delay", type=_parse_pair, default=(0.2, 2.0),
                      help="LOW,HIGH seconds of a late DNS answer (default 0.2,2)")
    farm.add_argument("--farm-procs", type=int, default=2,
                      help="HTTP processes of the farm (default 2)")
    runs = p.add_argument_group("the runs")
    runs.add_argument("--cases", type=int, default=5000, help="cases per run (default 5000)")
    runs.add_argument("--concurrency", type=int, default=400, help="default 400")
    runs.add_argument("--per-host", type=int, default=8, help="default 8")
    runs.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    runs.add_argument("--repeat", type=int, default=1, help="interleaved rounds (default 1)")
    runs.add_argument("--curve", type=str, default="",
                      help="concurrencies for the curve, e.g. 64,128,256,400,800")
    runs.add_argument("--timeouts", type=str, default="",
                      help="time-outs for the curve (default: --timeout)")
    runs.add_argument("--per-hosts", type=str, default="",
                      help="per-host limits for the curve (default: --per-host)")
    runs.add_argument("--memory", action="store_true",
                      help="also peak RSS of hostwatch at N/10 and N cases")
    runs.add_argument("--workers", type=str, default="",
                      help="hook: hostwatch crawl --workers for each value, e.g. 1,2,4 "
                           "(PostgreSQL store and queue)")
    runs.add_argument("--hostwatch-only", action="store_true",
                      help="no aiohttp runs (e.g. the 100,000-case night)")
    runs.add_argument("--profile", type=Path, default=None,
                      help="cProfile the hostwatch crawl child into this file")
    runs.add_argument("--json", type=Path, default=None, help="also write the figures here")
    # Internal: the farm and the aiohttp loop re-run this file.
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child-aiohttp", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--urls-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--nameservers", type=str, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    spec = spec_of(args)
    limits = Limits(args.concurrency, args.per_host, args.timeout)
    if args.serve:
        return serve(spec, args.farm_procs)
    if args.child_aiohttp:
        return child_aiohttp(args.urls_file, args.nameservers, limits)

    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                               "machine": machine(), "revision": revision(),
                               "argv": sys.argv[1:], "spec": asdict(spec)}
    shape = describe(spec, args.cases)
    results["farm_shape"] = shape
    print(f"latency farm, {results['date']}; commit {results['revision']}; {machine()}; "
          f"{load()}")
    print(f"farm: {spec.hosts} names on {len(spec.all_addresses())} addresses, skew "
          f"{spec.skew} (top name {shape['top_host_share']:.0%} of the URLs, top 5 "
          f"{shape['top5_share']:.0%}); delay median {shape['delay_median_ms']:.0f} ms, mean "
          f"{shape['delay_mean_ms']:.0f}, p90 {shape['delay_p90_ms']:.0f}; {shape['kinds']}; "
          f"{shape['slow_dns_names']} names with late DNS ({_pair(spec.dns_delay)} s); "
          f"{args.farm_procs} farm processes")
    met = True
    farm = FarmProc(spec, args.farm_procs)
    try:
        with tempfile.TemporaryDirectory(prefix="hostwatch-farm-") as tmp:
            workdir = Path(tmp)
            with step("starting the farm"):
                farm.start()
            if args.hostwatch_only:
                with step(f"hostwatch alone, {args.cases} cases, {limits}"):
                    run = run_hostwatch(farm, args.cases, limits, workdir, "night",
                                        args.profile)
                print_runs([run])
                print(project(run.rate, run.cases, run.seconds))
                print(f"verdicts: {run.counts}")
                results["night"] = {**asdict(run), "rate": run.rate}
            elif args.curve:
                met = curve(farm, args, workdir, results)
            elif args.cases:
                hws, aios = compare(farm, args.cases, limits, args.repeat, workdir, args.profile)
                ratio = median_rate(hws) / median_rate(aios)
                print(f"\n{args.cases} cases, {limits}, {args.repeat} round(s):")
                print_runs([*hws, *aios])
                print(f"\nmedian checks/s: hostwatch {median_rate(hws):.1f}, bare aiohttp "
                      f"{median_rate(aios):.1f}; ratio {ratio:.2f} (target >= "
                      f"{TARGET_VS_AIOHTTP}) {'PASS' if ratio >= TARGET_VS_AIOHTTP else 'FAIL'}")
                print(f"hostwatch verdicts: {hws[-1].counts}; aiohttp: {aios[-1].counts}")
                print(project(median_rate(hws), args.cases,
                              statistics.median(run.seconds for run in hws)))
                results["compare"] = {"hostwatch": [asdict(r) | {"rate": r.rate} for r in hws],
                                      "aiohttp": [asdict(r) | {"rate": r.rate} for r in aios],
                                      "ratio": ratio}
                met = ratio >= TARGET_VS_AIOHTTP
            if args.memory:
                memory(farm, args.cases, limits, workdir, results)
            if args.workers:
                workers_hook(farm, args.cases, limits, [int(w) for w in args.workers.split(",")],
                             workdir, results)
    except BenchError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        farm.stop()
    print(f"\nthe farm answered: {farm.totals}")
    results["farm_totals"] = farm.totals
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0 if met else 1


def curve(farm: FarmProc, args: argparse.Namespace, workdir: Path,
          results: dict[str, Any]) -> bool:
    concurrencies = [int(c) for c in _parse_list(args.curve)]
    timeouts = _parse_list(args.timeouts) or [args.timeout]
    per_hosts = [int(p) for p in _parse_list(args.per_hosts)] or [args.per_host]
    rows = []
    for timeout in timeouts:
        for per_host in per_hosts:
            for concurrency in concurrencies:
                limits = Limits(concurrency, per_host, timeout)
                hws, aios = compare(farm, args.cases, limits, args.repeat, workdir)
                rows.append((limits, hws, aios))
                # As it comes, so that a failed later point loses nothing.
                print(f"point {limits}: hostwatch {median_rate(hws):.1f}/s, aiohttp "
                      f"{median_rate(aios):.1f}/s, verdicts {hws[-1].counts} / "
                      f"{aios[-1].counts}", flush=True)
    print(f"\nThroughput against concurrency, {args.cases} cases, {args.repeat} round(s) "
          f"(median checks/s):")
    print(f"{'concurrency':>11} {'per host':>8} {'timeout':>7} {'hostwatch':>9} "
          f"{'aiohttp':>8} {'ratio':>6} {'hw CPU s':>8} {'farm CPU s':>10}")
    for limits, hws, aios in rows:
        print(f"{limits.concurrency:>11} {limits.per_host:>8} {limits.timeout:>7g} "
              f"{median_rate(hws):>9.1f} {median_rate(aios):>8.1f} "
              f"{median_rate(hws) / median_rate(aios):>6.2f} "
              f"{statistics.median(r.cpu_seconds for r in hws):>8.1f} "
              f"{statistics.median(r.farm_cpu_seconds for r in hws):>10.1f}")
    print("\nevery run:")
    print_runs([run for _, hws, aios in rows for run in (*hws, *aios)])
    results["curve"] = [{"limits": asdict(limits),
                         "hostwatch": [asdict(r) | {"rate": r.rate} for r in hws],
                         "aiohttp": [asdict(r) | {"rate": r.rate} for r in aios],
                         "ratio": median_rate(hws) / median_rate(aios)}
                        for limits, hws, aios in rows]
    return all(row["ratio"] >= TARGET_VS_AIOHTTP for row in results["curve"])


def memory(farm: FarmProc, cases: int, limits: Limits, workdir: Path,
           results: dict[str, Any]) -> None:
    runs = []
    for count in (max(cases // 10, 1), cases):
        with step(f"hostwatch crawl of {count} cases (memory)"):
            runs.append(run_hostwatch(farm, count, limits, workdir, f"memory-{count}"))
    print("\nPeak RSS of `hostwatch crawl` (crawl + store writer, VmHWM):")
    print_runs(runs)
    small, large = runs
    print(f"{large.cases // small.cases}x the cases: {large.max_rss_kib / small.max_rss_kib:.2f}x "
          f"the peak RSS ({(large.max_rss_kib - small.max_rss_kib) / 1024:+.0f} MiB)")
    results["memory"] = [asdict(run) | {"rate": run.rate} for run in runs]


if __name__ == "__main__":
    sys.exit(main())

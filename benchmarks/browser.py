"""Browser checks per minute and peak memory, beside plain HTTP checks of the same pages.

    .venv/bin/python benchmarks/browser.py [--pages N] [--browser-pages K [K ...]]
                                           [--galleries G] [--skip-http] [--json FILE]
    .venv/bin/python benchmarks/browser.py --serve --pages N   # the gallery farm alone

Everything runs on loopback (127.0.0.0/8) and in child processes:

1. the farm: this file with ``--serve``, a local test internet (lab)
   with G JS galleries ``g{i}.jsbench.test`` holding N items between them
   (item k on gallery k mod G; 8 in 10 "present", 1 in 10 "removed", 1 in 10
   "changed"); it prints the nameserver and every page URL with its state and
   reference hash as one JSON line, and stops when its stdin closes. A fresh
   farm per run, so its request count belongs to that run;
2. a fresh SQLite store holding N cases (the page URLs, ``ref_sha256`` = the
   original media's hash), then ``python -m hostwatch --db ... crawl`` as a
   child: ``--browser`` (every case in Chromium, HOSTWATCH_BROWSER_PAGES = K,
   other browser settings at their defaults) or, for comparison, plain HTTP
   with a rule file that switches the shell fallback off, so no page goes to
   the browser;
3. the rate is the checks over the run's own started_at..finished_at
   (``crawl_runs``), per minute; the child's wall time is printed too, and
   its CPU time (wait4's, so with every descendant reaped below it);
4. memory: every POLL_SECONDS (100 ms) the RSS (/proc/PID/status) of the
   crawl child and all its descendants (store writer, Playwright's node
   driver, every Chromium process) is summed, and every PSS_EVERY-th poll
   (500 ms) their PSS (/proc/PID/smaps_rollup) too: smaps_rollup costs about
   1.5 ms per Chromium process, so reading it every 100 ms would take a
   quarter of a core from the run measured. The peaks of those sums are
   reported, and the peak PSS sum per quarter of the run (does it grow?);
5. checked: the run finished, every case has exactly one check, made by the
   expected method, with the expected verdict and reference match (browser:
   present -> online and a match, removed -> placeholder, changed -> changed
   and no match; HTTP: a shell is "online", nothing compared); no process
   of the run is alive LINGER_SECONDS after it exited (those alive after
   LINGER_CHECK are reported); the browser's temporary directory is empty.

Exit status: 0 every run checked out, 2 a run failed or timed out, or a
check was wrong (then the tables are printed with the problems).
``--json FILE`` also writes the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Run as a script, benchmarks/ comes first on sys.path, and its enrichment.py and
# reports.py would hide the packages of those names (even with REPO on PYTHONPATH).
sys.path[:] = [str(REPO), *(entry for entry in sys.path
                            if Path(entry).resolve() not in (REPO, REPO / "benchmarks"))]

from benchmarks.crawl_throughput import (  # noqa: E402
    BenchError,
    child_env,
    load,
    machine,
    process_tree,
    revision,
    start_farm,
)

POLL_SECONDS = 0.1
LINGER_CHECK = 0.5  # a process of the run alive this long after it exited "lingered"
LINGER_SECONDS = 30.0  # ... and this long, "leaked"
PSS_EVERY = 5
FARM_START_SECONDS = 120.0
LOOPBACK_PREFIX = "127."
REMOVED_EVERY, CHANGED_EVERY = (10, 3), (10, 7)  # item k is removed when k % 10 == 3
# (verdict, reference_match) per method and item state. A plain GET of a
# shell is "online" whatever the script would show: it cannot compare.
EXPECTED: dict[str, dict[str, tuple[str, bool | None]]] = {
    "browser": {"present": ("online", True), "removed": ("placeholder", None),
                "changed": ("changed", False)},
    "http": {"present": ("online", None), "removed": ("online", None),
             "changed": ("online", None)},
}
NO_FALLBACK_RULES = "[fallback]\nenabled = false\n"


# -- the farm ------------------------------------------------------------------


def item_state(k: int) -> str:
    if k % REMOVED_EVERY[0] == REMOVED_EVERY[1]:
        return "removed"
    if k % CHANGED_EVERY[0] == CHANGED_EVERY[1]:
        return "changed"
    return "present"


def serve(pages: int, galleries: int) -> int:
    """The farm (``--serve``): one JSON line on stdout, then serve until stdin closes."""
    from lab.gallery import add_js_gallery
    from lab.internet import TestInternet

    net = TestInternet(record_hits=False)
    hosts = [add_js_gallery(net, f"g{i}.jsbench.test", marker=f"HW-BENCH-G{i}".encode())
             for i in range(galleries)]
    for k in range(pages):
        hosts[k % galleries].item(f"p{k}", item_state(k))
    with net:  # the port, and so the URLs, once started
        items = [{"url": hosts[k % galleries].page_url(f"p{k}"), "state": item_state(k),
                  "sha256": hosts[k % galleries].media_sha256(f"p{k}")} for k in range(pages)]
        print(json.dumps({"nameservers": net.nameservers_env,
                          "ips": [gallery.host.ip for gallery in hosts], "items": items}),
              flush=True)
        try:
            while os.read(sys.stdin.fileno(), 65536):
                pass
        except KeyboardInterrupt:
            pass
        requests = net.hit_count
    print(json.dumps({"requests": requests}), flush=True)
    return 0


@dataclass
class Farm:
    """The farm as a child process (``--serve``); stops when its stdin closes."""

    pages: int
    galleries: int
    serve_argv: list[str] | None = None  # another farm (browser_mix.py); default this file's
    proc: subprocess.Popen[str] | None = None
    nameservers: str = ""
    items: list[dict[str, str]] = field(default_factory=list)
    requests: int | None = None
    summary: dict[str, Any] = field(default_factory=dict)  # the farm's last line

    def __enter__(self) -> Farm:
        argv = self.serve_argv or [sys.executable, str(Path(__file__).resolve()), "--serve",
                                   "--pages", str(self.pages), "--galleries",
                                   str(self.galleries)]
        self.proc, info = start_farm(argv, "gallery farm")
        self.nameservers, self.items = info["nameservers"], info["items"]
        addresses = [*info["ips"], *(ns.rpartition(":")[0] for ns in self.nameservers.split(","))]
        if not all(address.startswith(LOOPBACK_PREFIX) for address in addresses):
            self.__exit__()
            raise BenchError(f"the farm is not on loopback: {addresses}")
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:  # communicate() closes its stdin: the farm stops
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate(timeout=5)
        for line in out.splitlines():
            if line.startswith('{"requests"'):
                self.summary = json.loads(line)
                self.requests = int(self.summary["requests"])


# -- the store -----------------------------------------------------------------


def make_store(db_path: Path, items: list[dict[str, str]]) -> str:
    """A fresh SQLite store, case b{k} = item k's page with its reference hash."""
    from sqlalchemy import insert

    from store import Store
    from store.models import Base

    db_url = f"sqlite:///{db_path}"
    store = Store(db_url)
    store.upgrade()
    now = datetime.now(UTC)
    rows = [{"source": "bench", "external_id": f"b{k}", "url": item["url"],
             "url_normalised": item["url"], "host": item["url"].split("/")[2].split(":")[0],
             "category": "csam", "reported_at": now, "imported_at": now, "state": "unchecked",
             "ref_sha256": item["sha256"], "reappearances": 0, "check_count": 0}
            for k, item in enumerate(items)]
    with store.engine.begin() as connection:
        connection.execute(insert(Base.metadata.tables["cases"]), rows)
    store.dispose()
    return db_url


# -- the crawl child and its memory --------------------------------------------


@dataclass
class Sampled:
    """What polling /proc saw of a child and its descendants."""

    peak_rss_kib: int = 0
    peak_pss_kib: int = 0
    peak_hostwatch_pss_kib: int = 0  # the Python processes: crawl and store writer
    peak_browser_pss_kib: int = 0  # everything else: node driver, Chromium
    peak_processes: int = 0
    pss_readable: bool = True
    pss_samples: list[tuple[float, int]] = field(default_factory=list)  # (s, PSS sum) KiB
    polls: int = 0
    seen: dict[tuple[int, str], str] = field(default_factory=dict)  # (pid, start) -> name
    launches: int = 0  # Chromium processes started by Playwright's driver
    poll_cpu_seconds: float = 0.0  # this process's CPU time spent polling

    def quarter_peaks(self, wall: float) -> list[int]:
        """The peak PSS sum in each quarter of the child's life (KiB)."""
        peaks = [0, 0, 0, 0]
        for at, pss in self.pss_samples:
            quarter = min(int(4 * at / wall), 3) if wall else 0
            peaks[quarter] = max(peaks[quarter], pss)
        return peaks


def _proc_text(pid: int, name: str) -> str:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as file:
            return file.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _pss_kib(pid: int) -> int | None:
    """The PSS of ``pid`` (KiB); 0 once it has gone, None when /proc will not tell."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as file:
            text = file.read().decode("utf-8", "replace")
    except PermissionError:
        return None
    except OSError:
        return 0
    return _field_kib(text, "Pss:") or 0  # empty while it exits


def _field_kib(text: str, key: str) -> int | None:
    for line in text.splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return None


def _start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat: with the pid, names one process for good."""
    stat = _proc_text(pid, "stat")
    return stat.rpartition(")")[2].split()[19] if stat else ""


def sample(pid: int, sampled: Sampled, at: float) -> None:
    """Add one reading of ``pid``'s process tree to ``sampled`` (PSS every PSS_EVERY-th)."""
    started = time.process_time()
    with_pss = sampled.polls % PSS_EVERY == 0
    sampled.polls += 1
    rss = pss = hostwatch_pss = browser_pss = members = 0
    names: dict[int, str] = {}  # a parent comes before its children in the walk
    for member in process_tree(pid):
        status = _proc_text(member, "status")
        member_rss = _field_kib(status, "VmRSS:")
        if member_rss is None:
            continue  # gone, or a zombie
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        name = names[member] = fields.get("Name", "?").strip()
        parent = names.get(int(fields.get("PPid", "0").strip() or 0), "")
        member_pss = _pss_kib(member) if with_pss else 0
        if member_pss is None:
            sampled.pss_readable = False
            member_pss = 0
        key = (member, _start_time(member))
        if key not in sampled.seen:
            cmdline = _proc_text(member, "cmdline")
            kind = next((arg for arg in cmdline.split("\0") if arg.startswith("--type=")), "")
            sampled.seen[key] = f"{name}{kind.replace('--type=', ' ')}"
            # A browser, not one of its helpers: started by Playwright's driver.
            if "chrom" in name and parent.startswith("node"):
                sampled.launches += 1
        members += 1
        rss += member_rss
        pss += member_pss
        if name.startswith("python"):
            hostwatch_pss += member_pss
        else:
            browser_pss += member_pss
    sampled.peak_rss_kib = max(sampled.peak_rss_kib, rss)
    sampled.peak_processes = max(sampled.peak_processes, members)
    if with_pss:
        sampled.peak_pss_kib = max(sampled.peak_pss_kib, pss)
        sampled.peak_hostwatch_pss_kib = max(sampled.peak_hostwatch_pss_kib, hostwatch_pss)
        sampled.peak_browser_pss_kib = max(sampled.peak_browser_pss_kib, browser_pss)
        sampled.pss_samples.append((at, pss))
    sampled.poll_cpu_seconds += time.process_time() - started


@dataclass
class Outlived:
    """Processes of the run alive after the crawl child exited."""

    lingered: list[str]  # alive LINGER_CHECK seconds after it exited
    gone_after: float  # seconds after it exited when the last of them was gone
    leaked: list[str]  # still alive LINGER_SECONDS after; then killed


def outlived(sampled: Sampled) -> Outlived:
    """Watch the run's processes (same pid, same start time) until they are gone."""
    exited = time.monotonic()

    def alive() -> list[tuple[int, str]]:
        return [(pid, f"{pid} {name}") for (pid, start), name in sampled.seen.items()
                if start and _start_time(pid) == start]

    time.sleep(LINGER_CHECK)
    lingered = alive()
    left = lingered
    while left and time.monotonic() - exited < LINGER_SECONDS:
        time.sleep(0.25)
        left = alive()
    gone_after = time.monotonic() - exited if lingered else 0.0
    for pid, _ in left:  # ours: the crawl started them
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return Outlived([name for _, name in lingered], gone_after, [name for _, name in left])


def run_crawl(argv: list[str], env: dict[str, str], cwd: Path,
              timeout: float) -> tuple[float, float, Sampled, str, Outlived]:
    """Run the crawl child, polling its tree; (wall s, CPU s, samples, output, outlived).

    The CPU time is wait4's: the child's and that of every descendant reaped
    below it (the driver reaps Chromium, Chromium its renderers), so the
    whole tree's but for processes orphaned before they exited.
    """
    sampled = Sampled()
    with tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                env=env, cwd=cwd)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            sample(proc.pid, sampled, time.monotonic() - started)
            if time.monotonic() - started > timeout:
                # Playwright starts Chromium in a process group of its own.
                for member in process_tree(proc.pid):
                    with contextlib.suppress(OSError):
                        os.kill(member, signal.SIGKILL)
                os.wait4(proc.pid, 0)
                err.seek(0)
                raise BenchError(f"the crawl did not finish in {timeout:.0f} s; killed. "
                                 f"Output:\n{_tail(err.read())}")
            time.sleep(POLL_SECONDS)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        output = err.read()
    left = outlived(sampled)
    if proc.returncode != 0:
        raise BenchError(f"the crawl exited with {proc.returncode}. Output:\n{_tail(output)}")
    return wall, usage.ru_utime + usage.ru_stime, sampled, output, left


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


# -- one run -------------------------------------------------------------------


@dataclass
class Run:
    label: str
    method: str
    browser_pages: int | None
    checks: int
    run_seconds: float
    wall_seconds: float
    cpu_seconds: float  # the whole tree's, start-up included
    peak_rss_kib: int
    peak_pss_kib: int
    peak_hostwatch_pss_kib: int
    peak_browser_pss_kib: int
    pss_quarters_kib: list[int]
    peak_processes: int
    launches: int
    requests: int | None
    verdicts: dict[str, int]
    problems: list[str]
    log_lines: list[str]
    outlived: Outlived
    leftover_files: list[str]
    poll_share: float  # of one core, taken by the polling

    @property
    def per_minute(self) -> float:
        return 60 * self.checks / self.run_seconds if self.run_seconds else 0.0


def run_one(method: str, browser_pages: int | None, pages: int, galleries: int,
            workdir: Path, timeout: float) -> Run:
    """One crawl of all pages (see the module docstring), checked and measured."""
    label = "HTTP (no browser)" if method == "http" else f"browser, {browser_pages} pages"
    with Farm(pages, galleries) as farm:
        db_path = workdir / f"{method}-{browser_pages}.db"
        db_url = make_store(db_path, farm.items)
        # Short: Chromium's socket path under it must fit in 107 bytes.
        browser_temp = Path(tempfile.mkdtemp(prefix="hwbb-", dir="/tmp"))
        rules = workdir / "no-fallback.toml"
        rules.write_text(NO_FALLBACK_RULES)
        (workdir / "tmp").mkdir(exist_ok=True)
        env = child_env(HOSTWATCH_NAMESERVERS=farm.nameservers,
                        HOSTWATCH_ALLOW_PRIVATE="127.0.0.0/8", HOSTWATCH_RECHECK_HOURS="0",
                        HOSTWATCH_PROGRESS="0", HOSTWATCH_LOG_LEVEL="WARNING",
                        HOSTWATCH_DATA_DIR=str(workdir), HOSTWATCH_BROWSER_TEMP=str(browser_temp),
                        TMPDIR=str(workdir / "tmp"))
        argv = [sys.executable, "-m", "hostwatch", "--db", db_url, "crawl"]
        if method == "browser":
            env["HOSTWATCH_BROWSER_PAGES"] = str(browser_pages)
            argv.append("--browser")
        else:
            env["HOSTWATCH_BROWSER_RULES"] = str(rules)
        try:
            wall, cpu, sampled, output, left = run_crawl(argv, env, workdir, timeout)
            left_files = sorted(str(path) for path in browser_temp.rglob("*"))
        finally:
            shutil.rmtree(browser_temp, ignore_errors=True)
        items = farm.items
    run_seconds, checks, verdicts, problems = verify(db_url, items, method)
    if left.leaked:
        problems.append(f"{len(left.leaked)} processes still alive {LINGER_SECONDS:.0f} s after "
                        f"the crawl exited (killed): {', '.join(left.leaked[:10])}")
    if left_files:
        problems.append(f"{len(left_files)} entries left in the browser's temp dir")
    logs = [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line]
    return Run(label, method, browser_pages, checks, run_seconds, wall, cpu,
               sampled.peak_rss_kib,
               sampled.peak_pss_kib if sampled.pss_readable else 0,
               sampled.peak_hostwatch_pss_kib, sampled.peak_browser_pss_kib,
               sampled.quarter_peaks(wall), sampled.peak_processes, sampled.launches,
               farm.requests, verdicts, problems, logs, left, left_files,
               sampled.poll_cpu_seconds / wall)


def verify(db_url: str, items: list[dict[str, str]],
           method: str) -> tuple[float, int, dict[str, int], list[str]]:
    """(run seconds, checks, "state -> verdict" counts, problems) from the store."""
    from sqlalchemy import create_engine, func, select

    from store.models import Case, Check, CrawlRun

    engine = create_engine(db_url)
    try:
        with engine.connect() as db:
            run = db.execute(select(CrawlRun).order_by(CrawlRun.id.desc()).limit(1)).one()
            rows = db.execute(select(Case.external_id, Check.method, Check.verdict,
                                     Check.reference_match, Check.reason)
                              .join(Check, Check.case_id == Case.id)).all()
            cases = db.scalar(select(func.count()).select_from(Case))
    finally:
        engine.dispose()
    problems = []
    if run.status != "finished" or run.finished_at is None:
        problems.append(f"run status {run.status}")
    per_case = Counter(row.external_id for row in rows)
    twice = sum(1 for count in per_case.values() if count != 1)
    if cases != len(items) or len(per_case) != len(items) or twice or run.checks_made != len(rows):
        problems.append(f"{len(items)} cases asked, {cases} stored, {len(rows)} checks for "
                        f"{len(per_case)} cases, {twice} cases without exactly one, run says "
                        f"{run.checks_made}")
    verdicts: Counter[str] = Counter()
    wrong: list[str] = []
    for row in rows:
        state = items[int(row.external_id[1:])]["state"]
        verdicts[f"{state} -> {row.verdict}"] += 1
        if row.method != method or (row.verdict, row.reference_match) != EXPECTED[method][state]:
            wrong.append(f"{row.external_id} ({state}): {row.method} {row.verdict} "
                         f"match={row.reference_match}: {row.reason}")
    if wrong:
        problems.append(f"{len(wrong)} checks not as expected, e.g. " + "; ".join(wrong[:5]))
    finished = run.finished_at or run.started_at
    return (finished - run.started_at).total_seconds(), len(rows), dict(verdicts), problems


# -- report --------------------------------------------------------------------


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f}" if kib else "-"


def report(runs: list[Run], pages: int, galleries: int) -> None:
    print(f"\n{pages} pages on {galleries} JS galleries (80 % present, 10 % removed, "
          "10 % changed)\n")
    print(f"{'run':<20} {'checks':>6} {'run s':>7} {'wall s':>7} {'checks/min':>10} "
          f"{'CPU s':>7} {'CPU s/check':>11} {'req/check':>9} {'launches':>8}")
    for run in runs:
        per_check = f"{run.requests / run.checks:.1f}" if run.requests and run.checks else "-"
        cpu_each = run.cpu_seconds / run.checks if run.checks else 0.0
        print(f"{run.label:<20} {run.checks:>6} {run.run_seconds:>7.1f} {run.wall_seconds:>7.1f} "
              f"{run.per_minute:>10.0f} {run.cpu_seconds:>7.1f} {cpu_each:>11.3f} "
              f"{per_check:>9} {run.launches:>8}")
    print("(run s: crawl_runs started_at..finished_at; wall s: the whole child. CPU s: user + "
          "system of the child and\n the descendants reaped below it, start-up included. "
          "req/check: requests the farm served. launches: Chromium started)")
    print(f"\nMemory (MiB): sums over the crawl child and all its descendants; RSS polled every "
          f"{POLL_SECONDS * 1000:.0f} ms, PSS every {POLL_SECONDS * PSS_EVERY * 1000:.0f} ms")
    print(f"{'run':<20} {'peak RSS':>9} {'peak PSS':>9} {'hw PSS':>7} {'browser PSS':>11} "
          f"{'procs':>5}   peak PSS per quarter of the run")
    for run in runs:
        quarters = " / ".join(mib(kib) for kib in run.pss_quarters_kib)
        print(f"{run.label:<20} {mib(run.peak_rss_kib):>9} {mib(run.peak_pss_kib):>9} "
              f"{mib(run.peak_hostwatch_pss_kib):>7} {mib(run.peak_browser_pss_kib):>11} "
              f"{run.peak_processes:>5}   {quarters}")
    print("(hw PSS: the Python processes, crawl and store writer; browser PSS: Playwright's "
          "driver and Chromium;\n each column's own peak. procs: most processes at once)")
    print("\nVerdicts (item state -> verdict):")
    for run in runs:
        verdicts = ", ".join(f"{key} {count}" for key, count in sorted(run.verdicts.items()))
        print(f"{run.label:<20} {verdicts}")
    for run in runs:
        print(f"\n{run.label}: polling /proc took {100 * run.poll_share:.0f} % of a core; "
              f"{len(run.log_lines)} warning/error lines in the crawl's output")
        # Distinct messages, the timestamp left off.
        messages = Counter(line[20:] if line[:2] == "20" else line for line in run.log_lines)
        for message, count in messages.most_common(10):
            print(f"    {count} x {message[:180]}")
        if run.outlived.lingered:
            print(f"    {len(run.outlived.lingered)} of its processes were still alive "
                  f"{LINGER_CHECK} s after it exited, the last gone after "
                  f"{run.outlived.gone_after:.1f} s: {', '.join(run.outlived.lingered[:8])}")
        for problem in run.problems:
            print(f"    PROBLEM: {problem}")
    if all(not run.problems for run in runs):
        print("\nEvery case had exactly one check, by the expected method, with the expected "
              f"verdict; no process was left {LINGER_SECONDS:.0f} s after a run; no file was "
              "left in the browser's temp dir.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=1000, help="pages (cases) (default 1000)")
    parser.add_argument("--browser-pages", type=int, nargs="+", default=[2], metavar="K",
                        help="HOSTWATCH_BROWSER_PAGES of the browser runs, one run each "
                             "(default 2)")
    parser.add_argument("--galleries", type=int, default=4,
                        help="gallery hosts the pages are spread over (default 4)")
    parser.add_argument("--skip-http", action="store_true", help="no plain HTTP run")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds a crawl may take before it is killed "
                             "(default 300 + 3 per page)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--serve", action="store_true",
                        help="only run the gallery farm (what the runs start as a child)")
    args = parser.parse_args(argv)
    if args.pages < 1 or args.galleries < 1 or min(args.browser_pages) < 1:
        parser.error("--pages, --galleries and --browser-pages must be >= 1")
    if args.serve:
        return serve(args.pages, args.galleries)

    timeout = args.timeout or 300 + 3 * args.pages
    date = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"hostwatch browser checks, {date}; commit {revision()}; {machine()}", flush=True)
    plan = [("browser", k) for k in args.browser_pages]
    if not args.skip_http:
        plan.insert(0, ("http", None))
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="hw-bench-browser-") as temp:
        for method, pages in plan:
            what = "plain HTTP" if method == "http" else f"--browser, {pages} pages at once"
            print(f"... {args.pages} checks, {what} ({load()})", file=sys.stderr, flush=True)
            try:
                runs.append(run_one(method, pages, args.pages, args.galleries, Path(temp),
                                    timeout))
            except BenchError as exc:
                print(f"FAILED: {exc}", file=sys.stderr)
                return 2
            print(f"    {runs[-1].per_minute:.0f} checks/min ({load()})", file=sys.stderr,
                  flush=True)
    report(runs, args.pages, args.galleries)
    if args.json is not None:
        args.json.write_text(json.dumps({"date": date, "machine": machine(),
                                         "revision": revision(), "pages": args.pages,
                                         "galleries": args.galleries,
                                         "runs": [{**asdict(run), "per_minute": run.per_minute}
                                                  for run in runs]}, indent=2))
    return 2 if any(run.problems for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())

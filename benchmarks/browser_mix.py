"""Browser checks per minute on a mix of fast, slow and hanging pages; old code against new.

    .venv/bin/python benchmarks/browser_mix.py [--pages N] [--browser-pages K]
                                               [--browser-timeout S] [--env KEY=VALUE ...]
                                               [--tree PATH ...] [--repeat R] [--json FILE]
    .venv/bin/python benchmarks/browser_mix.py --serve --pages N   # the farm alone

For issue #11 point 8: what do the browser's waiting rules cost in pages per
minute? ``benchmarks/browser.py`` measures fast JS galleries only; this
measures a fixed mix, the same for every run, so that two source trees (today's
code and the new one) can be measured back to back by the same script.

The mix, per 20 pages (so per 100: 70 fast, 20 slow, 10 hanging), page k
being position k % 20 of the pattern MIX below:

    fast   14  the JS gallery of lab.gallery as it is: 10 "present",
               2 "removed", 2 "changed"
    slow    4  the same gallery pages on hosts that answer late: the script
               /static/gallery.js after SLOW_SCRIPT_DELAY (0.4 s), the item's
               JSON after 0.3, 0.7, 1.1 or 1.5 s (SLOW_API_DELAYS, rotating
               over the pages). 2 "present", 1 "removed", 1 "changed"
    hang    2  ItemState "hang": headers and half the page, then nothing (the
               server holds it for max(60, 2 x timeout + 30) s); the browser
               check runs into HOSTWATCH_BROWSER_TIMEOUT

The JSON is late counting from about the page's load event, so the slowest
(1.5 s) stays within today's default HOSTWATCH_BROWSER_SETTLE of 2 s: both old
and new code should read every slow page right, and a wrong verdict on one is
a finding, not noise. Fast and hanging pages are on ``--galleries`` hosts
f{i}.mixbench.test (default 4), slow ones on ``--slow-galleries`` hosts
s{i}.mixbench.test (default 2). Media files are not delayed.

Each run (one per tree, per round):

1. a fresh farm (this file with ``--serve``, a child; loopback only) that
   prints its nameserver and the pages as one JSON line, notes when each
   page was first asked for, and prints that and its request count when its
   stdin closes;
2. a fresh SQLite store made by the measured tree's own code (a child with
   PYTHONPATH=tree: its migrations), one case per page with the original
   media's SHA-256 as reference;
3. ``python -m hostwatch --db ... crawl --browser`` as a child with
   PYTHONPATH=tree, HOSTWATCH_BROWSER_PAGES = K (default 2),
   HOSTWATCH_BROWSER_TIMEOUT = ``--browser-timeout`` (default 10 s: each hanging
   page costs it whole), every ``--env`` HOSTWATCH_BROWSER_*=value (given to
   every tree: a setting a tree does not know is ignored by it), other
   settings at their defaults; HOSTWATCH_OFFLINE=1;
4. measured: pages per minute over the run's started_at..finished_at
   (``crawl_runs``), the child's wall time, the CPU time of the child and
   everything reaped below it (Chromium included) per page, peak PSS sum
   (polled as browser.py does), Chromium launches, the load average before
   and after, and per kind of page the seconds from the farm's first request
   for the page to the check's ``checked_at`` (median and 90th percentile:
   does an already stable page wait the whole settle time?);
5. checked: the run finished; every case has exactly one browser check;
   present -> online and a match, removed -> placeholder, changed -> changed
   and no match, hang -> timeout or incomplete (no match either way; which
   one is counted); no process of the run outlived it by 30 s; the browser's
   temp dir was left empty.

Trees: without ``--tree`` the tree this file is in is measured. Each
``--tree PATH`` (a git worktree, e.g. of an older commit) is measured with
this file's farm and checks; its commit is printed. With two or more, the
rounds alternate the order (A B, then B A, ...) and the median pages/min of
every tree is compared with the first's (target for #11: the last tree, the
new code, at least TARGET_RATIO = 0.75 of the first, today's code), and so
is the mean seconds per page of each kind: the hanging pages cost the same
timeout in every tree and dilute the rate's ratio; the per-kind one shows
what changed on the pages that finish:

    git worktree add /work/wt-old 79cac20       # today's browser code, detached
    .venv/bin/python benchmarks/browser_mix.py --tree /work/wt-old --tree . --repeat 3

Exit status: 0 every run checked out (and the target was met when compared),
1 the target was missed, 2 a run failed or a check was not as expected.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parent.parent
# Run as a script, benchmarks/ comes first on sys.path, and its enrichment.py and
# reports.py would hide the packages of those names (even with REPO on PYTHONPATH).
sys.path[:] = [str(REPO), *(entry for entry in sys.path
                            if Path(entry).resolve() not in (REPO, REPO / "benchmarks"))]

from benchmarks.browser import LINGER_SECONDS, Farm, mib, run_crawl  # noqa: E402
from benchmarks.crawl_throughput import (  # noqa: E402
    BenchError,
    child_env,
    load,
    machine,
    revision,
)

if TYPE_CHECKING:
    from lab.behaviours import Context, Reply, Request
    from lab.hosts import Host

# Per 20 pages: (kind, item state) of page k at k % 20. Hanging pages apart.
MIX: tuple[tuple[str, str], ...] = (
    ("fast", "present"), ("fast", "present"), ("slow", "present"), ("fast", "removed"),
    ("fast", "present"), ("fast", "present"), ("fast", "changed"), ("slow", "removed"),
    ("fast", "present"), ("hang", "hang"),
    ("fast", "present"), ("fast", "present"), ("slow", "present"), ("fast", "removed"),
    ("fast", "present"), ("fast", "changed"), ("fast", "present"), ("slow", "changed"),
    ("fast", "present"), ("hang", "hang"),
)
KINDS = ("fast", "slow", "hang")
SLOW_SCRIPT_DELAY = 0.4  # seconds before a slow host sends /static/gallery.js
SLOW_API_DELAYS = (0.3, 0.7, 1.1, 1.5)  # seconds before a slow page's JSON, rotating
MIN_HANG_SECONDS = 60.0
TARGET_RATIO = 0.75  # new pages/min at least this share of today's (#11: cost <= 25 %)
# (verdict, reference_match) accepted per item state.
EXPECTED: dict[str, frozenset[tuple[str, bool | None]]] = {
    "present": frozenset({("online", True)}),
    "removed": frozenset({("placeholder", None)}),
    "changed": frozenset({("changed", False)}),
    "hang": frozenset({("timeout", None), ("incomplete", None)}),
}
BROWSER_ENV_PREFIX = "HOSTWATCH_BROWSER_"
SET_HERE = frozenset({"HOSTWATCH_BROWSER_PAGES", "HOSTWATCH_BROWSER_TEMP"})


# -- the farm ------------------------------------------------------------------


def mix_page(k: int) -> tuple[str, str, float]:
    """(kind, item state, seconds the item's JSON is late) of page k."""
    kind, state = MIX[k % len(MIX)]
    if kind != "slow":
        return kind, state, 0.0
    slow_index = sum(1 for other, _ in MIX[: k % len(MIX)] if other == "slow")
    return kind, state, SLOW_API_DELAYS[(slow_index + k // len(MIX)) % len(SLOW_API_DELAYS)]


def _wrap_route(host: Host, path: str, wrap: Any) -> None:
    """Answer ``path`` with ``wrap(behaviour)`` for each round's behaviour.

    Reads the host's routes (private to lab), so that the gallery's own
    pages are served unchanged, only later or noted: no copy of the gallery.
    """
    host.route(path, [wrap(behaviour) for behaviour in host._routes[path]])


def serve(pages: int, galleries: int, slow_galleries: int, hang_seconds: float) -> int:
    """The farm (``--serve``): one JSON line on stdout, then serve until stdin closes."""
    from lab.behaviours import Behaviour, Slow
    from lab.gallery import add_js_gallery
    from lab.internet import TestInternet

    first_asked: dict[int, float] = {}  # page k -> when its page was first requested
    lock = threading.Lock()

    class Noted(Behaviour):
        """Note when page k is first asked for, then answer as ``inner``."""

        def __init__(self, inner: Behaviour, k: int) -> None:
            self.inner, self.k = inner, k

        def reply(self, request: Request, context: Context) -> Reply:
            with lock:
                first_asked.setdefault(self.k, time.time())
            return self.inner.reply(request, context)

    net = TestInternet(record_hits=False)
    fast = [add_js_gallery(net, f"f{i}.mixbench.test", marker=f"HW-MIX-F{i}".encode(),
                           hang_seconds=hang_seconds) for i in range(galleries)]
    slow = [add_js_gallery(net, f"s{i}.mixbench.test", marker=f"HW-MIX-S{i}".encode())
            for i in range(slow_galleries)]
    for gallery in slow:
        _wrap_route(gallery.host, "/static/gallery.js",
                    lambda behaviour: Slow(SLOW_SCRIPT_DELAY, behaviour))
    placed = []
    counts = {"fast": 0, "slow": 0}
    for k in range(pages):
        kind, state, delay = mix_page(k)
        group = "slow" if kind == "slow" else "fast"
        hosts = slow if kind == "slow" else fast
        gallery = hosts[counts[group] % len(hosts)]
        counts[group] += 1
        item = f"p{k}"
        gallery.item(item, state)
        _wrap_route(gallery.host, f"/g/{item}", lambda behaviour, k=k: Noted(behaviour, k))
        if delay:
            _wrap_route(gallery.host, f"/api/item/{item}",
                        lambda behaviour, delay=delay: Slow(delay, behaviour))
        placed.append((gallery, item, kind, state, delay))
    with net:  # the port, and so the URLs, once started
        items = [{"url": gallery.page_url(item), "kind": kind, "state": state,
                  "api_delay": delay, "sha256": gallery.media_sha256(item)}
                 for gallery, item, kind, state, delay in placed]
        print(json.dumps({"nameservers": net.nameservers_env,
                          "ips": [gallery.host.ip for gallery in fast + slow], "items": items}),
              flush=True)
        try:
            while os.read(sys.stdin.fileno(), 65536):
                pass
        except KeyboardInterrupt:
            pass
        requests = net.hit_count
    with lock:
        asked = {str(k): at for k, at in first_asked.items()}
    print(json.dumps({"requests": requests, "first_asked": asked}), flush=True)
    return 0


# -- the store, made and read with the measured tree's schema ------------------

# Run with PYTHONPATH=tree: the tree's own migrations make the schema (an
# older tree cannot open a store a newer one made). Prints where it imported
# from, so a run cannot measure the wrong tree unnoticed.
MAKE_STORE = """
import json, sys
from datetime import UTC, datetime
from sqlalchemy import insert
import crawler, store
from store import Store
from store.models import Base

db_url = sys.argv[1]
items = json.load(sys.stdin)
st = Store(db_url)
st.upgrade()
now = datetime.now(UTC)
rows = [{"source": "bench", "external_id": f"b{k}", "url": item["url"],
         "url_normalised": item["url"], "host": item["url"].split("/")[2].split(":")[0],
         "category": "csam", "reported_at": now, "imported_at": now, "state": "unchecked",
         "ref_sha256": item["sha256"], "reappearances": 0, "check_count": 0}
        for k, item in enumerate(items)]
with st.engine.begin() as connection:
    connection.execute(insert(Base.metadata.tables["cases"]), rows)
st.dispose()
print(json.dumps({"crawler": crawler.__file__, "store": store.__file__}))
"""


def make_store(tree: Path, db_path: Path, items: list[dict[str, Any]], env: dict[str, str],
               workdir: Path) -> str:
    """A fresh SQLite store made by ``tree``'s code, case b{k} = page k."""
    db_url = f"sqlite:///{db_path}"
    done = subprocess.run([sys.executable, "-c", MAKE_STORE, db_url], input=json.dumps(items),
                          capture_output=True, text=True, env=env, cwd=workdir, timeout=300)
    if done.returncode != 0:
        raise BenchError(f"making the store with {tree} failed:\n{done.stderr[-2000:]}")
    where = json.loads(done.stdout.strip().splitlines()[-1])
    for package, path in where.items():
        if not Path(path).resolve().is_relative_to(tree):
            raise BenchError(f"{package} came from {path}, not from {tree}")
    return db_url


def _utc_seconds(text: str) -> float:
    """A naive-UTC timestamp as SQLite holds it, as seconds since the epoch."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@dataclass
class Checked:
    run_seconds: float
    checks: int
    verdicts: dict[str, int]  # "kind state -> verdict": count
    page_seconds: dict[str, list[float]]  # kind -> first request to checked_at, per page
    problems: list[str]


def verify(db_path: Path, items: list[dict[str, Any]], first_asked: dict[str, float]) -> Checked:
    """The run's figures and problems, read with plain SQL (any tree's schema)."""
    with sqlite3.connect(db_path) as db:
        run = db.execute("SELECT status, started_at, finished_at, checks_made FROM crawl_runs "
                         "ORDER BY id DESC LIMIT 1").fetchone()
        rows = db.execute("SELECT cases.external_id, checks.method, checks.verdict, "
                          "checks.reference_match, checks.reason, checks.checked_at "
                          "FROM checks JOIN cases ON cases.id = checks.case_id").fetchall()
        cases = db.execute("SELECT count(*) FROM cases").fetchone()[0]
    if run is None:
        return Checked(0.0, 0, {}, {}, ["no crawl run in the store"])
    status, started_at, finished_at, checks_made = run
    problems = []
    if status != "finished" or finished_at is None:
        problems.append(f"run status {status}")
    per_case = Counter(row[0] for row in rows)
    twice = sum(1 for count in per_case.values() if count != 1)
    if cases != len(items) or len(per_case) != len(items) or twice or checks_made != len(rows):
        problems.append(f"{len(items)} cases asked, {cases} stored, {len(rows)} checks for "
                        f"{len(per_case)} cases, {twice} cases without exactly one, run says "
                        f"{checks_made}")
    verdicts: Counter[str] = Counter()
    page_seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    wrong: list[str] = []
    for external_id, method, verdict, match, reason, checked_at in rows:
        k = int(external_id[1:])
        item = items[k]
        reference_match = None if match is None else bool(match)
        verdicts[f"{item['kind']} {item['state']} -> {verdict}"] += 1
        if method != "browser" or (verdict, reference_match) not in EXPECTED[item["state"]]:
            wrong.append(f"{external_id} ({item['kind']} {item['state']}): {method} {verdict} "
                         f"match={reference_match}: {reason}")
        if str(k) in first_asked:
            page_seconds[item["kind"]].append(_utc_seconds(checked_at) - first_asked[str(k)])
    if wrong:
        problems.append(f"{len(wrong)} checks not as expected, e.g. " + "; ".join(wrong[:5]))
    asked = sum(len(seconds) for seconds in page_seconds.values())
    if asked != len(rows):
        problems.append(f"the farm saw {asked} of the {len(rows)} checked pages asked for")
    run_seconds = _utc_seconds(finished_at or started_at) - _utc_seconds(started_at)
    return Checked(run_seconds, len(rows), dict(verdicts), page_seconds, problems)


# -- one run -------------------------------------------------------------------


@dataclass
class Run:
    label: str  # the tree's name
    tree: str
    commit: str
    round: int
    checks: int
    run_seconds: float
    wall_seconds: float
    cpu_seconds: float  # the whole tree's, start-up included
    peak_pss_kib: int
    launches: int
    requests: int | None
    verdicts: dict[str, int]
    page_seconds: dict[str, list[float]]
    problems: list[str]
    log_lines: list[str]
    load_before: str
    load_after: str

    @property
    def per_minute(self) -> float:
        return 60 * self.checks / self.run_seconds if self.run_seconds else 0.0


@dataclass
class Settings:
    pages: int
    galleries: int
    slow_galleries: int
    browser_pages: int
    browser_timeout: float
    env: dict[str, str] = field(default_factory=dict)  # the --env settings

    @property
    def hang_seconds(self) -> float:
        return max(MIN_HANG_SECONDS, 2 * self.browser_timeout + 30)

    @property
    def crawl_timeout(self) -> float:
        return 300 + self.pages * (3 + self.browser_timeout / 5)


def run_one(tree: Path, label: str, commit: str, round_: int, settings: Settings,
            workdir: Path) -> Run:
    """One crawl of the mix by ``tree``'s code (see the module docstring), checked."""
    serve_argv = [sys.executable, str(Path(__file__).resolve()), "--serve",
                  "--pages", str(settings.pages), "--galleries", str(settings.galleries),
                  "--slow-galleries", str(settings.slow_galleries),
                  "--hang-seconds", str(settings.hang_seconds)]
    before = load()
    with Farm(settings.pages, settings.galleries, serve_argv=serve_argv) as farm:
        items: list[dict[str, Any]] = list(farm.items)
        rundir = Path(tempfile.mkdtemp(prefix=f"{label}-{round_}-", dir=workdir))
        (rundir / "tmp").mkdir()
        # Short: Chromium's socket path under it must fit in 107 bytes.
        browser_temp = Path(tempfile.mkdtemp(prefix="hwbm-", dir="/tmp"))
        env = child_env(HOSTWATCH_NAMESERVERS=farm.nameservers,
                        HOSTWATCH_ALLOW_PRIVATE="127.0.0.0/8", HOSTWATCH_RECHECK_HOURS="0",
                        HOSTWATCH_OFFLINE="1", HOSTWATCH_PROGRESS="0",
                        HOSTWATCH_LOG_LEVEL="WARNING", HOSTWATCH_DATA_DIR=str(rundir),
                        HOSTWATCH_BROWSER_TEMP=str(browser_temp), TMPDIR=str(rundir / "tmp"),
                        HOSTWATCH_BROWSER_PAGES=str(settings.browser_pages),
                        HOSTWATCH_BROWSER_TIMEOUT=f"{settings.browser_timeout:g}",
                        **settings.env)
        env["PYTHONPATH"] = str(tree)  # the measured code, not this tree's
        db_path = rundir / "store.db"
        db_url = make_store(tree, db_path, items, env, rundir)
        argv = [sys.executable, "-m", "hostwatch", "--db", db_url, "crawl", "--browser"]
        try:
            wall, cpu, sampled, output, left = run_crawl(argv, env, rundir,
                                                         settings.crawl_timeout)
            left_files = sorted(str(path) for path in browser_temp.rglob("*"))
        finally:
            shutil.rmtree(browser_temp, ignore_errors=True)
    checked = verify(db_path, items, farm.summary.get("first_asked", {}))
    problems = checked.problems
    if left.leaked:
        problems.append(f"{len(left.leaked)} processes still alive {LINGER_SECONDS:.0f} s after "
                        f"the crawl exited (killed): {', '.join(left.leaked[:10])}")
    if left_files:
        problems.append(f"{len(left_files)} entries left in the browser's temp dir")
    logs = [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line]
    shutil.rmtree(rundir, ignore_errors=True)
    return Run(label, str(tree), commit, round_, checked.checks, checked.run_seconds, wall, cpu,
               sampled.peak_pss_kib if sampled.pss_readable else 0, sampled.launches,
               farm.requests, checked.verdicts, checked.page_seconds, problems, logs, before,
               load())


# -- report --------------------------------------------------------------------


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _mean_page_seconds(runs: list[Run]) -> dict[str, float]:
    """Per kind, the mean seconds per page over all of ``runs``."""
    return {kind: statistics.fmean(values) for kind in KINDS
            if (values := [value for run in runs for value in run.page_seconds.get(kind, [])])}


def describe_mix(settings: Settings) -> str:
    shares = Counter(kind for kind, _ in MIX)
    per_100 = ", ".join(f"{100 * shares[kind] // len(MIX)} {kind}" for kind in KINDS)
    return (f"{settings.pages} pages, per 100: {per_100} (slow: script +{SLOW_SCRIPT_DELAY:g} s, "
            f"JSON +{'/'.join(f'{d:g}' for d in SLOW_API_DELAYS)} s; hang: the whole "
            f"timeout); {settings.browser_pages} pages at once, "
            f"HOSTWATCH_BROWSER_TIMEOUT={settings.browser_timeout:g}"
            + "".join(f", {key}={value}" for key, value in sorted(settings.env.items())))


def report(runs: list[Run], labels: list[str], settings: Settings) -> int:
    """Print the tables; 1 when a compared tree missed the target, else 0."""
    print(f"\n{describe_mix(settings)}\n")
    print(f"{'run':<16} {'commit':<16} {'pages':>5} {'run s':>7} {'wall s':>7} {'pages/min':>9} "
          f"{'CPU s/page':>10} {'peak PSS':>8} {'launches':>8}   load before -> after")
    for run in runs:
        cpu_each = run.cpu_seconds / run.checks if run.checks else 0.0
        print(f"{run.label + ' #' + str(run.round + 1):<16} {run.commit:<16} {run.checks:>5} "
              f"{run.run_seconds:>7.1f} {run.wall_seconds:>7.1f} {run.per_minute:>9.1f} "
              f"{cpu_each:>10.3f} {mib(run.peak_pss_kib):>8} {run.launches:>8}   "
              f"{run.load_before.removeprefix('load ')} -> {run.load_after.removeprefix('load ')}")
    print("(run s: crawl_runs started_at..finished_at, pages/min over it; wall s: the whole "
          "child. CPU s: user + system\n of the child and what was reaped below it, start-up "
          "included. Peak PSS in MiB, over the child and its descendants)")
    print("\nSeconds per page, the farm's first request for it to the check's checked_at "
          "(median / 90th percentile):")
    for run in runs:
        parts = [f"{kind} {statistics.median(run.page_seconds[kind]):.2f} / "
                 f"{_quantile(run.page_seconds[kind], 0.9):.2f}"
                 for kind in KINDS if run.page_seconds.get(kind)]
        print(f"{run.label + ' #' + str(run.round + 1):<16} {';  '.join(parts)}")
    print("\nVerdicts (kind state -> verdict):")
    for run in runs:
        verdicts = ", ".join(f"{key} {count}" for key, count in sorted(run.verdicts.items()))
        print(f"{run.label + ' #' + str(run.round + 1):<16} {verdicts}")
    for run in runs:
        if run.log_lines or run.problems:
            print(f"\n{run.label} #{run.round + 1}: {len(run.log_lines)} warning/error lines")
            messages = Counter(line[20:] if line[:2] == "20" else line for line in run.log_lines)
            for message, count in messages.most_common(5):
                print(f"    {count} x {message[:180]}")
            for problem in run.problems:
                print(f"    PROBLEM: {problem}")
    busiest = max(float(text.split()[1]) for run in runs
                  for text in (run.load_before, run.load_after))
    if busiest > (os.cpu_count() or 1):
        print(f"\nThe machine was busy (1-minute load average up to {busiest:.1f} on "
              f"{os.cpu_count()} CPUs): these rates are noisy, compare only on a quiet machine.")
    status = 0
    if len(labels) > 1:
        medians = {label: statistics.median(run.per_minute for run in runs if run.label == label)
                   for label in labels}
        base = labels[0]
        print("\nMedian pages/min: " + ", ".join(f"{label} {medians[label]:.1f}"
                                                 for label in labels))
        seconds = {label: _mean_page_seconds([run for run in runs if run.label == label])
                   for label in labels}
        for label in labels[1:]:
            ratio = medians[label] / medians[base] if medians[base] else 0.0
            met = ratio >= TARGET_RATIO
            status = status or (0 if met else 1)
            print(f"{label}/{base}: {ratio:.2f} (target >= {TARGET_RATIO:.2f}: "
                  f"{'PASS' if met else 'FAIL'})")
            # The hanging pages cost the same timeout on both; these show what
            # the rate's ratio dilutes: the change on pages that do finish.
            parts = [f"{kind} {seconds[label][kind] / seconds[base][kind]:.2f}"
                     for kind in KINDS if seconds[base].get(kind) and seconds[label].get(kind)]
            print(f"    mean seconds per page, {label}/{base}: {', '.join(parts)}")
    if all(not run.problems for run in runs):
        print("\nEvery case had exactly one browser check with an accepted verdict; no process "
              f"was left {LINGER_SECONDS:.0f} s after a run; no file in the browser's temp dir.")
    return status


# -- main ----------------------------------------------------------------------


def _env_setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.startswith(BROWSER_ENV_PREFIX) or key in SET_HERE:
        raise argparse.ArgumentTypeError(
            f"want {BROWSER_ENV_PREFIX}NAME=VALUE (not {', '.join(sorted(SET_HERE))}, which "
            f"the benchmark sets; the timeout has --browser-timeout), got {text!r}")
    return key, value


def _tree_label(tree: Path, taken: list[str]) -> str:
    label = tree.name or "tree"
    return label if label not in taken else f"{label}{len(taken) + 1}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=300, help="pages (cases) (default 300)")
    parser.add_argument("--browser-pages", type=int, default=2, metavar="K",
                        help="HOSTWATCH_BROWSER_PAGES, pages at once (default 2)")
    parser.add_argument("--browser-timeout", type=float, default=10.0, metavar="S",
                        help="HOSTWATCH_BROWSER_TIMEOUT, what a hanging page costs (default 10)")
    parser.add_argument("--env", type=_env_setting, action="append", default=[],
                        metavar="KEY=VALUE",
                        help="another HOSTWATCH_BROWSER_* setting for every run (repeatable)")
    parser.add_argument("--tree", type=Path, action="append", default=[], metavar="PATH",
                        help="a source tree to measure (repeatable; default this one). With "
                             "several, the first is the baseline")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds, each tree once per round, order alternating (default 1)")
    parser.add_argument("--galleries", type=int, default=4,
                        help="hosts of the fast and hanging pages (default 4)")
    parser.add_argument("--slow-galleries", type=int, default=2,
                        help="hosts of the slow pages (default 2)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--serve", action="store_true",
                        help="only run the farm (what the runs start as a child)")
    parser.add_argument("--hang-seconds", type=float, default=MIN_HANG_SECONDS,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.pages, args.galleries, args.slow_galleries, args.browser_pages,
           args.repeat) < 1 or args.browser_timeout <= 0:
        parser.error("--pages, --galleries, --slow-galleries, --browser-pages, --repeat and "
                     "--browser-timeout must be positive")
    if args.serve:
        return serve(args.pages, args.galleries, args.slow_galleries, args.hang_seconds)

    settings = Settings(args.pages, args.galleries, args.slow_galleries, args.browser_pages,
                        args.browser_timeout, dict(args.env))
    trees = [tree.resolve() for tree in args.tree] or [REPO]
    labels: list[str] = []
    for tree in trees:
        if not (tree / "crawler" / "browser").is_dir():
            parser.error(f"{tree} is not a hostwatch source tree")
        labels.append(_tree_label(tree, labels))
    commits = [revision(tree) for tree in trees]
    date = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"hostwatch browser checks on a mix, {date}; {machine()}; {load()}", flush=True)
    print(f"benchmark from {REPO} ({revision()})")
    for label, tree, commit in zip(labels, trees, commits, strict=True):
        print(f"tree {label}: {tree} at commit {commit}")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="hw-bench-mix-") as temp:
        for round_ in range(args.repeat):
            order = list(range(len(trees)))
            if round_ % 2:
                order.reverse()
            for index in order:
                print(f"... round {round_ + 1}: {labels[index]} ({commits[index]}), "
                      f"{args.pages} pages ({load()})", file=sys.stderr, flush=True)
                try:
                    runs.append(run_one(trees[index], labels[index], commits[index], round_,
                                        settings, Path(temp)))
                except BenchError as exc:
                    print(f"FAILED: {exc}", file=sys.stderr)
                    return 2
                print(f"    {runs[-1].per_minute:.1f} pages/min ({load()})", file=sys.stderr,
                      flush=True)
    status = report(runs, labels, settings)
    if args.json is not None:
        args.json.write_text(json.dumps(
            {"date": date, "machine": machine(), "benchmark": revision(),
             "settings": asdict(settings), "mix": describe_mix(settings),
             "trees": [{"label": label, "path": str(tree), "commit": commit}
                       for label, tree, commit in zip(labels, trees, commits, strict=True)],
             "runs": [{**asdict(run), "per_minute": run.per_minute} for run in runs]},
            indent=2))
    return 2 if any(run.problems for run in runs) else status


if __name__ == "__main__":
    sys.exit(main())

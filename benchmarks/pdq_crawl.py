"""Crawl throughput with PDQ (issue #12, point 5): image mixes, hostwatch against bare Scrapy.

    .venv/bin/python benchmarks/pdq_crawl.py [--cases 5000] [--hosts 20] [--images 20]
                                             [--shares 0 10 50] [--workers 1] [--repeat R]
                                             [--json FILE]

`crawl_throughput.py`'s comparison, on real pictures instead of 2 KiB
bodies. Everything runs on loopback, in child processes; nothing is written
but the SQLite stores (hashes, never a body).

1. The farm: ``python -m lab serve --images K``: each host serves the
   reported JPEG of one of K pictures (`lab.images.reported`, 800x600)
   at /i/{j} and its re-encodings at /i/{j}/{variant} (stripped,
   recompressed, WebP, AVIF, PNG, resized: `images.SAME_PICTURE`).
2. Every case carries the reported file's SHA-256 and PDQ as its reference
   (as an import with a ``pdq`` column would; ``ref_pdq_source`` "report").
   A share S of the cases (every host alike, spread evenly over its paths)
   points at a re-encoding, the variants taken in turn; the rest at the
   reported file. Only the re-encoded ones are decoded: their SHA-256
   differs and the case has a reference PDQ (`Reference.needs_pdq`).
3. Per share, ``--repeat`` rounds, interleaved: ``hostwatch crawl`` of all
   cases (rate over the run's ``crawl_runs`` interval; every
   ``HOSTWATCH_PDQ_WORKERS`` value of ``--workers``), and the bare Scrapy
   spider of crawl_throughput.py fetching the same URLs by IP.
4. Checked after each hostwatch run: one check per case; every case served
   the reported file is ``online`` with a reference match and no PDQ, every
   re-encoded one ``reencoded`` with a PDQ within the threshold. Decodes =
   checks that carry a PDQ.

Exit status 0 when every run checked out, 2 when one failed or a verdict was
wrong. Compare ratios within one invocation: the machine may be shared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [str(REPO), *(entry for entry in sys.path
                            if Path(entry).resolve() not in (REPO, REPO / "benchmarks"))]

from benchmarks.crawl_throughput import (  # noqa: E402  (after the path fix above)
    BaselineRun,
    BenchError,
    Farm,
    child_timeout,
    hostwatch_env,
    load,
    machine,
    revision,
    run_baseline,
    run_child,
    step,
)


@dataclass
class ImageFarm(Farm):
    """The farm with pictures; `url` points each case at the reported file
    or, for a share of them, at a re-encoding."""

    images: int = 20
    share: int = 0  # percent of the cases served re-encoded

    def argv(self) -> list[str]:
        return [*super().argv(), "--images", str(self.images)]

    def seed(self, case: int) -> int:
        from lab.__main__ import bench_image_seed

        return bench_image_seed(case % self.hosts, case // self.hosts, self.hosts, self.images)

    def variant(self, case: int) -> str | None:
        """The re-encoding case ``case`` is served, or None (the reported file)."""
        from lab.images import SAME_PICTURE

        path = case // self.hosts
        before, after = path * self.share // 100, (path + 1) * self.share // 100
        if after == before:
            return None
        return SAME_PICTURE[(before + case % self.hosts) % len(SAME_PICTURE)]

    def url(self, case: int, *, by_ip: bool = False) -> str:
        host, path = case % self.hosts, case // self.hosts
        if path >= self.paths:
            raise ValueError(f"case {case} is beyond the farm's {self.paths} paths per host")
        name = self.ips[host] if by_ip else self.names[host]
        variant = self.variant(case)
        return f"http://{name}:{self.port}/i/{path}" + (f"/{variant}" if variant else "")


def references(images: int) -> dict[int, tuple[str, str]]:
    """{seed: (SHA-256, PDQ)} of each reported file, as a hotline would hold them."""
    from crawler.perceptual import pdq_of_image
    from lab.images import reported

    refs = {}
    for seed in range(1, images + 1):
        body = reported(seed)
        pdq = pdq_of_image(body, 50_000_000)
        assert pdq.hash is not None
        refs[seed] = (hashlib.sha256(body).hexdigest(), pdq.hash)
    return refs


def make_store(db_path: Path, farm: ImageFarm, cases: int,
               refs: dict[int, tuple[str, str]]) -> str:
    from sqlalchemy import insert

    from store import Store
    from store.models import Base

    db_url = f"sqlite:///{db_path}"
    store = Store(db_url)
    store.upgrade()
    now = datetime.now(UTC)
    rows = []
    for k in range(cases):
        url = farm.url(k)
        sha256, pdq = refs[farm.seed(k)]
        rows.append({"source": "bench", "external_id": f"b{k}", "url": url,
                     "url_normalised": url, "host": url.split("/")[2].split(":")[0],
                     "category": "csam", "reported_at": now, "imported_at": now,
                     "state": "unchecked", "ref_sha256": sha256, "ref_pdq": pdq,
                     "ref_pdq_source": "report", "reappearances": 0, "check_count": 0})
    cases_table = Base.metadata.tables["cases"]
    with store.engine.begin() as connection:
        for start in range(0, len(rows), 20_000):
            connection.execute(insert(cases_table), rows[start:start + 20_000])
    store.dispose()
    return db_url


@dataclass
class PdqRun:
    share: int
    workers: int
    cases: int
    run_seconds: float
    wall_seconds: float
    cpu_seconds: float
    max_rss_kib: int
    decoded: int
    verdicts: dict[str, int]
    distance_max: int | None
    rss_parts_kib: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.cases / self.run_seconds


def run_hostwatch(farm: ImageFarm, cases: int, workers: int, workdir: Path, label: str,
                  refs: dict[int, tuple[str, str]]) -> PdqRun:
    from sqlalchemy import create_engine, func, select

    from store.models import Case, Check, CrawlRun

    db_url = make_store(workdir / f"{label}.db", farm, cases, refs)
    env = hostwatch_env(farm, workdir)
    env.update(HOSTWATCH_OFFLINE="1", HOSTWATCH_PDQ_WORKERS=str(workers))
    result = run_child([sys.executable, "-m", "hostwatch", "--db", db_url, "crawl"], env,
                       workdir, child_timeout(cases))
    engine = create_engine(db_url)
    try:
        with engine.connect() as db:
            run = db.execute(select(CrawlRun).order_by(CrawlRun.id.desc()).limit(1)).one()
            rows = db.execute(select(Case.external_id, Check.verdict, Check.reference_match,
                                     Check.body_pdq, Check.pdq_distance)
                              .join(Check, Check.case_id == Case.id)).all()
            total = db.scalar(select(func.count()).select_from(Case))
    finally:
        engine.dispose()
    problems = _verdict_problems(farm, cases, rows, total or 0, run)
    if problems:
        raise BenchError(f"hostwatch {label}: " + "; ".join(problems[:10]))
    verdicts: dict[str, int] = {}
    for row in rows:
        verdicts[row.verdict] = verdicts.get(row.verdict, 0) + 1
    distances = [row.pdq_distance for row in rows if row.pdq_distance is not None]
    return PdqRun(farm.share, workers, cases,
                  (run.finished_at - run.started_at).total_seconds(), result.wall_seconds,
                  result.cpu_seconds, result.max_rss_kib,
                  sum(row.body_pdq is not None for row in rows), verdicts,
                  max(distances) if distances else None, result.rss_parts_kib)


def _verdict_problems(farm: ImageFarm, cases: int, rows: Sequence[Any], total: int,
                      run: Any) -> list[str]:
    """What is wrong with a run's checks (the verdicts the mix calls for)."""
    problems = []
    if run.status != "finished" or run.finished_at is None:
        problems.append(f"run status {run.status}")
    if not (total == cases == len(rows) == run.checks_made):
        problems.append(f"{cases} cases, {total} stored, {len(rows)} checks, run says "
                        f"{run.checks_made}")
    for row in rows:
        reencoded = farm.variant(int(row.external_id[1:])) is not None
        expected = ("reencoded", True, True) if reencoded else ("online", True, False)
        got = (row.verdict, row.reference_match, row.body_pdq is not None)
        if got != expected:
            problems.append(f"case {row.external_id}: {got}, expected {expected}")
    return problems


def median_run(runs: list[PdqRun]) -> PdqRun:
    """The run with the median rate (the slower middle one for an even count)."""
    return sorted(runs, key=lambda run: run.rate)[(len(runs) - 1) // 2]


def median_rate(runs: list[Any]) -> float:
    return float(statistics.median(run.rate for run in runs))


def report(farm: ImageFarm, cases: int, shares: list[int], workers: list[int],
           hws: dict[tuple[int, int], list[PdqRun]],
           scrapys: dict[int, list[BaselineRun]]) -> None:
    print(f"\n{cases} cases on {farm.hosts} hosts, {farm.images} pictures (800x600); "
          "each case has the reported file's SHA-256 and PDQ")
    print(f"{'share':>5} {'workers':>7} {'round':>5} {'hw checks/s':>11} {'scrapy/s':>9} "
          f"{'hw/scrapy':>9} {'decodes':>7} {'CPU s hw/scrapy':>15} {'peak RSS':>9} "
          f"{'max dist':>8}  verdicts")
    for (share, w), runs in hws.items():
        for number, (run, base) in enumerate(zip(runs, scrapys[share], strict=True), start=1):
            print(f"{share:>4}% {w:>7} {number:>5} {run.rate:>11.0f} {base.rate:>9.0f} "
                  f"{run.rate / base.rate:>9.2f} {run.decoded:>7} "
                  f"{run.cpu_seconds:>7.1f} / {base.cpu_seconds:<5.1f} "
                  f"{run.max_rss_kib / 1024:>6.0f} MiB {run.distance_max or '-':>8}  "
                  + ", ".join(f"{k} {v}" for k, v in sorted(run.verdicts.items())))
    print("\nmedians (per decode: the median run's seconds and CPU seconds above the "
          "0 % mix's, over its decodes):")
    print(f"{'share':>5} {'workers':>7} {'hw checks/s':>11} {'vs 0 %':>7} {'scrapy/s':>9} "
          f"{'hw/scrapy':>9} {'ms per decode':>13} {'CPU ms per decode':>17}")
    for (share, w), runs in hws.items():
        rate = median_rate(runs)
        zero = hws.get((0, w)) or hws.get((0, workers[0]))
        scrapy_rate = median_rate(scrapys[share])
        per_decode = cpu_per_decode = "-"
        middle = median_run(runs)
        if zero and middle.decoded:
            zero_run = median_run(zero)
            extra = (middle.run_seconds - zero_run.run_seconds,
                     middle.cpu_seconds - zero_run.cpu_seconds)
            per_decode, cpu_per_decode = (f"{seconds * 1000 / middle.decoded:.1f}"
                                          for seconds in extra)
        print(f"{share:>4}% {w:>7} {rate:>11.0f} "
              f"{(rate / median_rate(zero)) if zero else float('nan'):>7.2f} "
              f"{scrapy_rate:>9.0f} {rate / scrapy_rate:>9.2f} {per_decode:>13} "
              f"{cpu_per_decode:>17}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=5000, help="cases per run (default 5000)")
    parser.add_argument("--hosts", type=int, default=20, help="farm hosts (default 20)")
    parser.add_argument("--images", type=int, default=20, help="distinct pictures (default 20)")
    parser.add_argument("--shares", type=int, nargs="+", default=[0, 10, 50],
                        help="percent of cases served re-encoded, one run each (default 0 10 50)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="HOSTWATCH_PDQ_WORKERS values, a hostwatch run each (default 1)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds, interleaved (default 1)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.cases < 1 or args.images < 1 or args.repeat < 1 or not all(
            0 <= share <= 100 for share in args.shares):
        parser.error("--cases, --images and --repeat must be >= 1; shares 0..100")

    started = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"hostwatch crawl with PDQ, {started}; commit {revision()}; {machine()}")
    paths = -(-args.cases // args.hosts)
    farm = ImageFarm(args.hosts, paths, 2048, images=args.images)
    hws: dict[tuple[int, int], list[PdqRun]] = {(s, w): [] for s in args.shares
                                                for w in args.workers}
    scrapys: dict[int, list[BaselineRun]] = {share: [] for share in args.shares}
    try:
        with tempfile.TemporaryDirectory(prefix="hostwatch-pdq-bench-") as tmp:
            workdir = Path(tmp)
            with step(f"starting the farm: {args.hosts} hosts x {paths} paths, "
                      f"{args.images} pictures"):
                farm.start()
                refs = references(args.images)
            for number in range(1, args.repeat + 1):
                for share in args.shares:
                    farm.share = share
                    for w in args.workers:
                        with step(f"round {number}: hostwatch, {share} % re-encoded, "
                                  f"{w} PDQ worker(s)"):
                            hws[(share, w)].append(run_hostwatch(
                                farm, args.cases, w, workdir, f"r{number}-s{share}-w{w}", refs))
                    with step(f"round {number}: bare Scrapy, {share} % re-encoded"):
                        scrapys[share].append(run_baseline("scrapy", farm, args.cases, workdir))
    except BenchError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        farm.stop()
    report(farm, args.cases, args.shares, args.workers, hws, scrapys)
    print(f"\nthe farm answered {farm.requests_served} requests in all ({load()})")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "date": started, "revision": revision(), "machine": machine(), "argv": sys.argv[1:],
            "hostwatch": {f"{s}%/{w}": [{**asdict(r), "rate": r.rate} for r in runs]
                          for (s, w), runs in hws.items()},
            "scrapy": {f"{s}%": [{**asdict(r), "rate": r.rate} for r in runs]
                       for s, runs in scrapys.items()},
            "farm_requests": farm.requests_served}, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    start = time.monotonic()
    code = main()
    print(f"({time.monotonic() - start:.0f} s in all)", file=sys.stderr)
    sys.exit(code)

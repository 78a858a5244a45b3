"""How long `hostwatch report hosters` takes on a large store (issue #4 point 8).

    .venv/bin/python benchmarks/reports.py [--cases N] [--checks-per-case K]
                                           [--stores sqlite,postgresql]
                                           [--formats html,md,csv,json] [--seed S]
                                           [--regenerate] [--check] [--json FILE]

1. makes (or reuses) a synthetic store of N cases (default 1,000,000) and
   N*K checks (default K = 10: 10,000,000) on each store - a SQLite file under
   benchmarks/.cache/ and the PostgreSQL database ``hostwatch_bench`` on the
   local server - see benchmarks/synthetic_store.py for what is in it. A store
   is reused when its size, seed and schema head match; ``--regenerate``
   rebuilds it;
2. with ``--check``, verifies the store on a sample (see ``check_store``);
3. runs ``hostwatch --db URL report hosters --format F -o PATH`` once per store
   and format, as a child process, and records its wall time and peak RSS (GNU
   time's maximum resident set size of the child, else its VmHWM polled from
   /proc);
4. prints a table with PASS/FAIL against the 60 s target, and writes every
   figure to benchmarks/.cache/reports-results.json (``--json`` elsewhere).

Exit status: 0 every report within the target, 1 a report over it, 2 a report
failed, the report command is missing, or ``--check`` found a problem.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Run as a script, benchmarks/ comes first on sys.path, and its enrichment.py and
# reports.py would hide the packages of those names (even with REPO on PYTHONPATH).
sys.path[:] = [str(REPO), *(entry for entry in sys.path
                            if Path(entry).resolve() not in (REPO, REPO / "benchmarks"))]

from benchmarks.synthetic_store import (  # noqa: E402
    PG_DATABASE,
    Spec,
    ensure_stores,
    read_marker,
    schema_head,
)

CACHE = REPO / "benchmarks" / ".cache"
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
TARGET_SECONDS = 60.0
FORMATS = ("html", "md", "csv", "json")
CHILD_TIMEOUT = 600.0  # ten times the target: a report still running then is stopped
GNU_TIME = Path("/usr/bin/time")
SAMPLE = 2_000


@dataclass
class Timing:
    store: str
    format: str
    seconds: float
    peak_rss_mib: float | None
    output_bytes: int
    returncode: int
    passed: bool
    error: str = ""


def store_urls(stores: list[str], spec: Spec, pg_server: str) -> dict[str, str]:
    urls = {}
    for name in stores:
        if name == "sqlite":
            path = CACHE / f"reports-{spec.cases}x{spec.checks_per_case}-s{spec.seed}.db"
            urls[name] = f"sqlite:///{path}"
        elif name == "postgresql":
            urls[name] = f"{pg_server}/{PG_DATABASE}"
        else:
            raise SystemExit(f"--stores: unknown store {name!r} (sqlite, postgresql)")
    return urls


def hostwatch_argv() -> list[str]:
    exe = REPO / ".venv" / "bin" / "hostwatch"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hostwatch"]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTWATCH_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def report_command_missing() -> str | None:
    """Why `hostwatch report hosters` cannot run here, or None when it can."""
    probe = subprocess.run([*hostwatch_argv(), "report", "hosters", "--help"],
                           capture_output=True, text=True, cwd=REPO, env=child_env())
    if probe.returncode == 0 and "--format" in probe.stdout:
        return None
    return (probe.stderr or probe.stdout).strip().splitlines()[-1] if \
        (probe.stderr or probe.stdout).strip() else f"exit status {probe.returncode}"


def run_report(url: str, fmt: str, out: Path,
               timeout: float = CHILD_TIMEOUT) -> tuple[float, float | None, int, str]:
    """(wall seconds, peak RSS MiB, return code, stderr tail) of one report child."""
    argv = [*hostwatch_argv(), "--db", url, "report", "hosters", "--format", fmt, "-o", str(out)]
    with tempfile.NamedTemporaryFile("r", suffix=".time") as rss_file:
        if GNU_TIME.exists():
            argv = [str(GNU_TIME), "-f", "%M", "-o", rss_file.name, *argv]
        started = time.perf_counter()
        child = subprocess.Popen(argv, cwd=REPO, env=child_env(), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
        peak_kib = 0
        if not GNU_TIME.exists():
            while child.poll() is None:
                peak_kib = max(peak_kib, _vm_hwm_kib(child.pid))
                time.sleep(0.05)
        try:
            _, stderr = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            _, stderr = child.communicate()
            stderr += f"\nstopped after {timeout:.0f} s (--timeout)"
        seconds = time.perf_counter() - started
        if GNU_TIME.exists():
            text = rss_file.read().strip().splitlines()
            peak_kib = int(text[-1]) if text and text[-1].isdigit() else 0
    tail = "\n".join(stderr.strip().splitlines()[-5:])
    return seconds, (peak_kib / 1024 if peak_kib else None), child.returncode, tail


def _vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def store_size(url: str) -> int | None:
    """Bytes on disk of the store (the SQLite file, or the PostgreSQL database)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            size: int | None = conn.execute(
                text("SELECT pg_database_size(current_database())")).scalar()
            return size
    finally:
        engine.dispose()


# -- --check: the store against its own rules, on a sample -------------------------------

def check_store(url: str, spec: Spec, sample: int = SAMPLE) -> list[str]:
    """Problems found in the synthetic store at ``url`` (empty: consistent).

    Counts (cases, checks = N*K, notices ~80 %, orders ~1 %, attributions);
    for ``sample`` random cases: the derived columns equal
    ``kernel.state.derive_state`` over their checks, the attribution of record
    belongs to the case and sits on its newest check with an address, every
    notice is due 24 h after it was sent, every order due as
    ``kernel.deadlines.order_due`` says; for ``sample`` random checks:
    ``record_hash`` recomputes with ``store.checks.record_hash`` and
    ``prev_hash`` is the previous check's hash; the chain head is the last
    check's hash.
    """
    from sqlalchemy import func, select

    from kernel.deadlines import Regime, notice_due, order_due
    from kernel.model import Verdict
    from kernel.state import derive_state
    from store import Attribution, Case, ChainHead, Check, Notice, Order, Store
    from store.checks import HASHED_FIELDS, record_hash

    problems: list[str] = []
    store = Store(url)
    rng = random.Random(spec.seed + 1)
    with store.session() as s:
        cases = s.scalar(select(func.count()).select_from(Case)) or 0
        checks = s.scalar(select(func.count()).select_from(Check)) or 0
        notices = s.scalar(select(func.count()).select_from(Notice)) or 0
        orders = s.scalar(select(func.count()).select_from(Order)) or 0
        attributions = s.scalar(select(func.count()).select_from(Attribution)) or 0
        attributed = s.scalar(select(func.count()).select_from(Case)
                              .where(Case.attribution_id.is_not(None))) or 0
        if cases != spec.cases:
            problems.append(f"{cases:,} cases, expected {spec.cases:,}")
        if checks != spec.checks:
            problems.append(f"{checks:,} checks, expected {spec.checks:,}")
        if not 0.75 * cases <= notices <= 0.85 * cases:
            problems.append(f"{notices:,} notices: not about 80 % of {cases:,} cases")
        if not 0.005 * cases <= orders <= 0.015 * cases:
            problems.append(f"{orders:,} orders: not about 1 % of {cases:,} cases")
        if attributions != attributed or attributed < 0.95 * cases:
            problems.append(f"{attributions:,} attributions for {attributed:,} attributed "
                            f"cases of {cases:,}")
        ids = sorted(rng.sample(range(1, cases + 1), min(sample, cases)))
        for case in s.scalars(select(Case).where(Case.id.in_(ids))):
            history = s.execute(select(Check.id, Check.checked_at, Check.verdict, Check.peer_ip)
                                .where(Check.case_id == case.id).order_by(Check.id)).all()
            derived = derive_state(case.reported_at, [(w, Verdict(v)) for _, w, v, _ in history])
            stored = (case.state, case.last_verdict, case.last_checked_at, case.last_served_at,
                      case.removed_after, case.removed_at, case.reappearances, case.check_count)
            expected = (derived.state.value,
                        derived.last_verdict.value if derived.last_verdict else None,
                        derived.last_checked_at, derived.last_served_at, derived.removed_after,
                        derived.removed_at, derived.reappearances, derived.checks)
            if stored != expected:
                problems.append(f"case {case.id}: stored {stored}, derive_state {expected}")
            times = [w for _, w, _, _ in history]
            if times != sorted(times):
                problems.append(f"case {case.id}: check ids do not follow check time")
            with_address = [i for i, _, _, ip in history if ip is not None]
            attribution = s.get(Attribution, case.attribution_id) if case.attribution_id \
                else None
            if with_address and (attribution is None or attribution.case_id != case.id
                                 or attribution.check_id != with_address[-1]):
                problems.append(f"case {case.id}: attribution of record is not on its newest "
                                "check with an address")
            if not with_address and case.attribution_id is not None:
                problems.append(f"case {case.id}: attributed without any address")
        for notice in s.scalars(select(Notice).where(Notice.case_id.in_(ids))):
            if notice.due_at != notice_due(notice.sent_at):
                problems.append(f"notice {notice.id}: due_at is not sent_at + 24 h")
        for order in s.scalars(select(Order).limit(sample)):
            regime = Regime(order.regime) if order.regime else None
            if order.due_at != order_due(regime, order.issued_at, order.deadline_at):
                problems.append(f"order {order.id}: due_at differs from order_due()")
        columns = [getattr(Check, name) for name in HASHED_FIELDS]
        for check_id in sorted(rng.sample(range(1, checks + 1), min(sample, checks))):
            rows = s.execute(select(Check.id, Check.prev_hash, Check.record_hash, *columns)
                             .where(Check.id.in_((check_id - 1, check_id)))
                             .order_by(Check.id)).all()
            row = rows[-1]._asdict()
            if record_hash(row, row["prev_hash"]) != row["record_hash"]:
                problems.append(f"check {check_id}: record_hash does not recompute")
            if len(rows) == 2 and rows[0].record_hash != row["prev_hash"]:
                problems.append(f"check {check_id}: prev_hash is not check "
                                f"{check_id - 1}'s record_hash")
        head = s.get(ChainHead, 1)
        last = s.execute(select(Check.id, Check.record_hash).order_by(Check.id.desc())
                         .limit(1)).first()
        if head is None or last is None or (head.record_hash, head.check_id) != tuple(last)[::-1]:
            problems.append("chain head is not the last check")
    store.dispose()
    return problems


def _state_mix(url: str) -> dict[str, Any]:
    """A few figures that show the store's shape (states, sections, deadlines)."""
    from sqlalchemy import func, select

    from store import Attribution, Case, Order
    from store import Store as _Store
    store = _Store(url)
    with store.session() as s:
        states = dict(s.execute(select(Case.state, func.count()).group_by(Case.state)).all())
        places = dict(s.execute(select(Attribution.jurisdiction, func.count())
                                .group_by(Attribution.jurisdiction)).all())
        cdn = s.scalar(select(func.count()).select_from(Attribution)
                       .where(Attribution.cdn.is_not(None)))
        served_from = dict(s.execute(
            select(Attribution.server_country_source, func.count())
            .where(Attribution.cdn.is_(None))
            .group_by(Attribution.server_country_source)).all())
        regimes = dict(s.execute(select(Order.regime, func.count()).group_by(Order.regime)).all())
        reappeared = s.scalar(select(func.count()).select_from(Case)
                              .where(Case.reappearances > 0))
    store.dispose()
    return {"states": states, "jurisdictions": places, "cdn_fronted": cdn,
            "server_country_sources": {str(k): v for k, v in served_from.items()},
            "order_regimes": regimes, "cases_reappeared": reappeared}


# -- main -------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--checks-per-case", type=int, default=10)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--pg-server", default=PG_SERVER,
                        help=f"PostgreSQL server URL without database (default {PG_SERVER}); "
                             f"the benchmark uses database {PG_DATABASE} on it")
    parser.add_argument("--regenerate", action="store_true", help="rebuild the stores")
    parser.add_argument("--check", action="store_true",
                        help=f"verify each store on a sample of {SAMPLE:,} cases and checks")
    parser.add_argument("--no-reports", action="store_true",
                        help="make (and --check) the stores only")
    parser.add_argument("--timeout", type=float, default=CHILD_TIMEOUT,
                        help="stop a report child after this many seconds (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=CACHE / "reports-results.json")
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        parser.error(f"--formats: unknown {unknown} (known: {', '.join(FORMATS)})")
    spec = Spec(args.cases, args.checks_per_case, args.seed)
    urls = store_urls([s.strip() for s in args.stores.split(",") if s.strip()], spec,
                      args.pg_server.rstrip("/"))
    CACHE.mkdir(parents=True, exist_ok=True)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=REPO).stdout.strip()
    print(f"report benchmark, {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; commit {commit}; "
          f"{platform.python_version()}, {platform.platform()}, {os.cpu_count()} CPUs")
    generated = ensure_stores(spec, list(urls.values()), regenerate=args.regenerate)
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit,
        "spec": asdict(spec) | {"checks": spec.checks}, "schema": schema_head(),
        "target_seconds": TARGET_SECONDS, "stores": {}, "reports": []}
    status = 0
    for name, url in urls.items():
        size = store_size(url)
        info: dict[str, Any] = {"url": url, "generation_seconds": generated[url],
                                "bytes": size, "marker": read_marker(url),
                                "shape": _state_mix(url)}
        made = "reused" if generated[url] is None else f"generated in {generated[url]:.0f} s"
        print(f"{name}: {made}; {size / 2**30:.2f} GiB on disk" if size else f"{name}: {made}")
        print(f"  shape: {json.dumps(info['shape'], sort_keys=True)}")
        if args.check:
            started = time.perf_counter()
            problems = check_store(url, spec)
            info["check_problems"] = problems
            print(f"  --check: {'OK' if not problems else f'{len(problems)} PROBLEMS'} "
                  f"({time.perf_counter() - started:.0f} s)")
            for problem in problems[:20]:
                print(f"    {problem}")
            status = 2 if problems else status
        results["stores"][name] = info

    if not args.no_reports:
        missing = report_command_missing()
        if missing is not None:
            print("\n`hostwatch report hosters` is not available in this checkout: "
                  f"{missing}\nNo report timed; the stores are ready for when it is.")
            results["report_command_missing"] = missing
            status = 2
        else:
            status = max(status, _time_reports(urls, formats, results, args.timeout))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print(f"\nfigures written to {args.json}")
    return status


def _time_reports(urls: dict[str, str], formats: list[str], results: dict[str, Any],
                  timeout: float) -> int:
    out_dir = CACHE / "reports-out"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    timings: list[Timing] = []
    print(f"\n{'store':<11} {'format':<6} {'seconds':>8} {'peak RSS':>10} {'output':>10}  "
          f"target {TARGET_SECONDS:.0f} s")
    for name, url in urls.items():
        for fmt in formats:
            out = out_dir / f"hosters-{name}.{fmt}"
            seconds, rss, code, tail = run_report(url, fmt, out, timeout)
            size = out.stat().st_size if out.exists() else 0
            ok = code == 0 and size > 0
            timing = Timing(name, fmt, round(seconds, 2), round(rss, 1) if rss else None, size,
                            code, ok and seconds <= TARGET_SECONDS, "" if ok else tail)
            timings.append(timing)
            verdict = "PASS" if timing.passed else ("FAILED RUN" if not ok else "FAIL")
            rss_text = f"{rss:,.0f} MiB" if rss else "?"
            print(f"{name:<11} {fmt:<6} {seconds:>8.1f} {rss_text:>10} {size:>10,}  {verdict}")
            if not ok:
                print(f"    exit status {code}: {tail}")
    results["reports"] = [asdict(t) for t in timings]
    by_store: dict[str, list[float]] = defaultdict(list)
    for t in timings:
        by_store[t.store].append(t.seconds)
    for store, times in by_store.items():
        print(f"{store}: slowest {max(times):.1f} s")
    if any(t.returncode != 0 or not t.output_bytes for t in timings):
        return 2
    return 0 if all(t.passed for t in timings) else 1


if __name__ == "__main__":
    sys.exit(main())

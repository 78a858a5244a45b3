"""What a PDQ decode costs (issue #12, point 5): per image, and to the event loop.

    .venv/bin/python benchmarks/pdq.py [--sizes 640x480 1920x1080 ...] [--formats JPEG PNG ...]
                                       [--reps N] [--seeds S] [--grain SIGMA] [--json FILE]

Nothing touches the network and nothing is written (the pictures are made
and encoded in memory, as `lab.images` does for the tests).

1. **Pictures**: `lab.images.picture(seed, size)` with photo-like grain
   added (Gaussian noise of ``--grain`` levels per channel, default 12: a
   JPEG q85 of it takes about 2 bits per pixel, as a camera photo does; the
   smooth drawing alone compresses ten times better and decodes faster),
   encoded as JPEG q85, WebP, AVIF and PNG (Pillow's defaults otherwise).
2. **Cost per decoded image**, per size and format, ``--reps`` decodes
   (cycling over ``--seeds`` pictures), median and 90th percentile:
   - ``in-process``: `crawler.perceptual.pdq_of_image` called directly: wall
     time and CPU time of this process (decoder threads included);
   - ``worker``: ``await PdqHasher(PdqSettings(workers=1)).pdq(body)``, the
     crawl's way: wall time including the IPC (the body pickled to a spawn
     worker process, the `Pdq` back), CPU of this process (the pool's
     feeder and result threads, the pickling) and of the worker: the
     decode's own CPU time there (``time.process_time()`` around
     `pdq_of_image` inside the worker, decoder threads included), and the
     mean over the row of everything the worker did (``/proc/PID/stat``:
     unpickling the body too; 10 ms ticks); the worker's peak RSS (VmHWM)
     after the row (a fresh worker per row) against its RSS after start-up;
   - ``thread``: the same with ``workers=0`` (a thread of this process).
3. **Event-loop stall**: a ticker task sleeps 1 ms in a loop and records how
   late it wakes, while 48 images of a size (3 of each format, 4 times
   over) are hashed one after the other by each of: nothing (idle, as long as the worker
   run), a worker process, a thread, and `pdq_of_image` called on the loop
   itself (then sleeping 1 ms between two images, so that the ticker runs
   after each one). Max and 99th percentile of the lateness.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# As in crawl_throughput.py: benchmarks/ must not hide the repository's packages.
sys.path[:] = [str(REPO), *(entry for entry in sys.path
                            if Path(entry).resolve() not in (REPO, REPO / "benchmarks"))]

from crawler.perceptual import Pdq, pdq_of_image  # noqa: E402  (after the path fix above)

FORMATS = {"JPEG": {"quality": 85}, "WEBP": {}, "AVIF": {}, "PNG": {}}
SIZES = ("640x480", "1280x960", "1920x1080", "4000x3000")
MAX_PIXELS = 50_000_000  # HOSTWATCH_PDQ_MAX_PIXELS' default
TICK = 0.001
STALL_ROUNDS = 4


def grainy(seed: int, size: tuple[int, int], sigma: float) -> Any:
    """`picture(seed, size)` with sensor-like noise, independent per channel."""
    from PIL import Image, ImageChops

    from lab.images import picture

    image = picture(seed, size)
    if sigma <= 0:
        return image
    noise = Image.merge("RGB", [Image.effect_noise(size, sigma) for _ in range(3)])
    return ImageChops.add(image, noise, 1.0, -128)


def encoded(sizes: list[tuple[int, int]], formats: list[str], seeds: int,
            sigma: float) -> dict[tuple[str, str], list[bytes]]:
    """{(size, format): [one body per seed]}, in memory."""
    from lab.images import encode

    bodies: dict[tuple[str, str], list[bytes]] = {}
    for size in sizes:
        pictures = [grainy(seed, size, sigma) for seed in range(1, seeds + 1)]
        for fmt in formats:
            bodies[(label(size), fmt)] = [encode(p, fmt, **FORMATS[fmt]) for p in pictures]
    return bodies


def label(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


@dataclass(frozen=True)
class TimedPdq(Pdq):
    """A `Pdq` that also says how much CPU its decode took where it ran."""

    cpu_seconds: float = 0.0


def timed_pdq(body: bytes, max_pixels: int) -> TimedPdq:
    """`pdq_of_image` and the CPU seconds it took, in the process that ran it
    (a decode worker: this module is its ``__mp_main__``)."""
    started = time.process_time()
    result = pdq_of_image(body, max_pixels)
    return TimedPdq(**asdict(result), cpu_seconds=time.process_time() - started)


def stat_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` so far, its ended threads included."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (q in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


@dataclass
class Cell:
    size: str
    fmt: str
    mode: str
    bytes_median: int
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # this process
    worker_cpu_ms: list[float] = field(default_factory=list)
    worker_rss_kib: int = 0  # after start-up
    worker_hwm_kib: int = 0  # peak, after the cell
    worker_stat_ms: float = 0.0  # mean CPU per image of the worker, /proc/PID/stat

    def summary(self) -> dict[str, float]:
        out = {"wall_med": statistics.median(self.wall_ms), "wall_p90": quantile(self.wall_ms, .9),
               "cpu_med": statistics.median(self.cpu_ms), "cpu_p90": quantile(self.cpu_ms, .9)}
        if self.worker_cpu_ms:
            out |= {"wcpu_med": statistics.median(self.worker_cpu_ms),
                    "wcpu_p90": quantile(self.worker_cpu_ms, .9)}
        return out


def measure_in_process(cell: Cell, bodies: list[bytes], reps: int) -> None:
    from crawler.perceptual import pdq_of_image

    for k in range(reps):
        body = bodies[k % len(bodies)]
        wall, cpu = time.perf_counter(), time.process_time()
        result = pdq_of_image(body, MAX_PIXELS)
        cell.cpu_ms.append((time.process_time() - cpu) * 1000)
        cell.wall_ms.append((time.perf_counter() - wall) * 1000)
        check(result, cell)


def check(result: Any, cell: Cell) -> None:
    if not result.usable or (result.quality or 0) < 50:
        raise SystemExit(f"{cell.size} {cell.fmt} {cell.mode}: no usable PDQ ({result})")


async def measure_hasher(cell: Cell, bodies: list[bytes], reps: int, workers: int,
                         tiny: bytes) -> None:
    from crawler.perceptual import PdqHasher, PdqSettings, pdq_of_image

    # The worker variant returns the decode's CPU time too (see timed_pdq).
    decode: Any = timed_pdq if workers else pdq_of_image
    hasher = PdqHasher(PdqSettings(workers=workers, timeout=120.0), decode=decode)
    try:
        await hasher.pdq(tiny)  # start-up (spawn, imports) is not a decode's cost
        pids = list(getattr(hasher._pool, "_processes", None) or {}) if workers else []
        worker = pids[0] if pids else None
        if worker is not None:
            cell.worker_rss_kib = vm_kib(worker, "VmRSS")
            stat_before = stat_cpu_seconds(worker)
        for k in range(reps):
            body = bodies[k % len(bodies)]
            wall, cpu = time.perf_counter(), time.process_time()
            result: Any = await hasher.pdq(body)
            cell.cpu_ms.append((time.process_time() - cpu) * 1000)
            cell.wall_ms.append((time.perf_counter() - wall) * 1000)
            if worker is not None:
                cell.worker_cpu_ms.append(result.cpu_seconds * 1000)
            check(result, cell)
        if worker is not None:
            cell.worker_hwm_kib = vm_kib(worker, "VmHWM")
            cell.worker_stat_ms = (stat_cpu_seconds(worker) - stat_before) * 1000 / reps
    finally:
        hasher.close()


def cost(bodies: dict[tuple[str, str], list[bytes]], reps: int) -> list[Cell]:
    from lab.images import encode, picture

    tiny = encode(picture(1, (64, 64)), "PNG")
    cells = []
    for (size, fmt), group in bodies.items():
        size_median = int(statistics.median(len(b) for b in group))
        for mode in ("in-process", "worker", "thread"):
            cell = Cell(size, fmt, mode, size_median)
            print(f"... {size} {fmt} {mode} ({load()})", file=sys.stderr, flush=True)
            if mode == "in-process":
                measure_in_process(cell, group, reps)
            else:
                asyncio.run(measure_hasher(cell, group, reps, 1 if mode == "worker" else 0, tiny))
            cells.append(cell)
    return cells


# -- the event loop's stall -----------------------------------------------------


async def ticking(work: Callable[[], Awaitable[None]]) -> tuple[list[float], float]:
    """Run ``work`` beside a 1 ms ticker; (the ticker's lateness in ms, work's seconds)."""
    late: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(TICK)
            late.append((time.perf_counter() - before - TICK) * 1000)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)  # the ticker is running
    late.clear()
    started = time.perf_counter()
    await work()
    seconds = time.perf_counter() - started
    done.set()
    await task
    return late, seconds


async def stall_runs(size: str, group: list[bytes], tiny: bytes) -> dict[str, dict[str, float]]:
    from crawler.perceptual import PdqHasher, PdqSettings, pdq_of_image

    out: dict[str, dict[str, float]] = {}
    hashers = {"worker": PdqHasher(PdqSettings(workers=1, timeout=120.0)),
               "thread": PdqHasher(PdqSettings(workers=0, timeout=120.0))}
    try:
        for hasher in hashers.values():
            await hasher.pdq(tiny)
        worker_seconds = [1.0]
        for mode in ("worker", "thread", "in-loop", "idle"):
            async def work(mode: str = mode) -> None:
                if mode == "idle":
                    await asyncio.sleep(worker_seconds[0])
                    return
                for body in group:
                    if mode == "in-loop":
                        pdq_of_image(body, MAX_PIXELS)  # blocks the loop: what not to do
                        # A timer, not sleep(0): the ticker is woken (and
                        # measured) after each decode, not after the next one.
                        await asyncio.sleep(TICK)
                    else:
                        await hashers[mode].pdq(body)
            late, seconds = await ticking(work)
            if mode == "worker":
                worker_seconds[0] = seconds
            out[mode] = {"images": 0 if mode == "idle" else len(group), "seconds": seconds,
                         "ticks": len(late), "max_ms": max(late), "p99_ms": quantile(late, .99),
                         "median_ms": statistics.median(late)}
            print(f"... stall {size} {mode}: max {max(late):.1f} ms ({load()})",
                  file=sys.stderr, flush=True)
    finally:
        for hasher in hashers.values():
            hasher.close()
    return out


def stall(bodies: dict[tuple[str, str], list[bytes]]) -> dict[str, dict[str, dict[str, float]]]:
    from lab.images import encode, picture

    tiny = encode(picture(1, (64, 64)), "PNG")
    sizes = sorted({size for size, _ in bodies}, key=lambda s: int(s.split("x")[0]))
    out = {}
    for size in sizes:
        # Every format in turn, 3 of each (the first 3 seeds), STALL_ROUNDS times over.
        group = [body for (s, _fmt), bs in bodies.items() if s == size
                 for body in bs[:3]] * STALL_ROUNDS
        out[size] = asyncio.run(stall_runs(size, group, tiny))
    return out


# -- report ------------------------------------------------------------------------


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def report(cells: list[Cell], stalls: dict[str, dict[str, dict[str, float]]], reps: int) -> None:
    by_key = {(c.size, c.fmt, c.mode): c for c in cells}
    rows = list(dict.fromkeys((c.size, c.fmt) for c in cells))
    if rows:
        cost_tables(rows, by_key, reps)
    if stalls:
        stall_table(stalls)


def cost_tables(rows: list[tuple[str, str]], by_key: dict[tuple[str, str, str], Cell],
                reps: int) -> None:
    print(f"\nCost per decoded image, {reps} decodes per row: ms, median / p90")
    print(f"{'size':>9} {'format':>6} {'KiB':>6} | {'in-process wall':>15} {'CPU':>13} | "
          f"{'thread wall':>15} {'CPU':>13}")
    for size, fmt in rows:
        a, t = by_key[(size, fmt, "in-process")], by_key[(size, fmt, "thread")]
        sa, st = a.summary(), t.summary()
        print(f"{size:>9} {fmt:>6} {a.bytes_median / 1024:>6.0f} | "
              f"{sa['wall_med']:>7.1f} / {sa['wall_p90']:<6.1f} {sa['cpu_med']:>6.1f} / "
              f"{sa['cpu_p90']:<6.1f}| {st['wall_med']:>7.1f} / {st['wall_p90']:<6.1f} "
              f"{st['cpu_med']:>6.1f} / {st['cpu_p90']:<6.1f}")
    print("\nThe same through one worker process (PdqHasher, workers=1), ms, median / p90; "
          "worker RSS in MiB")
    print(f"{'size':>9} {'format':>6} | {'wall (IPC incl.)':>16} {'CPU here':>11} "
          f"{'decode CPU there':>16} {'worker CPU mean':>15} | {'RSS idle → peak':>15}")
    for size, fmt in rows:
        w = by_key[(size, fmt, "worker")]
        sw = w.summary()
        print(f"{size:>9} {fmt:>6} | {sw['wall_med']:>7.1f} / {sw['wall_p90']:<7.1f} "
              f"{sw['cpu_med']:>4.1f} / {sw['cpu_p90']:<4.1f} {sw['wcpu_med']:>7.1f} / "
              f"{sw['wcpu_p90']:<7.1f} {w.worker_stat_ms:>15.1f} | "
              f"{w.worker_rss_kib / 1024:>6.0f} → {w.worker_hwm_kib / 1024:<6.0f}")


def stall_table(stalls: dict[str, dict[str, dict[str, float]]]) -> None:
    print("\nEvent-loop stall: a 1 ms ticker's lateness while the images are hashed one after "
          "the other\n(3 per format, 4 times over)")
    print(f"{'size':>9} {'mode':>8} {'images':>6} {'seconds':>8} {'ticks':>6} "
          f"{'late max ms':>11} {'p99 ms':>7} {'median ms':>9}")
    for size, modes in stalls.items():
        for mode, row in modes.items():
            print(f"{size:>9} {mode:>8} {row['images']:>6} {row['seconds']:>8.2f} "
                  f"{row['ticks']:>6} {row['max_ms']:>11.1f} {row['p99_ms']:>7.2f} "
                  f"{row['median_ms']:>9.2f}")


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES),
                        help="WxH (default: %(default)s)")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    parser.add_argument("--reps", type=int, default=30, help="decodes per row (default 30)")
    parser.add_argument("--seeds", type=int, default=3, help="pictures per size (default 3)")
    parser.add_argument("--grain", type=float, default=12.0,
                        help="noise sigma added to the drawing (default 12; 0: the smooth drawing)")
    parser.add_argument("--skip-stall", action="store_true", help="only the cost per image")
    parser.add_argument("--skip-cost", action="store_true", help="only the event-loop stall")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    import pdqhash  # noqa: F401
    import PIL

    started = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"PDQ decode cost, {started}; {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"Pillow {PIL.__version__}; {load()}")
    sizes = [parse_size(s) for s in args.sizes]
    made = time.perf_counter()
    bodies = encoded(sizes, args.formats, args.seeds, args.grain)
    print(f"pictures made and encoded in memory in {time.perf_counter() - made:.1f} s",
          file=sys.stderr)
    cells = [] if args.skip_cost else cost(bodies, args.reps)
    stalls = {} if args.skip_stall else stall(bodies)
    report(cells, stalls, args.reps)
    print(f"\n({load()} at the end)")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "date": started, "argv": sys.argv[1:], "cpus": os.cpu_count(),
            "cells": [{**asdict(c), **c.summary()} for c in cells], "stall": stalls},
            indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Same picture, other bytes: PDQ perceptual hashes, computed in memory.

Hosters, their CDNs and image services serve the reported picture with other
bytes (metadata stripped, recompressed, converted to WebP or AVIF, resized).
A SHA-256 comparison calls that `changed`; a PDQ comparison
(Meta's PDQ, the hash hotlines and Project Arachnid exchange) sees the same
picture. This module decides *whether* a served file is decoded, decodes it
(Pillow, in memory, within a pixel cap), computes its PDQ hash (``pdqhash``,
the binding of Meta's reference C++) and drops the pixels at once. Nothing
is written: not the file, not a thumbnail, not the pixels.

Decoding runs in worker processes (`PdqHasher`), never on the crawl's event
loop: a slow decode stalls no other request, and a decode that runs past
HOSTWATCH_PDQ_TIMEOUT is ended by killing its worker (a thread cannot be
stopped). Each worker's address space is capped (`WORKER_MEMORY`), so a
decoder that goes wild fails there, not in the crawler.

The rules (`Reference.compare`) are pure:

- same SHA-256 as the reference: the reported file;
- else a PDQ of quality at least HOSTWATCH_PDQ_MIN_QUALITY within
  HOSTWATCH_PDQ_THRESHOLD bits (Hamming distance) of the reference PDQ, as
  served or turned or mirrored (Meta's dihedral hashes): the same picture,
  re-encoded;
- a low-quality hash (a flat, tiny or noise-like image) never matches: PDQ's
  own quality score says its bits are noise;
- bytes that are no picture (`NOT_AN_IMAGE`) are not the reported one; a file
  that could not be decoded within the limits (pixel cap, time-out, a
  damaged file) is *inconclusive* (`Match.UNKNOWN`): no conclusion, never a
  removal.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import multiprocessing
import os
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kernel.config import Config
from kernel.urls import site_of

# PDQ's usual match threshold (Meta's pdq/README: 31 of 256 bits) and the
# quality below which its hashes are not to be trusted (Meta uses 50).
DEFAULT_THRESHOLD = 31
DEFAULT_MIN_QUALITY = 50
# Images are hashed at this size at most: PDQ reduces every image to 64x64
# anyway, and Meta's own hasher downsamples to 512 first for speed.
HASH_SIDE = 512
# The image formats decoded, by their bytes (never by the Content-Type the
# server claims): those served on the web. Anything else is "not an image".
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "AVIF", "BMP")
# The address-space cap of a decode worker (bytes): numpy, Pillow and one
# image within HOSTWATCH_PDQ_MAX_PIXELS fit easily.
WORKER_MEMORY = 3 * 1024 ** 3
NOT_AN_IMAGE = "not an image (its bytes are no JPEG, PNG, GIF, WebP, AVIF or BMP)"
# Bytes enough to tell an image by its start (`looks_like_image`).
SNIFF_BYTES = 16
# Time-outs of one host's images after which its images are no longer decoded.
STRIKES = 3
# Seconds a decode worker may take to start (spawn, imports).
WORKER_START_SECONDS = 60.0
_TOO_SLOW = "image took longer than"
# Magic numbers of the formats above: a body that starts with none of them
# is not decoded at all (a page, a video, a lie about its type).
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")
# Picture formats not decoded (TIFF, JPEG XL as codestream and as container,
# JPEG 2000): such a file may be the picture, so no conclusion is drawn.
_OTHER_MAGIC = (b"II*\x00", b"MM\x00*", b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n",
                b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xffO\xffQ")
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs")


class Match(StrEnum):
    """How a served file matched the case's reference, if it did."""

    SHA256 = "sha256"  # the very bytes reported
    PDQ = "pdq"  # the same picture, other bytes
    NONE = "none"  # compared, and it is not the reported file
    # Other bytes that may be the picture, but could not be decoded within
    # hostwatch's limits (pixel cap, time-out, a damaged file): no conclusion,
    # and never counted as removal.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Pdq:
    """What a decode left: a PDQ hash and its quality, or why there is none."""

    hash: str | None = None  # 64 hex digits
    quality: int | None = None  # 0..100 (PDQ's own gradient score)
    error: str | None = None  # in our words; never bytes of the file
    # The hashes of the picture turned and mirrored (PDQ's seven other
    # dihedral transforms): a mirrored or rotated copy is the same picture.
    turned: tuple[str, ...] = ()
    # No hash, but no proof either: the file may be the picture and could not
    # be decoded within the limits (vs. `NOT_AN_IMAGE`: its bytes are no picture).
    inconclusive: bool = False

    @property
    def usable(self) -> bool:
        return self.hash is not None


@dataclass(frozen=True)
class Comparison:
    match: Match
    distance: int | None = None  # PDQ Hamming distance, when PDQ was compared
    reason: str = ""  # how it was decided, for the check's reason

    @property
    def matched(self) -> bool:
        return self.match in (Match.SHA256, Match.PDQ)


@dataclass(frozen=True)
class Reference:
    """A case's reference hashes, and the rule that compares with them."""

    sha256: str | None = None
    pdq: str | None = None
    threshold: int = DEFAULT_THRESHOLD
    min_quality: int = DEFAULT_MIN_QUALITY
    learn: bool = False  # no reference PDQ yet: learn it from a SHA-256 match

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", self.sha256.lower() if self.sha256 else None)
        object.__setattr__(self, "pdq", self.pdq.lower() if self.pdq else None)

    @property
    def known(self) -> bool:
        return self.sha256 is not None or self.pdq is not None

    def learns(self, sha256: str | None, pdq: Pdq | None) -> bool:
        """Whether the case learns its reference PDQ from a file with these
        hashes: its bytes are the reported ones, it has no reference PDQ
        yet, and the PDQ is of usable quality."""
        return (self.learn and self.pdq is None and sha256 is not None
                and sha256 == self.sha256 and pdq is not None and pdq.hash is not None
                and (pdq.quality or 0) >= self.min_quality)

    def needs_pdq(self, sha256: str | None) -> bool:
        """Whether a served file with this SHA-256 must be decoded: to compare
        it with the reference PDQ (its bytes differ), or to learn the
        reference PDQ from it (its bytes are the reported ones)."""
        if sha256 is not None and sha256 == self.sha256:
            return self.pdq is None and self.learn
        return self.pdq is not None

    def compare(self, sha256: str | None, pdq: Pdq | None) -> Comparison:
        """Compare a served file (its SHA-256, its PDQ if one was computed)."""
        if sha256 is not None and sha256 == self.sha256:
            return Comparison(Match.SHA256, reason="matches the reference SHA-256")
        if self.pdq is None:
            return Comparison(Match.NONE, reason="hash differs")
        if pdq is None:
            return Comparison(Match.NONE, reason="hash differs; no picture to compare")
        if pdq.hash is None:
            return Comparison(Match.UNKNOWN if pdq.inconclusive else Match.NONE,
                              reason=f"hash differs; not compared by picture: {pdq.error}")
        distance = hamming(pdq.hash, self.pdq)
        turned = min((hamming(h, self.pdq) for h in pdq.turned), default=distance)
        how = ""
        if distance > self.threshold >= turned:
            distance, how = turned, ", turned or mirrored"
        quality = pdq.quality or 0
        if quality < self.min_quality:
            return Comparison(Match.NONE, distance, (
                f"hash differs; PDQ quality {quality} is under {self.min_quality} (too little "
                "structure: a flat, tiny or noise-like picture), so it is not compared by "
                "picture"))
        if distance <= self.threshold:
            return Comparison(Match.PDQ, distance, (
                f"same picture{how}: PDQ distance {distance} ≤ {self.threshold} bits, "
                f"quality {quality}"))
        return Comparison(Match.NONE, distance, (
            f"hash differs; another picture: PDQ distance {distance} > {self.threshold} bits"))


def hamming(a: str, b: str) -> int:
    """Bits that differ between two PDQ hashes (64 hex digits each)."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def looks_like_image(body: bytes) -> bool:
    """Whether ``body`` starts like one of `FORMATS` (by its bytes only)."""
    return body.startswith(_MAGIC) or (body[:4] == b"RIFF" and body[8:12] == b"WEBP") or (
        body[4:8] == b"ftyp" and body[8:12] in (b"avif", b"avis", b"mif1", b"msf1"))


def _other_image(start: bytes) -> str | None:
    """The name of a picture format hostwatch does not decode, by its bytes."""
    if start.startswith(_OTHER_MAGIC):
        return "TIFF, JPEG XL or JPEG 2000"
    if start[4:8] == b"ftyp" and start[8:12] in _HEIF_BRANDS:
        return "HEIF/HEIC"
    return None


def undecodable(start: bytes) -> Pdq | None:
    """What a file that starts with ``start`` (`SNIFF_BYTES` of it) gives
    without a decode: `NOT_AN_IMAGE` for bytes that are no picture; an
    inconclusive result for a picture format hostwatch does not decode (it
    may be the picture); None for a file to decode."""
    if looks_like_image(start):
        return None
    other = _other_image(start)
    if other is not None:
        return _inconclusive(f"a picture in a format hostwatch does not decode ({other})")
    return Pdq(error=NOT_AN_IMAGE)


def pdq_of_image(body: bytes, max_pixels: int) -> Pdq:
    """Decode ``body`` in memory and return its PDQ hash; the pixels are dropped.

    Runs in a decode worker (`PdqHasher`); callable directly in tests. Every
    failure is a `Pdq` with an error in our words: never an exception, never
    a byte of the file. Bytes that are no picture at all give `NOT_AN_IMAGE`;
    every other failure is *inconclusive* (the file may be the picture).
    """
    sniffed = undecodable(body[:SNIFF_BYTES])
    if sniffed is not None:
        return sniffed
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow's warnings (a bomb's first limit, corrupt EXIF...) are
            # not ours to pass on: our own pixel cap below decides.
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(body), formats=FORMATS) as image:
                width, height = image.size
                # JPEG: decoded at 1/2 to 1/8 scale (never below HASH_SIDE),
                # so an upscaled copy costs no more than the original.
                image.draft("RGB", (HASH_SIDE, HASH_SIDE))
                if image.size[0] * image.size[1] > max_pixels:
                    scaled = "" if image.size == (width, height) else (
                        f", {image.size[0]}×{image.size[1]} at the smallest JPEG scale")
                    return _inconclusive(f"image of {width}×{height} pixels{scaled} is over the "
                                         f"cap of {max_pixels:,} (HOSTWATCH_PDQ_MAX_PIXELS): "
                                         "not decoded")
                rgb = image.convert("RGB")  # the first frame of an animation
            if max(rgb.size) > HASH_SIDE:
                rgb.thumbnail((HASH_SIDE, HASH_SIDE))
            return _pdq(rgb)
    except Image.DecompressionBombError:
        return _inconclusive("decompression bomb: the image claims more pixels than Pillow "
                             "allows")
    except UnidentifiedImageError:
        return _inconclusive("an image Pillow cannot read (damaged, or its bytes lie about "
                             "their format)")
    except MemoryError:
        return _inconclusive("image could not be decoded (out of memory)")
    except Exception as exc:  # a decoder's own error (OSError, RuntimeError...): its kind only
        return _inconclusive(f"image could not be decoded ({_what(exc)})")


def _inconclusive(error: str) -> Pdq:
    return Pdq(error=error, inconclusive=True)


def _what(exc: BaseException) -> str:
    """An exception in our words: Pillow's messages quote no image bytes, but
    a decoder's message is not ours to pass on, so only its kind is kept,
    and the one message that says what happened."""
    text = str(exc)
    if "truncated" in text or isinstance(exc, EOFError):
        return "truncated file"
    return type(exc).__name__


def _pdq(rgb: Any) -> Pdq:
    import numpy as np
    import pdqhash

    pixels = np.asarray(rgb, dtype=np.uint8)
    del rgb
    try:
        # The picture as it is, then turned and mirrored (Meta's dihedral
        # hashes: one pass over the pixels for all eight).
        hashes, quality = pdqhash.compute_dihedral(pixels)
    finally:
        del pixels
    # pdqhash gives the 256 bits most significant first: the order of the
    # hex form Meta's tools and ThreatExchange use.
    hexes = [np.packbits(bits.astype(np.uint8)).tobytes().hex() for bits in hashes]
    return Pdq(hash=hexes[0], quality=int(quality), turned=tuple(hexes[1:]))


@dataclass(frozen=True)
class PdqSettings:
    threshold: int = DEFAULT_THRESHOLD
    min_quality: int = DEFAULT_MIN_QUALITY
    max_pixels: int = 50_000_000
    timeout: float = 10.0
    workers: int = 1
    enabled: bool = True

    @classmethod
    def from_config(cls, config: Config) -> PdqSettings:
        return cls(config.pdq_threshold, config.pdq_min_quality, config.pdq_max_pixels,
                   config.pdq_timeout, config.pdq_workers, config.pdq)

    def reference(self, sha256: str | None, pdq: str | None) -> Reference:
        """A case's reference under these settings (PDQ off: SHA-256 only)."""
        if not self.enabled:
            return Reference(sha256=sha256)
        return Reference(sha256=sha256, pdq=pdq, threshold=self.threshold,
                         min_quality=self.min_quality, learn=pdq is None and bool(sha256))


def _limit_worker() -> None:
    """A decode worker's set-up: one thread for numpy, an address-space cap,
    no core dump (it would hold the pixels), no warnings on stderr."""
    import ctypes
    import resource

    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = "1"
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = WORKER_MEMORY if hard == resource.RLIM_INFINITY else min(WORKER_MEMORY, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError, AttributeError):
        # PR_SET_DUMPABLE 0: no core handler (systemd-coredump, apport) gets
        # this process's memory either.
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    warnings.simplefilter("ignore")
    # Importing now makes the first image as fast as the others.
    import numpy  # noqa: F401
    import pdqhash  # noqa: F401
    from PIL import Image

    # The worker's own cap (HOSTWATCH_PDQ_MAX_PIXELS, after JPEG's reduced
    # decode) decides; Pillow's would refuse an upscaled JPEG it can decode small.
    Image.MAX_IMAGE_PIXELS = None


class PdqHasher:
    """PDQ off the event loop: a pool of decode worker processes.

    ``await hasher.pdq(body, host)`` decodes in a worker and returns a `Pdq`.
    At most ``workers`` decodes run at once; the others wait their turn, and
    HOSTWATCH_PDQ_TIMEOUT counts from the start of an image's own decode (a
    worker's start-up is not counted). A decode past it ends as an
    inconclusive error and the pool is killed (a new one replaces it; decodes
    that ran beside it are tried again). A site (a registrable domain, so
    that its subdomains count as one) whose images ran out of time `STRIKES`
    times gets no more decodes in this crawl: a hostile host serving slow
    images must not hold the night's checks up. Its images are then not
    compared (inconclusive: never counted as removal).
    """

    def __init__(self, settings: PdqSettings,
                 decode: Callable[[bytes, int], Pdq] = pdq_of_image) -> None:
        self.settings = settings
        self._decode = decode
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._turns: asyncio.Semaphore | None = None
        self._strikes: dict[str, int] = {}
        # Pools killed for a time-out (weakly held: gone with their last decode).
        self._killed: weakref.WeakSet[concurrent.futures.ProcessPoolExecutor] = weakref.WeakSet()
        self._warm: concurrent.futures.ProcessPoolExecutor | None = None  # started, all workers
        self._warming: asyncio.Future[None] | None = None
        self.decoded = 0  # images decoded (for the crawl's stats)
        self.seconds = 0.0  # wall time of those decodes

    async def pdq(self, body: bytes, host: str | None = None) -> Pdq:
        site = site_of(f"http://[{host}]/" if ":" in host else f"http://{host}/") \
            if host else None
        if self._turns is None:
            self._turns = asyncio.Semaphore(max(self.settings.workers, 1))
        async with self._turns:
            # Asked once its turn has come: strikes may have come meanwhile.
            if site is not None and self._strikes.get(site, 0) >= STRIKES:
                return _inconclusive(f"not decoded: this site's images took longer than "
                                     f"{self.settings.timeout:g} s to decode {STRIKES} times "
                                     "in this crawl")
            loop = asyncio.get_running_loop()
            if self.settings.workers:
                await self._ready()
            started = loop.time()
            try:
                result = await self._run(body)
            finally:
                self.decoded += 1
                self.seconds += loop.time() - started
        if result.error is not None and result.error.startswith(_TOO_SLOW) and site is not None:
            self._strikes[site] = self._strikes.get(site, 0) + 1
        return result

    async def _run(self, body: bytes) -> Pdq:
        timeout = self.settings.timeout
        slow = _inconclusive(f"{_TOO_SLOW} {timeout:g} s to decode (HOSTWATCH_PDQ_TIMEOUT)")
        if self.settings.workers == 0:
            # In a thread of the crawl: off the event loop, but a decode past
            # the time-out cannot be stopped (only no longer waited for).
            try:
                return await asyncio.wait_for(asyncio.to_thread(
                    self._decode, body, self.settings.max_pixels), timeout)
            except TimeoutError:
                return slow
            except Exception as exc:  # a decode function that raised: its kind only
                return _inconclusive(f"image could not be decoded ({type(exc).__name__})")
        for attempt in range(2):
            if attempt:
                await self._ready()  # a new pool's start-up is not this image's time
            pool = self._executor()
            future = pool.submit(self._decode, body, self.settings.max_pixels)
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
            except TimeoutError:
                self._kill(pool, timed_out=True)
                return slow
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # The check gave up (a browser visit's time-out): its
                    # decode must not run on and eat the next image's time.
                    self._kill(pool, timed_out=True)
                    raise
                if pool in self._killed:
                    continue  # its pool was ended for another image: this one again
                return _inconclusive("image could not be decoded (the decode was cancelled)")
            except concurrent.futures.process.BrokenProcessPool:
                if pool in self._killed:
                    continue  # killed for another image's time-out: this one again
                # The worker died under this image: a decoder crash, or its
                # memory cap (WORKER_MEMORY) reached.
                self._kill(pool)
                break
            except Exception as exc:  # a decode function that raised: its kind only
                return _inconclusive(f"image could not be decoded ({type(exc).__name__})")
        return _inconclusive("image could not be decoded (the decoder crashed)")

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a fork of a process with a reactor and threads is unsafe.
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.settings.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_limit_worker)
        return self._pool

    async def _ready(self) -> None:
        """Start every worker of the pool (imports and all) before an image's
        clock starts; decodes waiting meanwhile wait for the same start."""
        pool = self._executor()
        if pool is self._warm:
            return
        if self._warming is None:
            self._warming = asyncio.ensure_future(self._start(pool))
        await asyncio.shield(self._warming)

    async def _start(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        """Never raises: a start that failed (the pool was killed meanwhile,
        a worker could not start) leaves the pool cold, and the image's own
        decode says what is wrong."""
        try:
            # One task per worker at once: the executor starts a process for
            # each task that finds no idle one.
            # The decode function goes along, so that the module it lives in
            # is imported now, not on the first image's clock.
            pings = [asyncio.wrap_future(pool.submit(_ready, self._decode))
                     for _ in range(self.settings.workers)]
            done = await asyncio.wait_for(asyncio.gather(*pings, return_exceptions=True),
                                          WORKER_START_SECONDS)
            if all(result is True for result in done):
                self._warm = pool
            else:
                self._kill(pool)
        except (TimeoutError, RuntimeError):  # RuntimeError: the pool was shut down
            self._kill(pool)
        finally:
            self._warming = None

    def _kill(self, pool: concurrent.futures.ProcessPoolExecutor, *,
              timed_out: bool = False) -> None:
        """End ``pool`` now, its running decodes too (Python 3.14 has
        ``kill_workers()``; before it, the executor's process table is the way).
        ``timed_out``: for an image's time-out, so the decodes that were
        running beside it are tried again in a new pool."""
        if timed_out:
            self._killed.add(pool)
        if self._pool is pool:
            self._pool = None
        processes = dict(getattr(pool, "_processes", None) or {})
        for process in processes.values():
            process.kill()
        # Work still queued fails with BrokenProcessPool (and is tried again
        # in a new pool): cancelling it would look like its caller gave up.
        pool.shutdown(wait=False, cancel_futures=False)

    def close(self) -> None:
        """Stop the workers now (a hostile image may still be decoding)."""
        if self._pool is not None:
            self._kill(self._pool)


def _ready(decode: Callable[[bytes, int], Pdq]) -> bool:
    """A worker's start-up ping; unpickling ``decode`` imported its module."""
    return True


_SHARED: dict[PdqSettings, PdqHasher] = {}


def shared_hasher(settings: PdqSettings) -> PdqHasher:
    """One hasher (one worker pool) per process and settings: the HTTP checks
    of the spider and the media of the browser checks share it."""
    hasher = _SHARED.get(settings)
    if hasher is None:
        hasher = _SHARED[settings] = PdqHasher(settings)
    return hasher


def close_shared() -> None:
    """Stop every shared hasher's workers (at the end of a crawl)."""
    while _SHARED:
        _SHARED.popitem()[1].close()

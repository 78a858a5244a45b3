"""crawler.perceptual without a crawl: the comparison rules, the PDQ of real
pictures made in memory, and the decode workers (time-out kill, a crashed
decoder, recovery, thread mode)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.perceptual import (
    Match,
    Pdq,
    PdqHasher,
    PdqSettings,
    Reference,
    hamming,
    looks_like_image,
    pdq_of_image,
)
from crawler.verdict import Observation, PlaceholderRules, body_features, classify
from kernel.model import Verdict
from lab.images import (
    SAME_PICTURE,
    encode,
    flat_reported,
    hostile,
    picture,
    reported,
    variants,
)

SHA = "ab" * 32
PDQ = "f" * 64
MAX_PIXELS = 50_000_000
hashes = st.integers(min_value=0, max_value=2 ** 256 - 1).map(lambda n: f"{n:064x}")


def flipped(pdq: str, bits: int) -> str:
    """``pdq`` with its lowest ``bits`` bits flipped."""
    return f"{int(pdq, 16) ^ ((1 << bits) - 1):064x}"


# -- the rules --------------------------------------------------------------

def test_the_reported_bytes_match_by_sha256_without_a_picture():
    comparison = Reference(sha256=SHA.upper(), pdq=PDQ).compare(SHA, None)
    assert (comparison.match, comparison.distance) == (Match.SHA256, None)


@pytest.mark.parametrize(("bits", "match"), [(0, Match.PDQ), (31, Match.PDQ),
                                             (32, Match.NONE), (256, Match.NONE)])
def test_the_threshold_is_inclusive(bits, match):
    comparison = Reference(sha256=SHA, pdq=PDQ).compare("cd" * 32, Pdq(flipped(PDQ, bits), 100))
    assert (comparison.match, comparison.distance) == (match, bits)
    assert f"PDQ distance {bits}" in comparison.reason


@pytest.mark.parametrize(("quality", "match"), [(49, Match.NONE), (50, Match.PDQ),
                                                (0, Match.NONE), (100, Match.PDQ)])
def test_a_hash_under_the_quality_floor_never_matches(quality, match):
    comparison = Reference(pdq=PDQ).compare(SHA, Pdq(PDQ, quality))
    assert comparison.match is match
    if match is Match.NONE:
        assert f"quality {quality} is under 50" in comparison.reason


def test_threshold_and_floor_are_the_settings():
    reference = PdqSettings(threshold=8, min_quality=90).reference(SHA, PDQ)
    assert reference.compare(None, Pdq(flipped(PDQ, 8), 90)).match is Match.PDQ
    assert reference.compare(None, Pdq(flipped(PDQ, 9), 90)).match is Match.NONE
    assert reference.compare(None, Pdq(PDQ, 89)).match is Match.NONE


def test_without_a_picture_the_reason_says_why():
    reference = Reference(sha256=SHA, pdq=PDQ)
    assert "no picture to compare" in reference.compare("cd" * 32, None).reason
    failed = reference.compare("cd" * 32, Pdq(error="decompression bomb: too big"))
    assert (failed.match, failed.reason) == (
        Match.NONE, "hash differs; not compared by picture: decompression bomb: too big")
    assert Reference(sha256=SHA).compare("cd" * 32, Pdq(PDQ, 100)).reason == "hash differs"


def test_what_is_decoded_and_what_is_learned():
    learning = PdqSettings().reference(SHA, None)
    assert learning.learn and learning.needs_pdq(SHA)  # the reported bytes: learn their PDQ
    assert not learning.needs_pdq("cd" * 32)  # other bytes, nothing to compare with
    compared = PdqSettings().reference(SHA, PDQ)
    assert not compared.needs_pdq(SHA) and compared.needs_pdq("cd" * 32)
    assert PdqSettings().reference(None, PDQ).needs_pdq("cd" * 32)
    off = PdqSettings(enabled=False).reference(SHA, PDQ)
    assert (off.pdq, off.learn, off.needs_pdq("cd" * 32), off.needs_pdq(SHA)) == (
        None, False, False, False)


@given(hashes, hashes, hashes)
def test_hamming_is_a_distance(a, b, c):
    assert hamming(a, a) == 0
    assert hamming(a, b) == hamming(b, a) == bin(int(a, 16) ^ int(b, 16)).count("1")
    assert 0 <= hamming(a, b) <= 256
    assert hamming(a, c) <= hamming(a, b) + hamming(b, c)


@given(hashes, st.integers(0, 256), st.integers(0, 100))
def test_compare_follows_threshold_and_floor(reference_pdq, bits, quality):
    served = flipped(reference_pdq, bits)
    comparison = Reference(pdq=reference_pdq).compare(None, Pdq(served, quality))
    matched = bits <= 31 and quality >= 50
    assert comparison.match is (Match.PDQ if matched else Match.NONE)
    assert comparison.distance == bits


# -- real pictures ----------------------------------------------------------

def test_re_encodings_of_the_reported_picture_match_and_others_do_not():
    reference = Reference(sha256="00" * 32, pdq=pdq_of_image(reported(1), MAX_PIXELS).hash)
    for name in SAME_PICTURE:
        assert reference.compare(None, pdq_of_image(variants(1)[name], MAX_PIXELS)).match is (
            Match.PDQ), name
    assert reference.compare(None, pdq_of_image(variants(1)["other"], MAX_PIXELS)).match is (
        Match.NONE)
    flat = pdq_of_image(flat_reported(), MAX_PIXELS)
    assert flat.quality is not None and flat.quality < 50


@pytest.mark.parametrize(("name", "says"), [
    ("bomb", "decompression bomb"), ("canvas", "over the cap"),
    ("truncated", "truncated file"), ("lies", "not an image"),
    ("header_only", "could not be decoded"),
])
def test_hostile_files_give_a_reason_quickly(name, says):
    started = time.monotonic()
    result = pdq_of_image(hostile()[name][0], MAX_PIXELS)
    assert time.monotonic() - started < 2
    assert result.hash is None and says in (result.error or "")


def test_the_bytes_decide_what_is_an_image():
    assert looks_like_image(hostile()["png_as_jpeg"][0])
    assert looks_like_image(variants(1)["avif"]) and looks_like_image(variants(1)["webp"])
    assert not looks_like_image(hostile()["lies"][0])


# -- the decode workers -----------------------------------------------------

def decode_slowly(body: bytes, max_pixels: int) -> Pdq:
    """A decoder for the worker tests (importable by a spawned worker):
    ``sleep:<s>`` sleeps, ``crash`` ends its process, anything else decodes."""
    if body.startswith(b"sleep:"):
        time.sleep(float(body[6:]))
        return Pdq(error="slept")
    if body == b"crash":
        os._exit(3)
    return pdq_of_image(body, max_pixels)


def test_a_decode_past_the_time_out_is_killed_and_the_next_one_works():
    hasher = PdqHasher(PdqSettings(timeout=3, workers=1), decode=decode_slowly)

    async def run() -> tuple[Pdq, Pdq, Pdq, float]:
        warm = await hasher.pdq(reported(1))  # the worker is up
        started = time.monotonic()
        slow = await hasher.pdq(b"sleep:60")
        waited = time.monotonic() - started
        return warm, slow, await hasher.pdq(variants(1)["webp"]), waited

    try:
        warm, slow, after, waited = asyncio.run(run())
    finally:
        hasher.close()
    assert warm.quality == 100
    assert "took longer than 3 s to decode (HOSTWATCH_PDQ_TIMEOUT)" in (slow.error or "")
    assert waited < 10  # not the 60 s the decoder wanted
    assert after.hash == warm.hash  # a new worker took over
    assert hasher.decoded == 3


def test_a_decode_killed_for_another_s_time_out_is_tried_again():
    hasher = PdqHasher(PdqSettings(timeout=6, workers=2), decode=decode_slowly)

    async def run() -> tuple[Pdq, Pdq]:
        await asyncio.gather(hasher.pdq(b"sleep:0.1"), hasher.pdq(b"sleep:0.1"))  # both up
        slow = asyncio.ensure_future(hasher.pdq(b"sleep:60"))
        await asyncio.sleep(4.5)
        # Still running when the slow one's worker pool is killed at 6 s.
        beside = await hasher.pdq(b"sleep:2")
        return await slow, beside

    try:
        slow, beside = asyncio.run(run())
    finally:
        hasher.close()
    assert "took longer than 6 s" in (slow.error or "")
    assert beside.error == "slept"  # finished on the second try, in a new pool


def test_a_crashing_decoder_is_a_reason_and_the_workers_recover():
    hasher = PdqHasher(PdqSettings(timeout=10, workers=1), decode=decode_slowly)

    async def run() -> tuple[Pdq, Pdq]:
        return await hasher.pdq(b"crash"), await hasher.pdq(reported(1))

    try:
        crashed, after = asyncio.run(run())
    finally:
        hasher.close()
    assert crashed.error == "image could not be decoded (the decoder crashed)"
    assert after.quality == 100


def test_thread_mode_decodes_and_stops_waiting_at_the_time_out():
    hasher = PdqHasher(PdqSettings(timeout=0.5, workers=0), decode=decode_slowly)

    async def run() -> tuple[Pdq, Pdq]:
        return await hasher.pdq(reported(1)), await hasher.pdq(b"sleep:1.5")

    started = time.monotonic()
    decoded, slow = asyncio.run(run())
    assert decoded.quality == 100
    assert "took longer than 0.5 s" in (slow.error or "")
    assert time.monotonic() - started < 5


# -- after review: inconclusive decodes, turned copies, hostile decoders --------

def test_a_file_that_could_not_be_decoded_is_inconclusive_never_another_picture():
    reference = Reference(sha256="00" * 32, pdq=pdq_of_image(reported(1), MAX_PIXELS).hash)
    for name in ("bomb", "canvas", "truncated", "header_only"):
        pdq = pdq_of_image(hostile()[name][0], MAX_PIXELS)
        assert pdq.hash is None and pdq.inconclusive, name
        assert reference.compare(None, pdq).match is Match.UNKNOWN, name
    lies = pdq_of_image(hostile()["lies"][0], MAX_PIXELS)
    assert not lies.inconclusive and reference.compare(None, lies).match is Match.NONE


def test_an_inconclusive_picture_is_served_without_comparison_not_a_removal():
    reference = Reference(sha256="00" * 32, pdq="ab" * 32)
    body = body_features(b"\xff\xd8\xff" + b"x" * 100, requested_url="http://a.test/p.jpg",
                         content_type="image/jpeg", rules=PlaceholderRules())
    observation = Observation(url="http://a.test/p.jpg", status=200, content_type="image/jpeg",
                              body=body, pdq=Pdq(error="image took longer than 10 s to decode",
                                                 inconclusive=True))
    decision = classify(observation, reference=reference)
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, None)
    assert "not counted as removed" in decision.reason


def test_an_upscaled_jpeg_is_decoded_at_a_reduced_scale_within_the_pixel_cap():
    big = encode(picture(1).resize((3200, 2400)), "JPEG", quality=85)  # 7.7 million pixels
    reference = pdq_of_image(reported(1), MAX_PIXELS).hash
    pdq = pdq_of_image(big, 1_000_000)  # decoded at 1/4 scale: 800×600
    assert pdq.hash is not None, pdq.error
    assert Reference(pdq=reference).compare(None, pdq).match is Match.PDQ
    png = encode(picture(1).resize((1600, 1200)), "PNG")  # PNG has no reduced decode
    assert pdq_of_image(png, 1_000_000).inconclusive


def test_turned_and_mirrored_copies_match_with_the_nearest_orientation():
    reference = Reference(pdq=pdq_of_image(reported(1), MAX_PIXELS).hash)
    for name in ("turned", "mirrored"):
        pdq = pdq_of_image(variants(1)[name], MAX_PIXELS)
        plain = hamming(pdq.hash or "", reference.pdq or "")
        comparison = reference.compare(None, pdq)
        assert plain > 31 and comparison.match is Match.PDQ, (name, plain)
        assert comparison.distance is not None and comparison.distance < plain
        assert "turned or mirrored" in comparison.reason


def test_a_corrupt_avif_is_a_reason_not_an_exception():
    avif = variants(1)["avif"]
    corrupt = avif[:len(avif) // 2] + bytes(len(avif) - len(avif) // 2)
    pdq = pdq_of_image(corrupt, MAX_PIXELS)
    assert pdq.hash is None and pdq.inconclusive and pdq.error


def raise_runtime_error(body: bytes, max_pixels: int) -> Pdq:
    raise RuntimeError("Failed to decode frame 0: a decoder's own words")


def test_a_decode_function_that_raises_is_an_inconclusive_reason():
    for workers in (0, 1):
        hasher = PdqHasher(PdqSettings(workers=workers), decode=raise_runtime_error)
        try:
            pdq = asyncio.run(hasher.pdq(b"x"))
        finally:
            hasher.close()
        assert pdq.inconclusive and pdq.error == "image could not be decoded (RuntimeError)"


def test_a_cancelled_decode_is_killed_and_the_next_image_is_not_blamed():
    hasher = PdqHasher(PdqSettings(timeout=3, workers=1), decode=decode_slowly)

    async def run() -> Pdq:
        await hasher.pdq(b"sleep:0.1", "warm.test")
        evil = asyncio.ensure_future(hasher.pdq(b"sleep:60", "evil.test"))
        await asyncio.sleep(0.5)
        evil.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await evil
        return await hasher.pdq(b"sleep:1", "innocent.test")

    try:
        innocent = asyncio.run(run())
    finally:
        hasher.close()
    assert innocent.error == "slept"  # decoded in its own time, not after evil's
    assert hasher._strikes == {}


def test_strikes_count_per_site_so_subdomains_do_not_escape_them():
    hasher = PdqHasher(PdqSettings(timeout=0.3, workers=1), decode=decode_slowly)

    async def run() -> list[Pdq]:
        return [await hasher.pdq(b"sleep:5", f"s{i}.evil.test") for i in range(4)] + [
            await hasher.pdq(b"sleep:0.01", "fine.test")]

    try:
        results = asyncio.run(run())
    finally:
        hasher.close()
    assert all("took longer than 0.3 s" in (r.error or "") for r in results[:3])
    assert results[3].inconclusive and "this site's images took longer" in (results[3].error
                                                                           or "")
    assert results[4].error == "slept"  # another site is decoded as ever


def test_a_picture_format_not_decoded_is_inconclusive_and_a_video_is_not_a_picture():
    tiff = encode(picture(1), "TIFF")
    pdq = pdq_of_image(tiff, MAX_PIXELS)
    assert pdq.inconclusive and "format hostwatch does not decode (TIFF" in (pdq.error or "")
    heic = b"\x00\x00\x00\x18ftypheic" + bytes(64)
    assert pdq_of_image(heic, MAX_PIXELS).inconclusive
    mp4 = b"\x00\x00\x00\x18ftypisom" + bytes(64)
    video = pdq_of_image(mp4, MAX_PIXELS)
    assert not video.inconclusive and video.error and video.error.startswith("not an image")


def test_a_start_of_workers_interrupted_by_a_kill_raises_nothing():
    hasher = PdqHasher(PdqSettings(timeout=5, workers=2), decode=decode_slowly)

    async def run() -> Pdq:
        starting = asyncio.ensure_future(hasher._ready())
        await asyncio.sleep(0)
        assert hasher._pool is not None
        hasher._kill(hasher._pool, timed_out=True)  # another image's time-out, meanwhile
        await starting  # no CancelledError, no RuntimeError
        return await hasher.pdq(b"sleep:0.1")

    try:
        after = asyncio.run(run())
    finally:
        hasher.close()
    assert after.error == "slept"


def test_strikes_of_an_ipv6_host_are_its_own():
    hasher = PdqHasher(PdqSettings(timeout=0.3, workers=1), decode=decode_slowly)

    async def run() -> list[Pdq]:
        return [await hasher.pdq(b"sleep:5", "2001:db8::1") for _ in range(3)] + [
            await hasher.pdq(b"sleep:0.01", "2001:db8::2"),
            await hasher.pdq(b"sleep:0.01", "2001:db8::1")]

    try:
        results = asyncio.run(run())
    finally:
        hasher.close()
    assert results[3].error == "slept"  # another address: decoded as ever
    assert "this site's images took longer" in (results[4].error or "")

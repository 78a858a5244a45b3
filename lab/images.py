"""Real pictures for perceptual matching (crawler.perceptual), made in memory.

`picture(seed)` draws a deterministic, busy picture (shapes on a coloured
ground, softened): PDQ gives it full quality, and two seeds give pictures
far apart. `reported(seed)` is the "reported file" (a JPEG with EXIF), and
`variants(seed)` what hosters and CDNs make of it: the same picture with
other bytes. `hostile()` are files that must end in a clear verdict reason
in bounded time and memory. Nothing here is written to disk: the test
internet serves these bytes from memory.

    ref = reported(1)
    host.route("/a.jpg", Serve(variants(1)["webp"], content_type="image/webp"))
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFilter

SIZE = (800, 600)
# Every variant of one picture that must still match it, with the
# Content-Type a host serves it under.
SAME_PICTURE = ("stripped", "recompressed", "webp", "avif", "png", "resized", "turned",
                "mirrored")
CONTENT_TYPES = {"stripped": "image/jpeg", "recompressed": "image/jpeg", "webp": "image/webp",
                 "avif": "image/avif", "png": "image/png", "resized": "image/jpeg",
                 "turned": "image/jpeg", "mirrored": "image/webp",
                 "other": "image/jpeg", "flat": "image/jpeg"}


def picture(seed: int = 1, size: tuple[int, int] = SIZE) -> Image.Image:
    """A deterministic picture with plenty of structure (PDQ quality 100)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x0, y0 = rng.randrange(size[0]), rng.randrange(size[1])
        box = [x0, y0, x0 + rng.randrange(20, size[0] // 2), y0 + rng.randrange(20, size[1] // 2)]
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return image.filter(ImageFilter.GaussianBlur(2))


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


@lru_cache(maxsize=16)
def reported(seed: int = 1) -> bytes:
    """The reported file: a JPEG with EXIF metadata (a camera's, say)."""
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0132] = "2026:01:02 03:04:05"  # DateTime
    return encode(picture(seed), "JPEG", quality=92, exif=exif.tobytes())


@lru_cache(maxsize=16)
def variants(seed: int = 1) -> dict[str, bytes]:
    """What a host may serve instead of `reported(seed)`: `SAME_PICTURE` (the
    same picture, other bytes), ``other`` (another picture) and ``flat`` (a
    grey field: PDQ quality 0, it must never match)."""
    original = picture(seed)
    with Image.open(io.BytesIO(reported(seed))) as served:
        stripped = encode(served, "JPEG", quality=92)  # re-saved without its EXIF
    return {
        "stripped": stripped,
        "recompressed": encode(original, "JPEG", quality=40),
        "webp": encode(original, "WEBP", quality=70),
        "avif": encode(original, "AVIF", quality=50),
        "png": encode(original, "PNG"),
        "resized": encode(original.resize((SIZE[0] // 4, SIZE[1] // 4)), "JPEG", quality=80),
        # Turned a quarter and mirrored: a copy that evades a plain comparison.
        "turned": encode(original.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=85),
        "mirrored": encode(original.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "WEBP",
                           quality=70),
        "other": encode(picture(seed + 1000), "JPEG", quality=92),
        "flat": encode(Image.new("RGB", SIZE, (128, 128, 128)), "JPEG", quality=92),
    }


def flat_reported() -> bytes:
    """A flat picture as the reported file (its PDQ has quality 0)."""
    return variants(1)["flat"]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_header_claiming(width: int, height: int, body: bytes = b"") -> bytes:
    """A PNG whose header claims ``width`` × ``height`` pixels (1-bit grey),
    with ``body`` as its (compressed) image data."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body)
            + _png_chunk(b"IEND", b""))


@lru_cache(maxsize=1)
def hostile() -> dict[str, tuple[bytes, str]]:
    """Files a hostile host serves as images: name -> (bytes, Content-Type).

    - ``bomb``: a 1-bit PNG of 30000×30000 pixels (900 million), about 100 KB:
      decoding it would take gigabytes;
    - ``canvas``: a PNG of 12000×12000 pixels (144 million, under Pillow's own
      bomb limit but over hostwatch's pixel cap), a few hundred KB;
    - ``truncated``: the reported JPEG cut in half (the server says so: its
      Content-Length is the cut length);
    - ``lies``: a page served as ``image/jpeg``;
    - ``png_as_jpeg``: the reported picture as PNG, served as ``image/jpeg``
      (the bytes decide: it is the same picture);
    - ``header_only``: a PNG header claiming 4000×3000 pixels and no data.
    """
    rows = 30000 * ((30000 + 7) // 8 + 1)
    bomb = png_header_claiming(30000, 30000, zlib.compress(b"\0" * rows, 9))
    canvas_rows = 12000 * ((12000 + 7) // 8 + 1)
    canvas = png_header_claiming(12000, 12000, zlib.compress(b"\0" * canvas_rows, 9))
    original = reported(1)
    return {
        "bomb": (bomb, "image/png"),
        "canvas": (canvas, "image/png"),
        "truncated": (original[: len(original) // 2], "image/jpeg"),
        "lies": (b"<!doctype html><html><body><p>not a picture</p></body></html>",
                 "image/jpeg"),
        "png_as_jpeg": (encode(picture(1), "PNG"), "image/jpeg"),
        "header_only": (png_header_claiming(4000, 3000), "image/png"),
    }


def as_webp(jpeg: bytes, quality: int = 70) -> bytes:
    """The picture of ``jpeg`` re-encoded as WebP, as an image CDN serves it."""
    with Image.open(io.BytesIO(jpeg)) as image:
        return encode(image.convert("RGB"), "WEBP", quality=quality)

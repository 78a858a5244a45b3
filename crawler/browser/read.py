"""What a settled page shows a person: its media and the host's removal notice.

The page is read in every frame a person sees (the main document and each
visible iframe, same- or cross-origin) and, inside each, in the document and
in every shadow root, open or closed. An iframe is seen when its element is
visible, at least 2 x 2 CSS pixels, inside a frame that is seen. At most
`FRAMES` (20) frames are read: the main document and the first 19 iframes
that are seen, in Playwright's frame order (hidden ones do not count), among
the first `FRAMES_LOOKED` (200) iframes of the page.

Closed shadow roots cannot be reached from outside; `INIT_SCRIPT` (added to
the browser context, so it runs in every frame before the page's own
scripts) keeps a reference to each root a page attaches, and to each Blob it
turns into a ``blob:`` URL (so that a URL the page revoked once its image
was drawn can still be read).

- **Removal notices.** A "removed" text counts only where it is rendered (the
  text a person sees, not a hidden template); a "removed" selector only when
  it matches an element with a visible box. The notice's place is said in
  our own words, with the frame's URL for an http(s) iframe
  (`notice_place`): "in the page", "in an overlay", "in a closed shadow
  root", "in a cross-origin iframe (http://...)"... Nothing the page wrote
  (text, ids, classes) is returned. A notice does not stop the media from
  being read and hashed: crawler.browser.decide weighs the two.
- **Media.** http(s) URLs in page order, as before; ``data:`` and ``blob:``
  media (inline media) are read inside the page: the reader returns small
  tokens, then each one's bytes are fetched in the page (``fetch`` or the
  kept Blob), cut at ``max_body``, sent to Python as base64, decoded, hashed
  with SHA-256 in memory and dropped. Where the page's Content-Security-Policy
  forbids ``fetch`` of a ``data:`` URL, the URL itself (cut to the size that
  decodes to ``max_body``) is decoded in Python by the standard library's
  ``data:`` handler. A ``blob:`` that cannot be read is a `MediaHash` with an
  error ("shown, could not be compared"). An inline media's name in the check
  is a descriptor without its content: ``data:image/png (inline #1, 4096
  bytes)``, or the ``blob:`` URL. A ``data:`` URL's type is text the page
  wrote: only one of `MEDIA_TYPES` is named (and stored as the content type);
  any other is ``data: URL of another type (inline #1, ...)``, stored
  without a content type.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
import secrets
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from crawler.browser.decide import MediaHash
from crawler.browser.rules import Removed
from crawler.verdict import ErrorKind
from hostwatch.urls import redirect_url

if TYPE_CHECKING:
    from playwright.async_api import Frame, Page

MEDIA_READ = 200  # media URLs read from a page at most
FRAMES = 20  # frames read per page at most: the main document and 19 shown iframes
FRAMES_LOOKED = 200  # iframes (shown or not) looked at per page at most, in page.frames order
FRAME_SECONDS = 5.0  # a child frame's script may take this long to answer
BLOBS_KEPT = 64  # Blobs the init script keeps per frame (the newest)

# A name only this crawl knows: where the init script leaves what it keeps.
# Page scripts could find it (getOwnPropertyNames) but not collide with it.
KEY = f"__hw_{secrets.token_hex(12)}"

INIT_SCRIPT = """
(() => {
  const KEY = "__KEY__";
  if (Object.prototype.hasOwnProperty.call(window, KEY)) return;
  const hosts = new WeakMap();  // shadow host -> its root, open or closed
  const blobs = new Map();      // blob: URL -> the Blob, kept after revokeObjectURL
  // The browser's own fetch, before a page script can replace it.
  const fetch = window.fetch.bind(window);
  Object.defineProperty(window, KEY, {value: {hosts, blobs, fetch, inline: []},
                                      enumerable: false});
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) {
    const root = attach.call(this, init);
    hosts.set(this, root);
    return root;
  };
  const create = URL.createObjectURL;
  URL.createObjectURL = function (object) {
    const url = create.call(URL, object);
    if (object instanceof Blob) {
      blobs.set(url, object);
      if (blobs.size > __BLOBS__) blobs.delete(blobs.keys().next().value);
    }
    return url;
  };
})();
""".replace("__KEY__", KEY).replace("__BLOBS__", str(BLOBS_KEPT))

# One frame: its media (http(s) URLs, and tokens for data:/blob: ones) and
# the first "removed" text or element shown. Returns indexes, never page text.
READ_FRAME = """
([key, texts, selectors, limit]) => {
  let state = window[key];
  if (!state) {
    state = {hosts: new WeakMap(), blobs: new Map(), inline: []};
    try { Object.defineProperty(window, key, {value: state, enumerable: false}); } catch (e) {}
  }
  const shadowOf = (el) => el.shadowRoot || state.hosts.get(el) || null;
  // The document and every shadow root in it, open or closed, in tree order.
  const scopes = [document];
  let elements = 0;
  for (let i = 0; i < scopes.length && elements < 20000; i++) {
    for (const el of scopes[i].querySelectorAll("*")) {
      if (++elements > 20000) break;
      const root = shadowOf(el);
      if (root) scopes.push(root);
    }
  }
  const shown = (el) => {
    try {
      return el.checkVisibility({opacityProperty: true, visibilityProperty: true});
    } catch (e) { return false; }
  };
  const boxed = (el) => {
    if (!shown(el)) return false;
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0;
  };

  const media = [], inline = [], seen = new Set();
  const add = (value, base) => {
    if (!value || media.length >= limit) return;
    value = String(value).trim();
    if (/^(data|blob):/i.test(value)) {
      if (seen.has(value)) return;
      seen.add(value);
      media.push({i: inline.length});
      inline.push(value);
      return;
    }
    let url;
    try { url = new URL(value, base).href; } catch (e) { return; }
    if (/^https?:/i.test(url) && !seen.has(url)) { seen.add(url); media.push({u: url}); }
  };
  const srcset = (value, base) => {
    // The URL Standard's reading: a URL runs to the next space (a data: URL's
    // commas are part of it); trailing commas end the candidate.
    let rest = value || "";
    for (;;) {
      rest = rest.replace(/^[\\s,]+/, "");
      if (!rest) return;
      const url = rest.match(/^\\S+/)[0];
      rest = rest.slice(url.length);
      add(url.replace(/,+$/, ""), base);
      if (!/,$/.test(url)) rest = rest.replace(/^[^,]*/, "");
    }
  };
  const TAGS = "img, video, audio, source, embed, object, input[type=image], image";
  let styled = 0;
  for (const scope of scopes) {
    for (const el of scope.querySelectorAll(TAGS)) {
      for (const attr of ["src", "data", "poster", "href", "xlink:href"])
        add(el.getAttribute(attr), el.baseURI);
      srcset(el.getAttribute("srcset"), el.baseURI);
      if (el.currentSrc) add(el.currentSrc, el.baseURI);
    }
    for (const el of scope.querySelectorAll(scope === document ? "body *" : "*")) {
      if (++styled > 5000) break;
      const bg = getComputedStyle(el).backgroundImage;
      if (bg && bg !== "none")
        for (const m of bg.matchAll(/url\\(["']?([^"')]+)["']?\\)/g)) add(m[1], el.baseURI);
    }
  }
  for (const el of document.querySelectorAll(
      'meta[property="og:image"], meta[property="og:video"], meta[name="twitter:image"]'))
    add(el.getAttribute("content"), document.baseURI);
  state.inline = inline;

  // The notice: rendered text (innerText leaves out what is not rendered,
  // and does not cross into shadow roots), or a selector's visible element.
  const lower = (el) => (el.innerText || "").toLowerCase();
  const childrenOf = (node) => {
    const kids = [...(node.children || [])];
    const root = node instanceof Element ? shadowOf(node) : null;
    return root ? [...root.children, ...kids] : kids;
  };
  const tops = (scope) => (scope === document ? [document.body].filter(Boolean)
                                               : [...scope.children]).filter(shown);
  const holder = (scope, text) => {
    let el = tops(scope).find((k) => lower(k).includes(text));
    if (!el) return null;
    for (;;) {  // down to the smallest element that shows the whole text
      const next = childrenOf(el).find((k) => shown(k) && lower(k).includes(text));
      if (!next) return el;
      el = next;
    }
  };
  const up = (el) => el.parentElement
      || (el.getRootNode() instanceof ShadowRoot ? el.getRootNode().host : null);
  const overlay = (el) => {
    for (let n = el; n; n = up(n)) {
      try { if (n.matches("dialog[open], :modal, :popover-open")) return true; } catch (e) {}
      const style = getComputedStyle(n);
      if (style.position === "fixed" || style.position === "sticky") return true;
      if (style.position === "absolute" && Number(style.zIndex) > 0) return true;
    }
    return false;
  };
  const where = (how, which, el) => {
    const root = el.getRootNode();
    return {how, which, overlay: overlay(el),
            shadow: root instanceof ShadowRoot ? (root.mode === "closed" ? "closed" : "open")
                                               : null};
  };
  let notice = null;
  search: {
    for (const scope of scopes) {
      const text = tops(scope).map(lower).join("\\n");  // once per scope, not per text
      for (let t = 0; t < texts.length; t++) {
        const el = text.includes(texts[t]) ? holder(scope, texts[t]) : null;
        if (el) { notice = where("text", t, el); break search; }
      }
    }
    for (const scope of scopes)
      for (let s = 0; s < selectors.length; s++) {
        let found = [];
        try { found = scope.querySelectorAll(selectors[s]); } catch (e) { continue; }
        const el = [...found].find(boxed);
        if (el) { notice = where("element", s, el); break search; }
      }
  }
  return {
    media: media,
    inline: inline.map((url) => /^blob:/i.test(url)
        ? {scheme: "blob", url: url.length <= 300 ? url : null}
        : {scheme: "data",
           type: (url.match(/^data:([^;,]*)/i) || ["", ""])[1].slice(0, 60).toLowerCase()}),
    notice: notice,
  };
}
"""

# The bytes of inline media number ``index`` of the frame's last read: at
# most ``max`` of them, as base64 (in memory, straight back to Python).
READ_INLINE = """
async ([key, index, max]) => {
  const state = window[key];
  const url = state && state.inline[index];
  if (!url) return {error: "gone"};
  let blob = state.blobs.get(url) || null;
  if (!blob) {
    try {
      blob = await (await (state.fetch || fetch)(url)).blob();
    } catch (e) {
      return {error: "fetch", length: url.length};
    }
  }
  const part = blob.size > max ? blob.slice(0, max) : blob;
  const read = await new Promise((done) => {
    const reader = new FileReader();
    reader.onload = () => done(reader.result);
    reader.onerror = () => done(null);
    reader.readAsDataURL(part);
  });
  if (read === null) return {error: "read"};
  return {size: blob.size, truncated: blob.size > max, base64: read.slice(read.indexOf(",") + 1)};
}
"""

# A data: URL's first ``max`` characters, for decoding in Python when the
# page's policy forbids fetch() of data: URLs.
READ_DATA_URL = """
([key, index, max]) => {
  const state = window[key];
  const url = state && state.inline[index];
  return url && /^data:/i.test(url) ? [url.slice(0, max), url.length] : null;
}
"""

# A frame shows a person something when its element is visible and at least
# 2 x 2 CSS pixels (a 1 x 1 tracking frame shows nothing).
FRAME_SHOWN = """
(el) => el.checkVisibility({opacityProperty: true, visibilityProperty: true})
        && el.getBoundingClientRect().width >= 2 && el.getBoundingClientRect().height >= 2
"""

# The media types an inline media's name and stored content type may give:
# a data: URL's type is text the page wrote, so any other is "another type".
MEDIA_TYPES = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
    "image/svg+xml", "image/x-icon", "image/vnd.microsoft.icon", "image/tiff", "image/heic",
    "image/heif", "video/mp4", "video/webm", "video/ogg", "audio/mpeg", "audio/mp4",
    "audio/ogg", "audio/webm", "audio/wav", "audio/flac", "audio/aac"})
# A blob: URL as the browser makes it: the origin and a UUID, nothing a page
# could write content into.
_BLOB_URL = re.compile(r"blob:(?:https?://[a-z0-9.-]+(?::\d{1,5})?|null)/"
                       r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                       re.IGNORECASE)


@dataclass(frozen=True)
class Shown:
    """What a page shows a person, read from all its frames."""

    media: tuple[str, ...] = ()  # http(s) URLs and inline descriptors, page order
    inline: tuple[MediaHash, ...] = ()  # inline media read and hashed in the page
    removed: str | None = None  # the "removed" text or element and where it was found
    # How many of `media` (the first) the page showed at its last read (a
    # union of reads, crawler.browser.page); None: all of them.
    showing: int | None = None

    @property
    def shown_now(self) -> int:
        """How many of `media` (the first ones) the page shows now."""
        return len(self.media) if self.showing is None else self.showing


@dataclass(frozen=True)
class _Inline:
    frame: Frame
    index: int
    scheme: str
    type: str
    url: str | None  # a blob: URL (no content); None for data:


async def read_page(page: Page, removed: Removed, *, limit: int = MEDIA_READ, max_body: int,
                    hashed: int) -> Shown | None:
    """What ``page`` shows (see the module docstring); None when it navigated
    away while being read. Inline media among the first ``hashed`` media are
    read and hashed; the others are listed only."""
    from playwright.async_api import Error as PlaywrightError

    args = [KEY, list(removed.texts), list(removed.selectors), limit]
    try:
        main: dict[str, Any] = await page.main_frame.evaluate(READ_FRAME, args)
    except PlaywrightError as exc:
        if "context was destroyed" not in str(exc):
            raise
        return None
    frames: list[tuple[Frame, dict[str, Any]]] = [(page.main_frame, main)]
    shown_cache: dict[Frame, bool] = {page.main_frame: True}
    # Hidden frames (tracking pixels, widgets' helpers) are passed over before
    # the cap counts: they must not use up the frames a person sees.
    children = [f for f in page.frames if f is not page.main_frame][:FRAMES_LOOKED]
    for frame in children:
        if len(frames) >= FRAMES:
            break
        if frame.is_detached():
            continue
        try:
            if not await _frame_shown(frame, shown_cache):
                continue
            found = await asyncio.wait_for(frame.evaluate(READ_FRAME, args), FRAME_SECONDS)
        except (PlaywrightError, TimeoutError):
            continue  # a frame that went away or hangs: not something a person sees
        frames.append((frame, found))

    notice = next(((frame, found["notice"]) for frame, found in frames if found["notice"]),
                  None)
    media: list[str] = []
    pending: list[tuple[int, _Inline]] = []
    for frame, found in frames:
        for item in found["media"]:
            if len(media) >= limit:
                break
            if "u" in item:
                if item["u"] not in media:
                    media.append(item["u"])
                continue
            token = found["inline"][item["i"]]
            inline = _Inline(frame, item["i"], token["scheme"], token.get("type") or "",
                             token.get("url"))
            pending.append((len(media), inline))
            media.append("")  # named once its size is known
    hashes: list[MediaHash] = []
    for number, (position, inline) in enumerate(pending, start=1):
        # Hashed even beside a notice: a notice in a third-party frame (a
        # comment "deleted") does not hide the photo the page still shows.
        if position < hashed:
            result = await _hash_inline(inline, number, max_body)
            hashes.append(result)
        else:  # past the media limit: listed, not compared
            result = MediaHash(_name(inline, number, None), inline=True)
        media[position] = result.url
    words = None
    if notice is not None:
        frame, where = notice
        words = _notice(removed, where, notice_place(frame, page.main_frame, where))
    return Shown(tuple(dict.fromkeys(media)), tuple(hashes), words)


def _notice(removed: Removed, where: dict[str, Any], place: str) -> str:
    if where["how"] == "text":
        return f"text \"{removed.texts[where['which']]}\" {place}"
    return f"element {removed.selectors[where['which']]} {place}"


def notice_place(frame: Frame, main: Frame, where: dict[str, Any]) -> str:
    """Where a notice was found, in our own words and the frame's http(s) URL."""
    words = []
    if where.get("overlay"):
        words.append("in an overlay")
    if where.get("shadow") in ("open", "closed"):
        words.append(f"in {'a closed' if where['shadow'] == 'closed' else 'an open'} shadow root")
    if frame is not main:
        words.append(frame_words(frame.url, main.url))
    return " ".join(words) or "in the page"


def frame_words(url: str, top: str) -> str:
    """An iframe as a reason names it: its origin relative to the page, and
    its URL when that is http(s) (never a data:, blob: or about: URL)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        if re.fullmatch(r"[a-z][a-z0-9+.-]{0,20}", scheme):
            return f"in a{'n' if scheme[0] in 'aeiou' else ''} {scheme}: iframe"
        return "in an iframe"
    page = urlsplit(top)
    try:
        same = (scheme, parts.hostname, parts.port) == (
            page.scheme.lower(), page.hostname, page.port)
    except ValueError:
        same = False
    kind = "same-origin" if same else "cross-origin"
    return f"in a {kind} iframe ({redirect_url(url, url) or url})"


async def _frame_shown(frame: Frame, cache: dict[Frame, bool]) -> bool:
    """Whether a person can see ``frame``: its element has a visible box, and so
    has every frame around it."""
    if frame in cache:
        return cache[frame]
    parent = frame.parent_frame
    shown = False
    if parent is not None and await _frame_shown(parent, cache):
        element = await frame.frame_element()
        try:
            shown = bool(await asyncio.wait_for(element.evaluate(FRAME_SHOWN), FRAME_SECONDS))
        finally:
            await element.dispose()
    cache[frame] = shown
    return shown


async def _hash_inline(inline: _Inline, number: int, max_body: int) -> MediaHash:
    """Read one inline media's bytes in the page, hash them, drop them."""
    from playwright.async_api import Error as PlaywrightError

    content_type = media_type(inline.type)
    try:
        got: dict[str, Any] = await asyncio.wait_for(
            inline.frame.evaluate(READ_INLINE, [KEY, inline.index, max_body]), FRAME_SECONDS * 4)
        if got.get("error") == "fetch" and inline.scheme == "data":
            # The page's CSP forbids fetch(data:): decode the URL here.
            return await _hash_data_url(inline, number, max_body, content_type)
        if got.get("error"):
            return MediaHash(_name(inline, number, None), content_type=content_type,
                             error=ErrorKind.UNSUPPORTED, inline=True)
        body = base64.b64decode(got["base64"])
    except (PlaywrightError, TimeoutError, binascii.Error, KeyError, TypeError):
        return MediaHash(_name(inline, number, None), content_type=content_type,
                         error=ErrorKind.UNSUPPORTED, inline=True)
    digest = hashlib.sha256(body).hexdigest()
    size = int(got.get("size") or len(body))
    length = len(body)
    del body
    return MediaHash(_name(inline, number, size), sha256=digest, length=length,
                     content_type=content_type, truncated=bool(got.get("truncated")),
                     inline=True)


async def _hash_data_url(inline: _Inline, number: int, max_body: int,
                         content_type: str | None) -> MediaHash:
    from playwright.async_api import Error as PlaywrightError

    # Base64 takes 4 characters per 3 bytes; the header is at most a few hundred.
    cap = (max_body + 2) // 3 * 4 + 1024
    try:
        got = await asyncio.wait_for(
            inline.frame.evaluate(READ_DATA_URL, [KEY, inline.index, cap]), FRAME_SECONDS * 4)
        if not got:
            raise ValueError("no data: URL")
        url, full = str(got[0]), int(got[1])
        # The standard library's data: URL parser (RFC 2397), on this URL only.
        with urllib.request.DataHandler().data_open(urllib.request.Request(url)) as opened:
            body = opened.read(max_body + 1)
    except (PlaywrightError, TimeoutError, ValueError, binascii.Error, TypeError):
        return MediaHash(_name(inline, number, None), content_type=content_type,
                         error=ErrorKind.UNSUPPORTED, inline=True)
    truncated = full > len(url) or len(body) > max_body
    body = body[:max_body]
    digest = hashlib.sha256(body).hexdigest()
    length = len(body)
    del body, url
    return MediaHash(_name(inline, number, None if truncated else length), sha256=digest,
                     length=length, content_type=content_type, truncated=truncated, inline=True)


def _name(inline: _Inline, number: int, size: int | None) -> str:
    """An inline media's name in a check: never its content."""
    if inline.scheme == "blob":
        if inline.url and _BLOB_URL.fullmatch(inline.url):
            return inline.url
        return f"blob: URL (inline #{number})"
    kind = media_type(inline.type) or " URL of another type"
    return f"data:{kind} (inline #{number}{f', {size} bytes' if size is not None else ''})"


def media_type(declared: str) -> str | None:
    """A ``data:`` URL's declared type when it is one of `MEDIA_TYPES`, else None."""
    declared = declared.strip().lower()
    return declared if declared in MEDIA_TYPES else None

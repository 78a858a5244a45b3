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
was drawn can still be read). Against a hostile page, it also keeps the
browser's own DOM getters and methods the reader uses (`TOOLS`), so that a
page replacing one cannot fail the read or change what is hashed; exposes
all of it only as a frozen, read-only, non-enumerable window property named
by random letters (`KEY`); and makes its wrappers answer
``Function.prototype.toString`` as native code, so that a page cannot easily
tell hostwatch from a person and show it something else.

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
  tokens; a ``data:`` URL itself (cut to the size that decodes to
  ``max_body``) is then decoded in Python by the standard library's ``data:``
  handler (its bytes are its text: the page cannot make us hash others); a
  ``blob:``'s bytes are read in the page (the kept Blob, or ``fetch``), cut
  at ``max_body``, sent to Python as base64; both are hashed with SHA-256 in
  memory and dropped. When the case's reference needs a PDQ of them
  (`crawler.perceptual.Reference.needs_pdq`), the bytes are decoded by the
  crawl's `PdqHasher` (a worker process, off the event loop) before they
  are dropped. A ``blob:`` that cannot be read is a `MediaHash` with an
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
from crawler.perceptual import SNIFF_BYTES, Pdq, PdqHasher, Reference, undecodable
from crawler.verdict import ErrorKind
from kernel.urls import redirect_url

if TYPE_CHECKING:
    from playwright.async_api import Frame, Page

MEDIA_READ = 200  # media URLs read from a page at most
FRAMES = 20  # frames read per page at most: the main document and 19 shown iframes
FRAMES_LOOKED = 200  # iframes (shown or not) looked at per page at most, in page.frames order
FRAME_SECONDS = 5.0  # a child frame's script may take this long to answer
BLOBS_KEPT = 64  # Blobs the init script keeps per frame (the newest)

# A name only this crawl knows, where the init script leaves its reader: random
# letters (no prefix a page could look for); the property is non-enumerable,
# non-writable and non-configurable, its value a frozen object of functions
# that keep, in their closure, the browser's own methods and getters (taken
# before any page script runs). A page can still list it (getOwnPropertyNames),
# but not tell it from the browser's own names by its form, replace it, or
# change what it reads.
KEY = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3)) + "".join(
    secrets.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(13))

# The reader's tools: the browser's own DOM getters and methods, taken when
# this runs (in the init script: before any page script) and called through
# Function.prototype.call bound to them, so that a page replacing a prototype's
# getter or method later does not change what is read.
TOOLS = """
() => {
  const O = Object, F = Function.prototype;
  const uncurry = F.bind.call(F.bind, F.call);  // uncurry(f)(self, ...args) = f.call(self, ...args)
  const desc = O.getOwnPropertyDescriptor, define = O.defineProperty;
  const get = (proto, name) => {
    const d = proto && desc(proto, name);
    return d && d.get ? uncurry(d.get) : () => undefined;
  };
  const fn = (proto, name) => {
    const d = proto && desc(proto, name);
    return d && typeof d.value === "function" ? uncurry(d.value) : () => undefined;
  };
  const w = window, E = w.Element && w.Element.prototype, N = w.Node && w.Node.prototype;
  const D = w.Document && w.Document.prototype;
  const DF = w.DocumentFragment && w.DocumentFragment.prototype;
  const nodeType = get(N, "nodeType");
  const byType = (element, doc, frag) => (node, ...args) => {
    const t = nodeType(node);
    return (t === 1 ? element : t === 9 ? doc : frag)(node, ...args);
  };
  const listLength = get(w.NodeList && w.NodeList.prototype, "length");
  const collLength = get(w.HTMLCollection && w.HTMLCollection.prototype, "length");
  const toArray = (list, length) => {
    const out = [];
    const n = length(list) || 0;
    for (let i = 0; i < n; i++) define(out, i, {value: list[i], writable: true,
                                                  enumerable: true, configurable: true});
    return out;
  };
  const qsa = byType(fn(E, "querySelectorAll"), fn(D, "querySelectorAll"),
                     fn(DF, "querySelectorAll"));
  const kids = byType(get(E, "children"), get(D, "children"), get(DF, "children"));
  const style = fn(w, "getComputedStyle");
  const prop = fn(w.CSSStyleDeclaration && w.CSSStyleDeclaration.prototype, "getPropertyValue");
  const rect = fn(E, "getBoundingClientRect");
  const R = w.DOMRectReadOnly && w.DOMRectReadOnly.prototype;
  const rw = get(R, "width"), rh = get(R, "height");
  const img = get(w.HTMLImageElement && w.HTMLImageElement.prototype, "currentSrc");
  const av = get(w.HTMLMediaElement && w.HTMLMediaElement.prototype, "currentSrc");
  const tag = get(E, "localName");
  const S = w.ShadowRoot && w.ShadowRoot.prototype;
  const URLs = w.URL, href = get(URLs && URLs.prototype, "href");
  return {
    all: (node, selector) => toArray(qsa(node, selector), listLength),
    children: (node) => { const c = kids(node); return c ? toArray(c, collLength) : []; },
    attr: fn(E, "getAttribute"),
    shadowRoot: get(E, "shadowRoot"),
    currentSrc: (el) => { const t = tag(el);
                          return t === "img" ? img(el) : t === "video" || t === "audio" ? av(el)
                                                                                        : null; },
    baseURI: get(N, "baseURI"),
    parent: get(N, "parentElement"),
    rootNode: fn(N, "getRootNode"),
    isShadow: (node) => nodeType(node) === 11 && !!get(S, "mode")(node),
    mode: get(S, "mode"),
    host: get(S, "host"),
    isElement: (node) => nodeType(node) === 1,
    visible: fn(E, "checkVisibility"),
    box: (el) => { const r = rect(el); return [rw(r), rh(r)]; },
    matches: fn(E, "matches"),
    text: get(w.HTMLElement && w.HTMLElement.prototype, "innerText"),
    css: (el, name) => prop(style(w, el), name),
    body: get(D, "body"),
    url: (value, base) => href(new URLs(value, base)),
  };
}
"""

INIT_SCRIPT = """
(() => {
  const KEY = "__KEY__";
  const O = Object, F = Function.prototype;
  if (O.prototype.hasOwnProperty.call(window, KEY)) return;
  const uncurry = F.bind.call(F.bind, F.call);
  const tools = (__TOOLS__)();
  const M = Map.prototype, WM = WeakMap.prototype;
  const mapGet = uncurry(M.get), mapSet = uncurry(M.set), mapDelete = uncurry(M.delete);
  const mapSize = uncurry(O.getOwnPropertyDescriptor(M, "size").get);
  const mapKeys = uncurry(M.keys), next = uncurry(O.getPrototypeOf(new Map().keys()).next);
  const weakGet = uncurry(WM.get), weakSet = uncurry(WM.set);
  const hosts = new WeakMap();  // shadow host -> its root, open or closed
  const blobs = new Map();      // blob: URL -> the Blob, kept after revokeObjectURL
  const reads = new Map();      // a read's token -> the inline media URLs it found
  const fetch = window.fetch, call = uncurry;
  const fetchIt = call(fetch), toBlob = uncurry(Response.prototype.blob);
  const isBlob = (x) => { try { blobSize(x); return true; } catch (e) { return false; } };
  const blobSize = uncurry(O.getOwnPropertyDescriptor(Blob.prototype, "size").get);
  const slice = uncurry(Blob.prototype.slice), bytesOf = uncurry(Blob.prototype.arrayBuffer);
  const U8 = Uint8Array, fromCodes = String.fromCharCode, btoa = window.btoa;
  const apply = uncurry(F.apply), sub = uncurry(U8.prototype.subarray);
  const strSlice = uncurry(String.prototype.slice), test = uncurry(RegExp.prototype.test);
  const base64 = (buffer) => {
    const all = new U8(buffer);
    let text = "";
    for (let i = 0; i < all.length; i += 0x8000)
      text += apply(fromCodes, null, sub(all, i, i + 0x8000));
    return btoa(text);
  };
  const fakes = new WeakMap();  // our wrappers -> the built-in they stand in for
  const reader = O.freeze({
    tools: O.freeze(tools),
    shadowOf: (el) => weakGet(hosts, el) || null,
    keep: (token, urls) => {
      mapSet(reads, token, urls);
      if (mapSize(reads) > 8) mapDelete(reads, next(mapKeys(reads)).value);
    },
    // A data: URL the read ``token`` found (decoded in Python, never here).
    data: (token, index, max) => {
      const urls = mapGet(reads, token), url = urls && urls[index];
      return typeof url === "string" && test(/^data:/i, url)
          ? [strSlice(url, 0, max), url.length] : null;
    },
    // A blob: URL's bytes, at most ``max`` of them, as base64.
    blob: async (token, index, max) => {
      const urls = mapGet(reads, token), url = urls && urls[index];
      if (typeof url !== "string" || !test(/^blob:/i, url)) return {error: "gone"};
      let blob = mapGet(blobs, url) || null;
      try {
        if (!blob) blob = await toBlob(await fetchIt(window, url));
        const size = blobSize(blob);
        const part = size > max ? slice(blob, 0, max) : blob;
        return {size, truncated: size > max, base64: base64(await bytesOf(part))};
      } catch (e) {
        return {error: "read"};
      }
    },
  });
  O.defineProperty(window, KEY, {value: reader, enumerable: false, writable: false,
                                 configurable: false});
  // Our wrappers answer Function.prototype.toString as the built-ins they
  // replace ("function attachShadow() { [native code] }").
  const toString = F.toString, toStringCall = uncurry(toString);
  const stand = {toString() {
    const original = weakGet(fakes, this);
    return toStringCall(original === undefined ? this : original);
  }}.toString;
  weakSet(fakes, stand, toString);
  F.toString = stand;
  const attach = Element.prototype.attachShadow, attachIt = uncurry(attach);
  const wrapped = {attachShadow(init) {
    const root = attachIt(this, init);
    weakSet(hosts, this, root);
    return root;
  }}.attachShadow;
  weakSet(fakes, wrapped, attach);
  Element.prototype.attachShadow = wrapped;
  const create = URL.createObjectURL, createIt = uncurry(create);
  const made = {createObjectURL(object) {
    const url = createIt(URL, object);
    if (isBlob(object)) {
      mapSet(blobs, url, object);
      if (mapSize(blobs) > __BLOBS__) mapDelete(blobs, next(mapKeys(blobs)).value);
    }
    return url;
  }}.createObjectURL;
  weakSet(fakes, made, create);
  URL.createObjectURL = made;
})();
""".replace("__KEY__", KEY).replace("__BLOBS__", str(BLOBS_KEPT)).replace("__TOOLS__", TOOLS)

# One frame: its media (http(s) URLs, and tokens for data:/blob: ones) and
# the first "removed" text or element shown. Returns indexes, never page text.
# DOM reads go through the init script's tools (the browser's own getters),
# and each element is read on its own: one that throws is passed over.
READ_FRAME = """
([key, token, texts, selectors, limit]) => {
  // A frame the init script did not run in gets it now (later than the
  // page's scripts: the getters are then the page's, but inline media can
  // still be read).
  if (!window[key]) try { __INIT__ } catch (e) {}
  const reader = window[key] || null;
  const $ = reader ? reader.tools : (__TOOLS__)();
  const shadowOf = (el) => $.shadowRoot(el) || (reader && reader.shadowOf(el)) || null;
  // The document and every shadow root in it, open or closed, in tree order.
  const scopes = [document];
  let elements = 0;
  for (let i = 0; i < scopes.length && elements < 20000; i++) {
    for (const el of $.all(scopes[i], "*")) {
      if (++elements > 20000) break;
      try {
        const root = shadowOf(el);
        if (root) scopes.push(root);
      } catch (e) {}
    }
  }
  const shown = (el) => {
    try {
      return !!$.visible(el, {opacityProperty: true, visibilityProperty: true});
    } catch (e) { return false; }
  };
  const boxed = (el) => {
    if (!shown(el)) return false;
    const [width, height] = $.box(el);
    return width > 0 && height > 0;
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
    try { url = $.url(value, base); } catch (e) { return; }
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
    for (const el of $.all(scope, TAGS)) {
      try {
        const base = $.baseURI(el);
        for (const attr of ["src", "data", "poster", "href", "xlink:href"])
          add($.attr(el, attr), base);
        srcset($.attr(el, "srcset"), base);
        const current = $.currentSrc(el);
        if (current) add(current, base);
      } catch (e) {}
    }
    for (const el of $.all(scope, scope === document ? "body *" : "*")) {
      if (++styled > 5000) break;
      try {
        const bg = $.css(el, "background-image");
        if (bg && bg !== "none")
          for (const m of bg.matchAll(/url\\(["']?([^"')]+)["']?\\)/g)) add(m[1], $.baseURI(el));
      } catch (e) {}
    }
  }
  for (const el of $.all(document,
      'meta[property="og:image"], meta[property="og:video"], meta[name="twitter:image"]')) {
    try { add($.attr(el, "content"), $.baseURI(document)); } catch (e) {}
  }
  if (reader) reader.keep(token, inline);

  // The notice: rendered text (innerText leaves out what is not rendered,
  // and does not cross into shadow roots), or a selector's visible element.
  const lower = (el) => { try { return String($.text(el) || "").toLowerCase(); }
                          catch (e) { return ""; } };
  const childrenOf = (node) => {
    const kids = $.children(node);
    const root = $.isElement(node) ? shadowOf(node) : null;
    return root ? [...$.children(root), ...kids] : kids;
  };
  const tops = (scope) => (scope === document ? [$.body(document)].filter(Boolean)
                                               : $.children(scope)).filter(shown);
  const holder = (scope, text) => {
    let el = tops(scope).find((k) => lower(k).includes(text));
    if (!el) return null;
    for (;;) {  // down to the smallest element that shows the whole text
      const next = childrenOf(el).find((k) => shown(k) && lower(k).includes(text));
      if (!next) return el;
      el = next;
    }
  };
  const rootOf = (el) => { const root = $.rootNode(el); return $.isShadow(root) ? root : null; };
  const up = (el) => $.parent(el) || (rootOf(el) ? $.host(rootOf(el)) : null);
  const overlay = (el) => {
    for (let n = el; n; n = up(n)) {
      try { if ($.matches(n, "dialog[open], :modal, :popover-open")) return true; } catch (e) {}
      try {
        const position = $.css(n, "position");
        if (position === "fixed" || position === "sticky") return true;
        if (position === "absolute" && Number($.css(n, "z-index")) > 0) return true;
      } catch (e) {}
    }
    return false;
  };
  const where = (how, which, el) => {
    const root = rootOf(el);
    return {how, which, overlay: overlay(el),
            shadow: root ? ($.mode(root) === "closed" ? "closed" : "open") : null};
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
        try { found = $.all(scope, selectors[s]); } catch (e) { continue; }
        const el = found.find(boxed);
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
""".replace("__TOOLS__", TOOLS).replace("__INIT__", INIT_SCRIPT)

# The bytes of a blob: media ``index`` of the read ``token``: at most ``max``
# of them, as base64 (in memory, straight back to Python).
READ_BLOB = """
([key, token, index, max]) => {
  const reader = window[key];
  return reader ? reader.blob(token, index, max) : {error: "gone"};
}
"""

# A data: URL's first ``max`` characters and its length, for decoding in
# Python: the bytes a data: URL shows are those of its own text.
READ_DATA_URL = """
([key, token, index, max]) => {
  const reader = window[key];
  return reader ? reader.data(token, index, max) : null;
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
    token: str = ""  # the read that found it


@dataclass(frozen=True)
class Hashing:
    """How inline media are hashed: the body cap, and the case's reference
    and the crawl's hasher for their PDQ (none: SHA-256 only)."""

    max_body: int
    reference: Reference | None = None
    hasher: PdqHasher | None = None
    # Whose images they are: a host whose images keep running out of decode
    # time gets no more decodes (crawler.perceptual.PdqHasher).
    host: str | None = None

    @property
    def may_decode(self) -> bool:
        """Whether a body is to be kept (in memory) for a possible decode:
        the reference has a PDQ to compare with, or one to learn."""
        return self.hasher is not None and self.reference is not None and (
            self.reference.pdq is not None or self.reference.learn)

    async def pdq(self, body: bytes, sha256: str, truncated: bool) -> Pdq | None:
        """The PDQ of inline media bytes, when the reference needs one."""
        if self.reference is None or self.hasher is None \
                or not self.reference.needs_pdq(sha256):
            return None
        if truncated:
            return Pdq(error="file cut at HOSTWATCH_MAX_BODY: not decoded")
        sniffed = undecodable(body[:SNIFF_BYTES])
        if sniffed is not None:
            return sniffed
        return await self.hasher.pdq(body, self.host)


async def read_page(page: Page, removed: Removed, *, limit: int = MEDIA_READ, max_body: int,
                    hashed: int, reference: Reference | None = None,
                    hasher: PdqHasher | None = None) -> Shown | None:
    """What ``page`` shows (see the module docstring); None when it navigated
    away while being read. Inline media among the first ``hashed`` media are
    read and hashed (and, when ``reference`` needs it, their PDQ computed by
    ``hasher``); the others are listed only."""
    from playwright.async_api import Error as PlaywrightError

    token = secrets.token_hex(8)  # this read's inline media, known to the page's reader only
    args = [KEY, token, list(removed.texts), list(removed.selectors), limit]
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
            found_inline = found["inline"][item["i"]]
            inline = _Inline(frame, item["i"], found_inline["scheme"],
                             found_inline.get("type") or "", found_inline.get("url"), token)
            pending.append((len(media), inline))
            media.append("")  # named once its size is known
    hashes: list[MediaHash] = []
    hashing = Hashing(max_body, reference, hasher, urlsplit(page.url).hostname)
    for number, (position, inline) in enumerate(pending, start=1):
        # Hashed even beside a notice: a notice in a third-party frame (a
        # comment "deleted") does not hide the photo the page still shows.
        if position < hashed:
            result = await _hash_inline(inline, number, hashing)
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


async def _hash_inline(inline: _Inline, number: int, hashing: Hashing) -> MediaHash:
    """Read one inline media's bytes in the page, hash them (and take their
    PDQ when needed), drop them."""
    from playwright.async_api import Error as PlaywrightError

    content_type = media_type(inline.type)
    max_body = hashing.max_body
    if inline.scheme == "data":
        # The bytes a data: URL shows are those of its own text: decoded here,
        # never by the page's (replaceable) fetch, Blob or FileReader.
        return await _hash_data_url(inline, number, hashing, content_type)
    try:
        got: dict[str, Any] = await asyncio.wait_for(
            inline.frame.evaluate(READ_BLOB, [KEY, inline.token, inline.index, max_body]),
            FRAME_SECONDS * 4)
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
    truncated = bool(got.get("truncated"))
    try:
        pdq = await hashing.pdq(body, digest, truncated)
    finally:
        del body, got
    return MediaHash(_name(inline, number, size), sha256=digest, length=length,
                     content_type=content_type, truncated=truncated, inline=True, pdq=pdq)


async def _hash_data_url(inline: _Inline, number: int, hashing: Hashing,
                         content_type: str | None) -> MediaHash:
    from playwright.async_api import Error as PlaywrightError

    max_body = hashing.max_body
    # Base64 takes 4 characters per 3 bytes; the header is at most a few hundred.
    cap = (max_body + 2) // 3 * 4 + 1024
    try:
        got = await asyncio.wait_for(
            inline.frame.evaluate(READ_DATA_URL, [KEY, inline.token, inline.index, cap]),
            FRAME_SECONDS * 4)
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
    del url, got
    try:
        pdq = await hashing.pdq(body, digest, truncated)
    finally:
        del body
    return MediaHash(_name(inline, number, None if truncated else length), sha256=digest,
                     length=length, content_type=content_type, truncated=truncated, inline=True,
                     pdq=pdq)


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

"""A gallery host that renders with JavaScript, for the browser checks.

A plain HTTP fetch of a JS gallery's page gets a *shell*: no ``<img>``,
``<video>`` or ``<picture>``, only ``<script src="/static/gallery.js">``. The
script asks ``/api/item/<id>`` (JSON) and only then shows the media, a
removal notice, popups or a redirect. So only a real browser can tell
whether the reported media is still shown; that is what these hosts test.

    with TestInternet() as net:
        gallery = add_js_gallery(net, "jsgallery.test", network=64501,
                                 marker=b"HW-MARKER-1234")
        gallery.item("a1", ("present", "removed"))   # one state per round
        gallery.page_url("a1")      # http://jsgallery.test:PORT/g/a1 (the reported URL)
        gallery.media_url("a1")     # http://jsgallery.test:PORT/m/a1.jpg (round 0)
        gallery.media_sha256("a1")  # sha256 hex of /m/a1.jpg, the hotline's reference
        net.round = 1               # now the page shows REMOVED_TEXT, media_url is None

Item states (:class:`ItemState`; plain strings work too), by what the
browser ends up showing:

    present             <img src="/m/<id>.jpg">, the original media
    present_video       <video src="/m/<id>.mp4">
    present_background  a div with CSS background-image: url("/m/<id>.jpg")
    changed             <img src="/m/<id>-v2.jpg">: other bytes than the original
    removed             <div class="hw-removed-notice">This image has been removed</div>
                        (REMOVED_SELECTOR, REMOVED_TEXT) and no media
    hang                headers and half the shell, then nothing for
                        ``hang_seconds`` (default 60) or until the client closes
    popup_redirect      three window.open() popups (/promo/1..3), then after
                        ~200 ms location.href = "/" (the home page)

URL layout of a gallery host (every answer has ``Cache-Control: no-store``,
so a browser asks again each round and every fetch is a recorded Hit):

    /g/<id>             the page (200 HTML shell in every state but hang)
    /api/item/<id>      JSON: {"id", "state", and "media": {"kind": "img" |
                        "video" | "background", "src"} or "notice" or
                        "popups", "redirect", "redirect_after_ms"}
    /static/gallery.js  the one script of every page
    /m/<id>.jpg         the original media (image/jpeg)
    /m/<id>-v2.jpg      the changed media (image/jpeg)
    /m/<id>.mp4         the video (video/mp4)
    /promo/1..3         the popups' pages
    /, /login           the usual home and login pages; anything else 404

The media files of a known item are served in every round and state (only
the page decides what it shows); an unknown id's media is a 404. Their bytes
are synthetic, deterministic per marker and id, and each holds ``marker``:
a safety test can grep disk and logs for it to prove nothing was stored.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from lab.behaviours import (
    Behaviour,
    Context,
    Hangup,
    Reply,
    Request,
    Serve,
    marker_body,
)
from lab.hosts import Host
from lab.internet import NetworkKey, TestInternet

__all__ = [
    "DEFAULT_MARKER",
    "HANG_SECONDS",
    "POPUP_PATHS",
    "REDIRECT_AFTER_MS",
    "REMOVED_SELECTOR",
    "REMOVED_TEXT",
    "ItemState",
    "JsGallery",
    "add_js_gallery",
]

REMOVED_TEXT = "This image has been removed"
"""The text the script shows for a removed item."""
REMOVED_CLASS = "hw-removed-notice"
REMOVED_SELECTOR = f"div.{REMOVED_CLASS}"
"""A CSS selector matching the removal notice (and nothing else on the page)."""
DEFAULT_MARKER = b"HW-MARKER-JSGALLERY"
HANG_SECONDS = 60.0
"""How long a ``hang`` page stalls before the server closes it."""
POPUP_PATHS = ("/promo/1", "/promo/2", "/promo/3")
"""What a ``popup_redirect`` page opens with window.open(), in this order."""
REDIRECT_AFTER_MS = 200
"""How long a ``popup_redirect`` page waits before ``location.href = "/"``."""
MEDIA_SIZE = 4096

_NO_STORE = {"Cache-Control": "no-store"}
_HTML = "text/html; charset=utf-8"


class ItemState(StrEnum):
    """What an item's page shows in one round."""

    PRESENT = "present"
    PRESENT_VIDEO = "present_video"
    PRESENT_BACKGROUND = "present_background"
    CHANGED = "changed"
    REMOVED = "removed"
    HANG = "hang"
    POPUP_REDIRECT = "popup_redirect"


StateSpec = ItemState | str | Sequence[ItemState | str]
"""One state for every round, or one per round (the last one repeats)."""


class JsGallery:
    """A host whose item pages render with JavaScript. Made by :func:`add_js_gallery`."""

    def __init__(self, net: TestInternet, host: Host, marker: bytes, hang_seconds: float) -> None:
        self._net = net
        self.host = host
        """The underlying host: its ``ip``, ``name``, ``url()`` and routes."""
        self.marker = marker
        self.hang_seconds = hang_seconds
        self._items: dict[str, tuple[ItemState, ...]] = {}

    def __repr__(self) -> str:
        return f"JsGallery({self.host.name!r}, {self.host.ip!r})"

    def item(self, item_id: str, states: StateSpec) -> JsGallery:
        """Add (or replace) item ``item_id`` with one state, or one per round."""
        _check_id(item_id)
        per_round = _states(states)
        self._items[item_id] = per_round
        self.host.route(f"/g/{item_id}", [self._page(item_id, state) for state in per_round])
        self.host.route(f"/api/item/{item_id}", [_api(item_id, state) for state in per_round])
        for path, body, content_type in _media(self.marker, item_id):
            self.host.route(path, Serve(body, content_type=content_type, headers=_NO_STORE))
        return self

    def state(self, item_id: str) -> ItemState:
        """The item's state in the current round (``net.round``)."""
        per_round = self._known(item_id)
        return per_round[min(self._net.round, len(per_round) - 1)]

    def page_url(self, item_id: str) -> str:
        """The item's page, the URL a hotline reports: ``http://name:port/g/<id>``."""
        self._known(item_id)
        return self.host.url(f"/g/{item_id}")

    def media_url(self, item_id: str) -> str | None:
        """The absolute URL of the media the page shows this round; None if it shows none."""
        path = _media_path(item_id, self.state(item_id))
        return None if path is None else self.host.url(path)

    def media_sha256(self, item_id: str) -> str:
        """The sha256 (lowercase hex) of the original media, ``/m/<id>.jpg``, in any round."""
        self._known(item_id)
        return hashlib.sha256(_jpeg(self.marker, item_id, "original")).hexdigest()

    def _known(self, item_id: str) -> tuple[ItemState, ...]:
        try:
            return self._items[item_id]
        except KeyError:
            raise KeyError(f"{self.host.name} has no item {item_id!r}") from None

    def _page(self, item_id: str, state: ItemState) -> Behaviour:
        if state is ItemState.HANG:
            return _HangingPage(item_id, self.hang_seconds)
        return Serve(_shell(item_id), content_type=_HTML, headers=_NO_STORE)


def add_js_gallery(
    net: TestInternet,
    name: str = "jsgallery.test",
    *,
    network: NetworkKey | None = None,
    marker: bytes = DEFAULT_MARKER,
    hang_seconds: float = HANG_SECONDS,
) -> JsGallery:
    """A new host ``name`` (in ``network``, see add_host) serving a JS gallery.

    ``marker`` (printable ASCII) goes into every media file; ``hang_seconds``
    bounds how long a ``hang`` page stalls. Add items with :meth:`JsGallery.item`.
    """
    if not marker or not marker.isascii() or not marker.decode("ascii").isprintable():
        raise ValueError(f"marker must be non-empty printable ASCII, got {marker!r}")
    if hang_seconds <= 0:
        raise ValueError("hang_seconds must be > 0")
    host = net.add_host(name, network=network)
    script = _SCRIPT.replace("__REMOVED_CLASS__", REMOVED_CLASS).encode()
    host.route(
        "/static/gallery.js",
        Serve(script, content_type="text/javascript; charset=utf-8", headers=_NO_STORE),
    )
    for number, path in enumerate(POPUP_PATHS, start=1):
        page = _document(f"Deal {number}", f"<h1>Hot deal {number}</h1><p>Only today.</p>")
        host.route(path, Serve(page, content_type=_HTML, headers=_NO_STORE))
    return JsGallery(net, host, marker, hang_seconds)


# -- what the host serves ------------------------------------------------------


def _check_id(item_id: str) -> None:
    # It becomes part of paths, a file name and an HTML attribute.
    if not item_id or not all(c.isascii() and (c.isalnum() or c in "-_") for c in item_id):
        raise ValueError(f"item id must be ASCII letters, digits, '-' or '_': {item_id!r}")


def _states(states: StateSpec) -> tuple[ItemState, ...]:
    items = (states,) if isinstance(states, str) else tuple(states)
    if not items:
        raise ValueError("give at least one state")
    return tuple(ItemState(state) for state in items)


def _media_path(item_id: str, state: ItemState) -> str | None:
    return {
        ItemState.PRESENT: f"/m/{item_id}.jpg",
        ItemState.PRESENT_VIDEO: f"/m/{item_id}.mp4",
        ItemState.PRESENT_BACKGROUND: f"/m/{item_id}.jpg",
        ItemState.CHANGED: f"/m/{item_id}-v2.jpg",
    }.get(state)


_MEDIA_KIND = {
    ItemState.PRESENT: "img",
    ItemState.PRESENT_VIDEO: "video",
    ItemState.PRESENT_BACKGROUND: "background",
    ItemState.CHANGED: "img",
}


def _api(item_id: str, state: ItemState) -> Behaviour:
    data: dict[str, object] = {"id": item_id, "state": state.value}
    path = _media_path(item_id, state)
    if path is not None:
        data["media"] = {"kind": _MEDIA_KIND[state], "src": path}
    elif state is ItemState.REMOVED:
        data["notice"] = REMOVED_TEXT
    elif state is ItemState.POPUP_REDIRECT:
        data |= {"popups": list(POPUP_PATHS), "redirect": "/",
                 "redirect_after_ms": REDIRECT_AFTER_MS}
    body = json.dumps(data).encode()
    return Serve(body, content_type="application/json", headers=_NO_STORE)


def _media(marker: bytes, item_id: str) -> list[tuple[str, bytes, str]]:
    return [
        (f"/m/{item_id}.jpg", _jpeg(marker, item_id, "original"), "image/jpeg"),
        (f"/m/{item_id}-v2.jpg", _jpeg(marker, item_id, "v2"), "image/jpeg"),
        (f"/m/{item_id}.mp4", _mp4(marker, item_id), "video/mp4"),
    ]


def _jpeg(marker: bytes, item_id: str, version: str) -> bytes:
    return marker_body(f"{marker.decode('ascii')} item={item_id} {version}", MEDIA_SIZE)


def _mp4(marker: bytes, item_id: str) -> bytes:
    """An ftyp box, then a free box holding the marker and a filler: looks like MP4, plays not."""
    ftyp = _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
    payload = marker + f" item={item_id} video ".encode()
    seed = hashlib.sha256(payload).hexdigest().encode()
    need = max(MEDIA_SIZE - len(ftyp) - 8 - len(payload), 0)
    return ftyp + _box(b"free", payload + (seed * (need // len(seed) + 1))[:need])


def _box(kind: bytes, payload: bytes) -> bytes:
    return (len(payload) + 8).to_bytes(4, "big") + kind + payload


def _document(title: str, body: str) -> bytes:
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>"
    ).encode()


def _shell_head(item_id: str) -> str:
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>Gallery item {item_id}</title></head><body><h1>Gallery</h1>"
        f'<main id="gallery" data-item="{item_id}"><p class="hw-loading">Loading'
    )


def _shell(item_id: str) -> bytes:
    return (
        _shell_head(item_id) + "…</p></main>"
        '<script src="/static/gallery.js"></script></body></html>'
    ).encode()


@dataclass(frozen=True)
class _HangingPage(Behaviour):
    """Status line, headers and the first half of the shell; then a stall, then close.

    Chunked, so a client cannot tell the page is cut short until the
    connection closes without the last chunk.
    """

    item_id: str
    seconds: float

    def reply(self, request: Request, context: Context) -> Reply:
        part = _shell_head(self.item_id).encode()
        head = (
            "HTTP/1.1 200 OK\r\n"
            f"Content-Type: {_HTML}\r\n"
            "Cache-Control: no-store\r\n"
            "Transfer-Encoding: chunked\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        chunk = b"%x\r\n%b\r\n" % (len(part), part)
        return Hangup(head + chunk, hold=self.seconds)


# The only script of every gallery page. It builds elements with DOM calls
# (never innerHTML) from the item's JSON.
_SCRIPT = """\
(function () {
  "use strict";
  var root = document.getElementById("gallery");
  var id = root.getAttribute("data-item");
  fetch("/api/item/" + encodeURIComponent(id), {headers: {"Accept": "application/json"}})
    .then(function (response) { return response.json(); })
    .then(show)
    .catch(function () { root.textContent = "Could not load this item."; });

  function show(item) {
    root.textContent = "";
    var media = item.media;
    if (media && media.kind === "img") {
      var img = document.createElement("img");
      img.alt = "Gallery item " + item.id;
      img.src = media.src;
      root.appendChild(img);
    } else if (media && media.kind === "video") {
      var video = document.createElement("video");
      video.muted = true;
      video.controls = true;
      video.preload = "auto";
      video.src = media.src;
      root.appendChild(video);
    } else if (media && media.kind === "background") {
      var div = document.createElement("div");
      div.className = "hw-background";
      div.style.width = "320px";
      div.style.height = "240px";
      div.style.backgroundImage = 'url("' + media.src + '")';
      root.appendChild(div);
    }
    if (item.notice) {
      var notice = document.createElement("div");
      notice.className = "__REMOVED_CLASS__";
      notice.textContent = item.notice;
      root.appendChild(notice);
    }
    (item.popups || []).forEach(function (url) { window.open(url, "_blank"); });
    if (item.redirect) {
      setTimeout(function () { location.href = item.redirect; }, item.redirect_after_ms);
    }
  }
})();
"""

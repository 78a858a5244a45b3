"""Photo pages behind a consent wall, for the browser rules' actions (#11, point 7).

Many sites cover the page with a cookie banner ("We value your privacy",
"Accept all") and fetch or draw the content only once the visitor agreed. A
browser that reads such a page as it loads sees the banner and no photo:
"removed", while every person who clicks sees the photo. These hosts build
the wall the three common ways:

    with TestInternet() as net:
        site = add_consent_site(net, "photos-consent.test", marker=b"HW-MARKER-1")
        site.item("p1", Wall.OVERLAY)
        site.page_url("p1")        # http://photos-consent.test:PORT/overlay/p1
        site.media_url("p1")       # .../m/p1.jpg, the photo the page shows once agreed
        site.media_sha256("p1")    # its sha256: the hotline's reference

Walls (:class:`Wall`), by what the visitor must do:

    overlay  a fixed overlay in the page with WALL_TEXT and ACCEPT ("Accept
             all") and a "Reject all" button; a click on ACCEPT removes it,
             then the page asks /api/photo/<id> (JSON) and draws
             <img src="/m/<id>.jpg"> into <main>
    frame    the same overlay, but the banner and its ACCEPT button are an
             iframe served by the consent manager's own host (``cmp_name``,
             another origin); the click there posts a message to the page,
             which checks the sender's origin, then fetches and draws the photo
    reload   the server gates the page on a cookie: without consent=accepted
             it sends the wall; a click on ACCEPT sets the cookie and reloads,
             and the page then comes with <img src="/m/<id>.jpg"> in its HTML
    none     no wall at all (a returning visitor's view): the photo in the HTML

Every photo is drawn 320x240 inside ``<main>`` (PHOTO, a selector for a
rule's ``wait_for``). Before consent, no page refers to its photo at all.
Media bodies are synthetic, deterministic per marker and id, and hold the
marker, so the safety tests can prove that nothing was stored. Every answer
has ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass
from enum import StrEnum

from lab.behaviours import Behaviour, Context, Reply, Request, Serve, marker_body
from lab.hosts import Host
from lab.internet import TestInternet

__all__ = ["ACCEPT", "PHOTO", "WALL_TEXT", "ConsentSite", "Wall", "add_consent_site"]

WALL_TEXT = "We value your privacy"
ACCEPT = "button#accept-all"
"""The consent button, on the page or in the consent manager's frame."""
PHOTO = "main img"
"""The photo once shown (never before consent)."""
COOKIE = "consent=accepted"
MEDIA_SIZE = 4096

_NO_STORE = {"Cache-Control": "no-store"}
_HTML = "text/html; charset=utf-8"


class Wall(StrEnum):
    OVERLAY = "overlay"
    FRAME = "frame"
    RELOAD = "reload"
    NONE = "none"


_PATHS = {Wall.OVERLAY: "/overlay/", Wall.FRAME: "/framed/", Wall.RELOAD: "/cookie/",
          Wall.NONE: "/open/"}


class ConsentSite:
    """A photo host behind a consent wall. Made by :func:`add_consent_site`."""

    def __init__(self, host: Host, cmp: Host, marker: bytes) -> None:
        self.host = host
        """The photo host: its ``ip``, ``name``, ``url()`` and routes."""
        self.cmp = cmp
        """The consent manager's host, which serves the ``frame`` wall's banner."""
        self.marker = marker
        self._walls: dict[str, Wall] = {}

    def item(self, item_id: str, wall: Wall | str) -> ConsentSite:
        """Add photo ``item_id`` behind ``wall``."""
        if not item_id or not all(c.isascii() and (c.isalnum() or c in "-_") for c in item_id):
            raise ValueError(f"item id must be ASCII letters, digits, '-' or '_': {item_id!r}")
        kind = Wall(wall)
        self._walls[item_id] = kind
        page: Behaviour
        if kind is Wall.RELOAD:
            page = _CookieGate(item_id)
        elif kind is Wall.NONE:
            page = Serve(_document(item_id, _photo_tag(item_id)), content_type=_HTML,
                         headers=_NO_STORE)
        else:
            page = _WallPage(item_id, self.cmp if kind is Wall.FRAME else None)
        self.host.route(_PATHS[kind] + item_id, page)
        api = json.dumps({"id": item_id, "src": f"/m/{item_id}.jpg"}).encode()
        self.host.route(f"/api/photo/{item_id}",
                        Serve(api, content_type="application/json", headers=_NO_STORE))
        self.host.route(f"/m/{item_id}.jpg", Serve(self._photo(item_id), headers=_NO_STORE))
        return self

    def page_url(self, item_id: str) -> str:
        """The reported URL of the item's page."""
        return self.host.url(_PATHS[self._known(item_id)] + item_id)

    def media_url(self, item_id: str) -> str:
        """The photo the page shows once the visitor agreed."""
        self._known(item_id)
        return self.host.url(f"/m/{item_id}.jpg")

    def media_sha256(self, item_id: str) -> str:
        self._known(item_id)
        return hashlib.sha256(self._photo(item_id)).hexdigest()

    def _photo(self, item_id: str) -> bytes:
        return marker_body(f"{self.marker.decode('ascii')} consent item={item_id}", MEDIA_SIZE)

    def _known(self, item_id: str) -> Wall:
        try:
            return self._walls[item_id]
        except KeyError:
            raise KeyError(f"{self.host.name} has no item {item_id!r}") from None


def add_consent_site(net: TestInternet, name: str = "photos-consent.test", *,
                     cmp_name: str = "cmp-consent.test",
                     marker: bytes = b"HW-MARKER-CONSENT") -> ConsentSite:
    """A photo host ``name`` and its consent manager's host ``cmp_name``.

    ``marker`` (printable ASCII) goes into every photo. Add photos with
    :meth:`ConsentSite.item`.
    """
    if not marker or not marker.isascii() or not marker.decode("ascii").isprintable():
        raise ValueError(f"marker must be non-empty printable ASCII, got {marker!r}")
    host = net.add_host(name)
    cmp = net.add_host(cmp_name)
    host.route("/static/consent.js", Serve(_PAGE_SCRIPT.encode(),
                                           content_type="text/javascript; charset=utf-8",
                                           headers=_NO_STORE))
    cmp.route("/banner", Serve(_banner(), content_type=_HTML, headers=_NO_STORE))
    return ConsentSite(host, cmp, marker)


# -- what the hosts serve ------------------------------------------------------------


def _photo_tag(item_id: str) -> str:
    return f'<img src="/m/{item_id}.jpg" width="320" height="240" alt="Photo {item_id}">'


def _document(item_id: str, main: str, after: str = "") -> bytes:
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>Photo {item_id}</title><style>{_STYLE}</style></head><body>"
        f'<header><h1>Photo share</h1></header><main id="photo" data-item="{item_id}">'
        f"{main}</main>{after}</body></html>"
    ).encode()


def _wall(inside: str) -> str:
    return ('<div id="consent" role="dialog" aria-modal="true">'
            f'<div class="box">{inside}</div></div>')


def _buttons(on_click: str) -> str:
    return (f"<h2>{WALL_TEXT}</h2><p>We and our partners use cookies to show you this site. "
            "Choose what you allow.</p>"
            '<button id="reject-all" type="button">Reject all</button> '
            f'<button id="accept-all" type="button" data-on-accept="{on_click}">'
            "Accept all</button>")


@dataclass(frozen=True)
class _WallPage(Behaviour):
    """The overlay wall, its banner in the page or (``cmp`` given) in the CMP's frame."""

    item_id: str
    cmp: Host | None

    def reply(self, request: Request, context: Context) -> Reply:
        if self.cmp is None:
            wall = _wall(_buttons("show"))
        else:
            # Known only once the test internet listens: built per request.
            frame = html.escape(self.cmp.url("/banner"))
            origin = html.escape(self.cmp.url("/").rstrip("/"))
            wall = _wall(f'<iframe src="{frame}" title="Privacy choices" '
                         f'data-cmp-origin="{origin}"></iframe>')
        page = _document(self.item_id, "", wall + '<script src="/static/consent.js"></script>')
        return Serve(page, content_type=_HTML, headers=_NO_STORE).reply(request, context)


@dataclass(frozen=True)
class _CookieGate(Behaviour):
    """The page with its photo for a visitor who agreed (the cookie); else the wall."""

    item_id: str

    def reply(self, request: Request, context: Context) -> Reply:
        cookies = [c.strip() for c in request.header("cookie").split(";")]
        if COOKIE in cookies:
            page = _document(self.item_id, _photo_tag(self.item_id))
        else:
            page = _document(self.item_id, "", _wall(_buttons("cookie")) +
                             '<script src="/static/consent.js"></script>')
        return Serve(page, content_type=_HTML, headers=_NO_STORE).reply(request, context)


def _banner() -> bytes:
    """The consent manager's banner: its click tells the page, which trusts
    messages from this origin only."""
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Privacy</title></head>'
        f"<body>{_buttons('message')}<script>{_BANNER_SCRIPT}</script></body></html>"
    ).encode()


_STYLE = (
    "body{margin:0;font-family:sans-serif}main{min-height:260px}"
    "#consent{position:fixed;inset:0;background:rgba(0,0,0,.85);display:flex;"
    "align-items:center;justify-content:center}"
    "#consent .box{background:#fff;padding:1em;max-width:34em}"
    "#consent iframe{width:30em;height:12em;border:0}"
)

# The page's script, for the overlay, frame and reload walls. DOM calls only.
_PAGE_SCRIPT = """\
(function () {
  "use strict";
  var main = document.getElementById("photo");
  var id = main.getAttribute("data-item");
  var wall = document.getElementById("consent");

  function show() {
    wall.remove();
    fetch("/api/photo/" + encodeURIComponent(id), {headers: {"Accept": "application/json"}})
      .then(function (response) { return response.json(); })
      .then(function (photo) {
        var img = document.createElement("img");
        img.src = photo.src;
        img.width = 320;
        img.height = 240;
        img.alt = "Photo " + photo.id;
        main.appendChild(img);
      });
  }

  var accept = document.getElementById("accept-all");
  if (accept && accept.getAttribute("data-on-accept") === "show") {
    accept.addEventListener("click", show);
  } else if (accept && accept.getAttribute("data-on-accept") === "cookie") {
    accept.addEventListener("click", function () {
      document.cookie = "consent=accepted; path=/; max-age=31536000";
      location.reload();
    });
  }
  var frame = wall && wall.querySelector("iframe");
  if (frame) {
    var origin = frame.getAttribute("data-cmp-origin");
    window.addEventListener("message", function (event) {
      if (event.origin === origin && event.data && event.data.consent === "accepted") show();
    });
  }
  var reject = document.getElementById("reject-all");
  if (reject) {
    reject.addEventListener("click", function () {
      main.textContent = "No photos without consent.";
    });
  }
})();
"""

_BANNER_SCRIPT = """
document.getElementById("accept-all").addEventListener("click", function () {
  parent.postMessage({consent: "accepted"}, "*");
});
"""

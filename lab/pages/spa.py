"""A hash-routed single-page app: one document, one item per route (#11, point 5).

The server knows one document, ``/app/``; which photo a person sees is
chosen by the script from ``location.hash``, which never reaches the server.
A plain GET of any of its URLs gets the same shell (a ``<script src>`` and
no media); only a browser opened at the URL *with its fragment* shows the
reported item.

    with TestInternet() as net:
        app = add_spa(net, "spa.test", marker=b"HW-MARKER-SPA")
        app.photo(21)                   # #/photo/21 shows /media/21.jpg
        app.photo(22, changed=True)     # #/photo/22 shows /media/22-v2.jpg
        app.photo(23, gone_home=True)   # #/photo/23 sends the app to its home route "#/"
        app.url("/photo/21")            # http://spa.test:PORT/app/#/photo/21 (reported)
        app.url("!/item/21")            # the hash-bang spelling of the same item
        app.media_sha256(21)            # sha256 of /media/21.jpg, the hotline's reference

Routes (after "#", or "#!"):

    /photo/<n>, /item/<n>   <img src="/media/<n>.jpg"> (/media/<n>-v2.jpg when changed)
    /photo/<n> of a photo added with gone_home=True: location.hash = "#/" (home)
    /, no route             the home list: a heading and <img> thumbnails of every
                            photo (/media/thumb/<n>.jpg, other bytes than the photo)
    anything else           "Image not found" (a placeholder marker) and no media

URL layout (every answer has ``Cache-Control: no-store``):

    /app/               the shell; /app/spa.js its script
    /media/<n>.jpg      the photo; /media/<n>-v2.jpg its replacement;
    /media/thumb/<n>.jpg the thumbnail; all image/jpeg, each holding ``marker``
"""

from __future__ import annotations

import hashlib

from lab.behaviours import Serve, marker_body
from lab.hosts import Host
from lab.internet import NetworkKey, TestInternet

__all__ = ["NOT_FOUND_TEXT", "SpaApp", "add_spa"]

NOT_FOUND_TEXT = "Image not found"
"""What the app shows for an unknown route (a shipped placeholder marker)."""
APP_PATH = "/app/"

_NO_STORE = {"Cache-Control": "no-store"}
_SHELL = (b'<!doctype html><html><head><meta charset="utf-8"><title>Photos</title></head>'
          b'<body><main id="app"><p>Loading</p></main><script src="/app/spa.js"></script>'
          b"</body></html>")
# Builds everything with DOM calls from the route; the photo list comes in
# the script itself (no API), so a route is drawn as soon as the script runs.
_SCRIPT = """\
(function () {
  "use strict";
  var PHOTOS = __PHOTOS__;
  var root = document.getElementById("app");
  function image(src, alt) {
    var img = document.createElement("img");
    img.src = src;
    img.alt = alt;
    root.appendChild(img);
  }
  function show() {
    var route = location.hash.replace(/^#!?/, "");
    if (route.charAt(0) !== "/") route = "/" + route;
    root.textContent = "";
    var found = /^\\/(photo|item)\\/(\\d+)$/.exec(route);
    if (route === "/") {
      var title = document.createElement("h1");
      title.textContent = "Latest photos";
      root.appendChild(title);
      Object.keys(PHOTOS).forEach(function (n) { image("/media/thumb/" + n + ".jpg", "thumb"); });
    } else if (found && PHOTOS[found[2]] === "gone_home") {
      location.hash = "#/";
    } else if (found && PHOTOS[found[2]]) {
      var version = PHOTOS[found[2]] === "changed" ? "-v2" : "";
      image("/media/" + found[2] + version + ".jpg", "Photo " + found[2]);
    } else {
      var p = document.createElement("p");
      p.textContent = "__NOT_FOUND__";
      root.appendChild(p);
    }
  }
  window.addEventListener("hashchange", show);
  show();
})();
"""


class SpaApp:
    """A hash-routed app on one host. Made by :func:`add_spa`."""

    def __init__(self, net: TestInternet, host: Host, marker: bytes) -> None:
        self._net = net
        self.host = host
        self.marker = marker
        self._photos: dict[int, str] = {}
        self._publish()

    def photo(self, number: int, *, changed: bool = False, gone_home: bool = False) -> SpaApp:
        """Add photo ``number``: shown at its route, replaced by another image
        (``changed``), or taken away, the app going to its home route instead
        (``gone_home``)."""
        self._photos[number] = "changed" if changed else "gone_home" if gone_home else "shown"
        for path, body in ((f"/media/{number}.jpg", self._jpeg(number, "original")),
                           (f"/media/{number}-v2.jpg", self._jpeg(number, "v2")),
                           (f"/media/thumb/{number}.jpg", self._jpeg(number, "thumb"))):
            self.host.route(path, Serve(body, content_type="image/jpeg", headers=_NO_STORE))
        self._publish()
        return self

    def url(self, route: str = "", path: str = APP_PATH) -> str:
        """The app's URL with ``route`` as its fragment ("" for none): the reported URL."""
        return self.host.url(path) + (f"#{route}" if route else "")

    def media_url(self, number: int, version: str = "") -> str:
        return self.host.url(f"/media/{number}{version}.jpg")

    def media_sha256(self, number: int, version: str = "original") -> str:
        """The sha256 of photo ``number`` (the original unless ``version`` is "v2"/"thumb")."""
        return hashlib.sha256(self._jpeg(number, version)).hexdigest()

    def _jpeg(self, number: int, version: str) -> bytes:
        return marker_body(f"{self.marker.decode('ascii')} photo={number} {version}", 4096)

    def _publish(self) -> None:
        photos = ", ".join(f'"{n}": "{how}"' for n, how in sorted(self._photos.items()))
        script = (_SCRIPT.replace("__PHOTOS__", "{" + photos + "}")
                  .replace("__NOT_FOUND__", NOT_FOUND_TEXT))
        self.host.route(APP_PATH, Serve(_SHELL, content_type="text/html; charset=utf-8",
                                        headers=_NO_STORE))
        self.host.route("/app/spa.js", Serve(script.encode(),
                                             content_type="text/javascript; charset=utf-8",
                                             headers=_NO_STORE))


def add_spa(net: TestInternet, name: str = "spa.test", *, network: NetworkKey | None = None,
            marker: bytes = b"HW-MARKER-SPA") -> SpaApp:
    """A new host ``name`` serving a hash-routed app at ``/app/``; add photos
    with :meth:`SpaApp.photo`. ``marker`` (printable ASCII) is in every image."""
    if not marker or not marker.isascii() or not marker.decode("ascii").isprintable():
        raise ValueError(f"marker must be non-empty printable ASCII, got {marker!r}")
    return SpaApp(net, net.add_host(name, network=network), marker)

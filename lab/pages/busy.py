"""Pages that are not done at "load": late swaps, lazy loading, endless loading.

Unlike the JS gallery (`lab.gallery`: one script, one API call, then
the final picture), each page here changes what it shows *after* it loaded,
the ways real sites do, and is plain static HTML with an inline script:

    with TestInternet() as net:
        pages = add_busy_pages(net, "settle.test", marker=b"HW-MARKER-42")
        url = pages.swap("a")         # the reported URL of a spinner-then-photo page
        pages.photo_sha256("a")       # the hotline's reference: the photo of item "a"

Page kinds (one method each; every one returns the page's URL):

    swap(id)        <img src="/spinner.gif">, replaced by /photos/<id>.jpg SWAP_MS
                    after load by a timer, with no request in between (the
                    photo's URL is set only when the timer fires)
    late_notice(id) <img src="/photos/<id>.jpg">, replaced NOTICE_MS after load
                    by a removal notice (NOTICE_TEXT) by a timer
    lazy(id)        a page PAGE_HEIGHT px tall: a loading=lazy thumbnail
                    (/photos/<id>-thumb.jpg) and, far below the fold, the photo
                    as <img data-src>, given its src by an IntersectionObserver
                    only once it scrolls into view
    boxed(id)       the same IntersectionObserver photo in an app whose body does not
                    scroll: a full-height box with overflow:auto does
    feed(id)        an infinite-scroll page: PAGE_HEIGHT px of text, then a
                    sentinel; once it is in view the page fetches
                    /api/feed/<id> (JSON) and only then appends the photo
    endless(id)     a spinner image and fetch("/api/poll") every POLL_MS, forever
    polling(id)     the photo, and fetch("/api/poll") every POLL_MS, forever
    stream(id)      "Loading…" and one fetch("/api/stream/<id>") whose response
                    sends its head and a first chunk, then never ends (held
                    open up to ``hold`` seconds, or until the browser leaves)
    framed(id, url) a thumbnail, and an iframe showing ``url`` (another host's
                    page: cross-origin)
    clock(id)       the photo and a clock whose text changes every CLOCK_MS by
                    setInterval, with no request: busy on screen, quiet on the wire
    refresh(id)     the photo, and a <meta http-equiv=refresh> to the home page
                    REFRESH_S after load (no script)
    still(id)       the photo, static: stable at once
    chat(id)        a third-party chat widget (to show in another host's page):
                    an EventSource to /api/events/<id> and a fetch of
                    /api/stream/<id> (a long poll) on its own host, both held
                    open like ``stream``'s
    live(id, url)   the photo, an EventSource of its own (/api/events/<id>, a
                    live counter: held open) and an iframe showing ``url``
                    (another host's `chat`)
    reloading(id)   the photo, and a script that reloads the page RELOAD_MS after
                    load (setTimeout(location.reload)): every RELOAD_MS, forever
    meta_reload(id) the photo, and ``<meta http-equiv=refresh content=META_RELOAD_S>``
                    without a URL: the page reloads itself, forever
    blinking(id)    text only, a new random text on each load; reloads itself
                    BLINK_MS after load (setTimeout), forever (a rotating ad,
                    to show in another host's page)
    with_ad(id, url) the photo and an iframe showing ``url`` (another host's `blinking`)
    blank(id)       text only, static, no media: stable at once
    cloaked(id, tell) the photo for a person, NOTICE_TEXT for a crawler: a script
                    decides at DOMContentLoaded by one of CLOAK_TELLS (a fixed
                    window property of hostwatch's, navigator.webdriver, wrapped
                    timer functions)
    big(id, size)   the photo first, then a comment that makes the HTML ``size``
                    bytes long (more than HOSTWATCH_MAX_BODY); with
                    ``photo_first=False`` the photo comes after the comment

Media: /photos/<id>.jpg (the photo), /photos/<id>-thumb.jpg, /spinner.gif;
each body holds ``marker`` (lab.behaviours.marker_body) and is served
with ``Cache-Control: no-store`` in every round.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from lab.behaviours import Behaviour, Context, Hangup, Reply, Request, Serve, marker_body
from lab.hosts import Host
from lab.internet import NetworkKey, TestInternet

__all__ = ["CLOAK_TELLS", "NOTICE_TEXT", "BusyPages", "add_busy_pages"]

SWAP_MS = 1200
NOTICE_MS = 1000
POLL_MS = 300
CLOCK_MS = 200
REFRESH_S = 1
RELOAD_MS = 3000
META_RELOAD_S = 4
BLINK_MS = 300
PAGE_HEIGHT = 4000
NOTICE_TEXT = "This photo has been removed by the host."
MEDIA_SIZE = 4096

# How a page can tell a crawler from a person (`BusyPages.cloaked`): JS expressions.
CLOAK_TELLS = {
    "settle": '"__hostwatchSettle" in window',
    "webdriver": "navigator.webdriver === true",
    "timers": "[setTimeout, clearTimeout, clearInterval, Function.prototype.toString].some("
              "f => !/^function \\w+\\(\\) \\{ \\[native code\\] \\}$/.test("
              "Function.prototype.toString.call(f)) || f.length !== (f === setTimeout ? 1 : 0)"
              " || Object.prototype.hasOwnProperty.call(f, 'prototype'))",
}
_NO_STORE = {"Cache-Control": "no-store"}
_HTML = "text/html; charset=utf-8"


# A data-src lazy loader: an img.lazy gets its src once it scrolls into view.
_LAZY_LOADER = """<script>
var seen = new IntersectionObserver(function (entries) {
  entries.forEach(function (entry) {
    if (!entry.isIntersecting) return;
    entry.target.src = entry.target.getAttribute("data-src");
    seen.unobserve(entry.target);
  });
});
document.querySelectorAll("img.lazy").forEach(function (img) { seen.observe(img); });
</script>"""


class BusyPages:
    """A host of pages that change after load. Made by :func:`add_busy_pages`."""

    def __init__(self, host: Host, marker: bytes, hold: float) -> None:
        self.host = host
        self.marker = marker
        self.hold = hold
        host.route("/spinner.gif", Serve(self._body("spinner"), content_type="image/gif",
                                         headers=_NO_STORE))
        host.route("/api/poll", Serve(b'{"ready": false}', content_type="application/json",
                                      headers=_NO_STORE))

    def __repr__(self) -> str:
        return f"BusyPages({self.host.name!r}, {self.host.ip!r})"

    # -- the media -------------------------------------------------------------

    def photo_url(self, item: str) -> str:
        return self.host.url(f"/photos/{item}.jpg")

    def thumb_url(self, item: str) -> str:
        return self.host.url(f"/photos/{item}-thumb.jpg")

    def photo_sha256(self, item: str) -> str:
        """The photo's sha256 (lowercase hex): the hotline's reference."""
        return hashlib.sha256(self._body(f"item={item} photo")).hexdigest()

    def _body(self, what: str) -> bytes:
        return marker_body(f"{self.marker.decode('ascii')} {what}", MEDIA_SIZE)

    def _media(self, item: str) -> None:
        for suffix, what in (("", "photo"), ("-thumb", "thumbnail")):
            self.host.route(f"/photos/{item}{suffix}.jpg",
                            Serve(self._body(f"item={item} {what}"), headers=_NO_STORE))

    def _page(self, path: str, item: str, body: str, head: str = "") -> str:
        if not item.replace("-", "").replace("_", "").isalnum() or not item.isascii():
            raise ValueError(f"item must be ASCII letters, digits, '-' or '_': {item!r}")
        self._media(item)
        page = ('<!doctype html><html><head><meta charset="utf-8">'
                f"<title>Photo {item}</title>{head}</head><body><h1>Photos</h1>{body}"
                "</body></html>")
        self.host.route(path, Serve(page.encode(), content_type=_HTML, headers=_NO_STORE))
        return self.host.url(path)

    # -- the pages -------------------------------------------------------------

    def swap(self, item: str) -> str:
        return self._page(f"/swap/{item}", item, f"""
<img id="photo" src="/spinner.gif" alt="loading">
<script>
setTimeout(function () {{
  var img = document.getElementById("photo");
  img.alt = "Photo";
  img.src = "/photos/" + "{item}" + ".jpg";
}}, {SWAP_MS});
</script>""")

    def late_notice(self, item: str) -> str:
        return self._page(f"/late/{item}", item, f"""
<div id="box"><img src="/photos/{item}.jpg" alt="Photo"></div>
<script>
setTimeout(function () {{
  var box = document.getElementById("box");
  box.textContent = "";
  var notice = document.createElement("p");
  notice.className = "notice";
  notice.textContent = {json.dumps(NOTICE_TEXT)};
  box.appendChild(notice);
}}, {NOTICE_MS});
</script>""")

    def lazy(self, item: str) -> str:
        return self._page(f"/lazy/{item}", item, f"""
<div style="height:{PAGE_HEIGHT - 1000}px">Scroll down for the photo.</div>
<img loading="lazy" src="/photos/{item}-thumb.jpg" width="160" height="120" alt="thumbnail">
<div style="height:700px">More below.</div>
<img class="lazy" data-src="/photos/{item}.jpg" width="640" height="480" alt="Photo">
{_LAZY_LOADER}""")

    def boxed(self, item: str) -> str:
        return self._page(f"/boxed/{item}", item, f"""
<style>html, body {{ height: 100%; margin: 0; overflow: hidden; }}</style>
<div id="app" style="height:100%; overflow-y:auto">
<div style="height:{PAGE_HEIGHT}px">Scroll down for the photo.</div>
<img class="lazy" data-src="/photos/{item}.jpg" width="640" height="480" alt="Photo">
<div style="height:600px">The end.</div>
</div>
{_LAZY_LOADER}""")

    def feed(self, item: str) -> str:
        self.host.route(f"/api/feed/{item}", Serve(
            json.dumps({"src": f"/photos/{item}.jpg"}).encode(),
            content_type="application/json", headers=_NO_STORE))
        return self._page(f"/feed/{item}", item, f"""
<div id="feed"><div style="height:{PAGE_HEIGHT}px">Newest posts.</div></div>
<div id="more">Loading more…</div>
<script>
var more = new IntersectionObserver(function (entries) {{
  if (!entries.some(function (entry) {{ return entry.isIntersecting; }})) return;
  more.disconnect();
  fetch("/api/feed/" + "{item}").then(function (r) {{ return r.json(); }}).then(function (post) {{
    var img = document.createElement("img");
    img.alt = "Post";
    img.src = post.src;
    document.getElementById("feed").appendChild(img);
    document.getElementById("more").textContent = "";
  }});
}});
more.observe(document.getElementById("more"));
</script>""")

    def endless(self, item: str) -> str:
        return self._page(f"/endless/{item}", item, f"""
<img src="/spinner.gif" alt="loading"><p>Loading your photo…</p>
<script>
setInterval(function () {{ fetch("/api/poll?item={item}").catch(function () {{}}); }}, {POLL_MS});
</script>""")

    def polling(self, item: str) -> str:
        return self._page(f"/polling/{item}", item, f"""
<img src="/photos/{item}.jpg" alt="Photo">
<script>
setInterval(function () {{ fetch("/api/poll?item={item}").catch(function () {{}}); }}, {POLL_MS});
</script>""")

    def stream(self, item: str) -> str:
        self.host.route(f"/api/stream/{item}", _EndlessStream(self.hold))
        return self._page(f"/stream/{item}", item, f"""
<p id="state">Loading…</p>
<script>
fetch("/api/stream/{item}").then(function (response) {{
  var reader = response.body.getReader();
  (function next() {{ reader.read().then(function (part) {{ if (!part.done) next(); }}); }})();
}}).catch(function () {{}});
</script>""")

    def clock(self, item: str) -> str:
        return self._page(f"/clock/{item}", item, f"""
<img src="/photos/{item}.jpg" alt="Photo"><p>Now: <span id="clock">0</span></p>
<script>
var ticks = 0;
setInterval(function () {{
  document.getElementById("clock").textContent = String(++ticks);
}}, {CLOCK_MS});
</script>""")

    def framed(self, item: str, inner: str) -> str:
        """A page with a thumbnail that shows another page (``inner``, e.g. another
        host's `swap`) in an iframe."""
        return self._page(f"/framed/{item}", item,
                          f'<img src="/photos/{item}-thumb.jpg" alt="thumbnail">'
                          f'<iframe src="{inner}" width="700" height="500"></iframe>')

    def refresh(self, item: str) -> str:
        return self._page(f"/refresh/{item}", item, f'<img src="/photos/{item}.jpg" alt="Photo">',
                          head=f'<meta http-equiv="refresh" content="{REFRESH_S};url=/">')

    def chat(self, item: str) -> str:
        self._streams(item)
        return self._page(f"/chat/{item}", item, f"""
<p id="chat">Chat: connecting…</p>
<script>
new EventSource("/api/events/{item}");
fetch("/api/stream/{item}").then(function (response) {{
  var reader = response.body.getReader();
  (function next() {{ reader.read().then(function (part) {{ if (!part.done) next(); }}); }})();
}}).catch(function () {{}});
</script>""")

    def live(self, item: str, widget: str) -> str:
        self._streams(item)
        return self._page(f"/live/{item}", item, f"""
<img src="/photos/{item}.jpg" alt="Photo"><p>Viewers: <span id="count">1</span></p>
<iframe src="{widget}" width="300" height="200"></iframe>
<script>new EventSource("/api/events/{item}");</script>""")

    def reloading(self, item: str) -> str:
        return self._page(f"/reloading/{item}", item, f"""
<img src="/photos/{item}.jpg" alt="Photo">
<script>setTimeout(function () {{ location.reload(); }}, {RELOAD_MS});</script>""")

    def meta_reload(self, item: str) -> str:
        return self._page(f"/meta-reload/{item}", item,
                          f'<img src="/photos/{item}.jpg" alt="Photo">',
                          head=f'<meta http-equiv="refresh" content="{META_RELOAD_S}">')

    def blinking(self, item: str) -> str:
        return self._page(f"/blinking/{item}", item, f"""
<p id="ad">Advertisement</p>
<script>
document.getElementById("ad").textContent = "Advertisement " + Math.floor(Math.random() * 1e6);
setTimeout(function () {{ location.reload(); }}, {BLINK_MS});</script>""")

    def with_ad(self, item: str, ad: str) -> str:
        return self._page(f"/with-ad/{item}", item,
                          f'<img src="/photos/{item}.jpg" alt="Photo">'
                          f'<iframe src="{ad}" width="300" height="250"></iframe>')

    def _streams(self, item: str) -> None:
        self.host.route(f"/api/stream/{item}", _EndlessStream(self.hold))
        self.host.route(f"/api/events/{item}",
                        _EndlessStream(self.hold, content_type=b"text/event-stream",
                                       first=b"data: 1\n\n"))

    def still(self, item: str) -> str:
        return self._page(f"/still/{item}", item, f'<img src="/photos/{item}.jpg" alt="Photo">')

    def blank(self, item: str) -> str:
        return self._page(f"/blank/{item}", item, "<p>Nothing to see here yet.</p>")

    def cloaked(self, item: str, tell: str) -> str:
        return self._page(f"/cloaked/{tell}/{item}", item, '<div id="box"></div>', f"""
<script>
document.addEventListener("DOMContentLoaded", function () {{
  var box = document.getElementById("box");
  if ({CLOAK_TELLS[tell]}) {{
    box.textContent = {json.dumps(NOTICE_TEXT)};
  }} else {{
    var img = document.createElement("img");
    img.alt = "Photo";
    img.src = "/photos/{item}.jpg";
    box.appendChild(img);
  }}
}});
</script>""")

    def big(self, item: str, size: int, *, photo_first: bool = True) -> str:
        self._media(item)
        path = f"/big/{item}"
        photo = f'<img src="/photos/{item}.jpg" alt="Photo">'
        page = ('<!doctype html><html><head><meta charset="utf-8">'
                f'<title>Photo {item}</title></head><body><h1>Photos</h1>'
                f'{photo if photo_first else ""}<!-- ')
        tail = f' -->{"" if photo_first else photo}</body></html>'
        page += "x" * max(0, size - len(page) - len(tail)) + tail
        self.host.route(path, Serve(page.encode(), content_type=_HTML, headers=_NO_STORE))
        return self.host.url(path)


@dataclass(frozen=True)
class _EndlessStream(Behaviour):
    """A chunked 200 whose first chunk arrives and whose end never does."""

    hold: float
    content_type: bytes = b"application/x-ndjson"
    first: bytes = b'{"progress": 0, "note": "' + b"." * 120 + b'"}\n'

    def reply(self, request: Request, context: Context) -> Reply:
        first = self.first
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: " + self.content_type + b"\r\n"
                b"Cache-Control: no-store\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n")
        return Hangup(head + b"%x\r\n%b\r\n" % (len(first), first), hold=self.hold)


def add_busy_pages(net: TestInternet, name: str = "settle.test", *,
                   network: NetworkKey | None = None, marker: bytes = b"HW-MARKER-BUSY",
                   hold: float = 60.0) -> BusyPages:
    """A new host ``name`` for the pages above; ``marker`` goes into every media body,
    ``hold`` bounds how long a ``stream`` response stays open."""
    if not marker or not marker.isascii() or not marker.decode("ascii").isprintable():
        raise ValueError(f"marker must be non-empty printable ASCII, got {marker!r}")
    return BusyPages(net.add_host(name, network=network), marker, hold)

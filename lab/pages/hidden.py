"""Pages whose notice or photo is where a DOM query of the page would miss it.

Two hosts: a "photo site" and a second host, ``notices.test`` (another
origin), whose page the photo site puts in an iframe. Unlike the JS gallery
(`lab.gallery`), these pages are static HTML with small inline scripts,
and each hides its notice or its photo in one place a person still sees:

    iframe-notice     a banner image, and the notice in a cross-origin iframe
                      (http://notices.test:PORT/n/5)
    iframe-shadow     a banner image, and a cross-origin iframe
                      (http://notices.test:PORT/n/6) whose notice is in a closed
                      shadow root
    closed-shadow     a banner image; the notice in a custom element's
                      *closed* shadow root (attachShadow({mode: "closed"}))
    open-shadow       the same in an open shadow root
    overlay           the photo, and a notice a script lays over it
                      (position: fixed, z-index 1000) after load
    hidden-template   the photo, and a notice element kept hidden
                      (display: none) on every page: a person sees the photo
    hidden-iframe     the photo, and the notice host's page in an iframe that
                      is not shown (visibility: hidden): a person sees the photo
    data              the photo as a data: URI (<img src="data:image/jpeg;...">)
    data-csp          the same under a CSP that forbids fetch() (connect-src 'none')
    data-changed      another image as a data: URI
    blob              the photo as a blob: URL: its bytes come as base64 in JSON
                      (/api/photo.json, application/json), become a Blob and
                      URL.createObjectURL; the URL is revoked once drawn
    blob-changed      the same with another image (/api/other.json)
    iframe-comments   the photo, and a cross-origin comments widget
                      (http://notices.test:PORT/n/7) where one comment reads
                      as the removal notice: a person sees the photo
    getter-throws     the photo; a page script makes HTMLImageElement's currentSrc
                      getter (and checkVisibility) throw
    data-blob-override  the photo as a data: URI; a page script replaces
                      Response.prototype.blob, FileReader's readAsDataURL and
                      Blob.prototype.slice to give another image's bytes
    data-key-override the photo as a data: URI; after load a page script sets
                      ``fetch`` (giving another image) on every object its
                      window's own properties hold, and replaces any whose
                      name starts "__hw_"
    cloak-key         the photo, unless a window property's name starts
                      "__hw_" (then the notice: cloaking against hostwatch)
    cloak-wrapped     the photo, unless URL.createObjectURL or attachShadow
                      is not "[native code]" (then the notice)
    many-frames       a banner image, 25 iframes a person does not see (12
                      with display: none, 13 of 1 x 1 pixel), then the
                      notice in a cross-origin iframe (/n/5)

    site = add_hidden_site(net, marker=b"HW-MARKER-1234")
    site.url("data")     # http://hidden.test:PORT/p/data
    site.photo_sha256    # the reported photo's hash (the case's reference)

The notice text is REMOVED_TEXT; the hidden template also carries the
REMOVED_SELECTOR class. Every image holds ``marker`` (printable ASCII), for
the safety tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from lab.behaviours import Serve, marker_body
from lab.gallery import REMOVED_CLASS, REMOVED_TEXT
from lab.hosts import Host
from lab.internet import TestInternet

__all__ = ["PAGES", "HiddenSite", "add_hidden_site"]

PAGES = ("iframe-notice", "iframe-shadow", "closed-shadow", "open-shadow", "overlay",
         "hidden-template", "hidden-iframe", "data", "data-csp", "data-changed", "blob",
         "blob-changed", "iframe-comments", "many-frames", "getter-throws",
         "data-blob-override", "data-key-override", "cloak-key", "cloak-wrapped")
IMAGE_SIZE = 4096
_HTML = "text/html; charset=utf-8"
_NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class HiddenSite:
    host: Host
    notices: Host
    photo: bytes
    other: bytes

    def url(self, page: str) -> str:
        if page not in PAGES:
            raise KeyError(f"no page {page!r} (known: {', '.join(PAGES)})")
        return self.host.url(f"/p/{page}")

    @property
    def photo_sha256(self) -> str:
        return hashlib.sha256(self.photo).hexdigest()

    @property
    def other_sha256(self) -> str:
        return hashlib.sha256(self.other).hexdigest()

    @property
    def frame_url(self) -> str:
        return self.notices.url("/n/5")


def add_hidden_site(net: TestInternet, name: str = "hidden.test",
                    notices: str = "notices.test", *, marker: bytes) -> HiddenSite:
    """The photo site ``name`` and the notice host ``notices`` (see the module docstring)."""
    text = marker.decode("ascii")
    photo = marker_body(f"{text} hidden photo", IMAGE_SIZE)
    other = marker_body(f"{text} hidden other", IMAGE_SIZE)
    banner = marker_body(f"{text} hidden banner", IMAGE_SIZE)
    host = net.add_host(name)
    second = net.add_host(notices)
    site = HiddenSite(host, second, photo, other)

    second.route("/n/5", _page("Notice", f"<p>{REMOVED_TEXT}.</p>"))
    second.route("/n/6", _page("Notice", "<hw-notice></hw-notice>",
                               _SHADOW.replace("__MODE__", "closed")))
    second.route("/n/7", _page("Comments", "<ul><li>Great photo!</li>"
                               f"<li>{REMOVED_TEXT}.</li><li>Thanks.</li></ul>"))
    second.route("/n/pixel", _page("Pixel", ""))
    host.route("/m/photo.jpg", Serve(photo, headers=_NO_STORE))
    host.route("/m/banner.jpg", Serve(banner, headers=_NO_STORE))
    for path, image in (("/api/photo.json", photo), ("/api/other.json", other)):
        data = {"type": "image/jpeg", "base64": base64.b64encode(image).decode()}
        host.route(path, Serve(json.dumps(data).encode(), content_type="application/json",
                               headers=_NO_STORE))

    banner_img = '<img src="/m/banner.jpg" alt="Site banner">'
    photo_img = '<img src="/m/photo.jpg" alt="Photo">'
    for page, frame in (("iframe-notice", "/n/5"), ("iframe-shadow", "/n/6")):
        host.route(f"/p/{page}", _page("Photo", banner_img + f'<iframe src="{second.url(frame)}"'
                                       ' width="400" height="200"></iframe>'))
    for mode in ("closed", "open"):
        host.route(f"/p/{mode}-shadow", _page("Photo", banner_img + "<hw-notice></hw-notice>",
                                              _SHADOW.replace("__MODE__", mode)))
    host.route("/p/overlay", _page("Photo", photo_img, _OVERLAY))
    host.route("/p/hidden-template", _page(
        "Photo", photo_img + f'<div class="{REMOVED_CLASS}" style="display:none">'
        f"{REMOVED_TEXT}</div>"))
    host.route("/p/hidden-iframe", _page(
        "Photo", photo_img + f'<iframe src="{site.frame_url}" style="visibility:hidden"></iframe>'))
    for page, image, headers in (
            ("data", photo, {}),
            ("data-csp", photo, {"Content-Security-Policy":
                                 "default-src 'none'; img-src data:; connect-src 'none'"}),
            ("data-changed", other, {})):
        uri = "data:image/jpeg;base64," + base64.b64encode(image).decode()
        host.route(f"/p/{page}", _page("Photo", f'<img src="{uri}" alt="Photo">', "", headers))
    host.route("/p/iframe-comments", _page(
        "Photo", photo_img + f'<iframe src="{second.url("/n/7")}" width="400" height="200">'
        "</iframe>"))
    pixel = second.url("/n/pixel")
    hidden_frames = "".join(
        f'<iframe src="{pixel}?{n}" width="1" height="1"'
        + (' style="display:none"' if n % 2 else ' style="border:0"') + "></iframe>"
        for n in range(25))
    host.route("/p/many-frames", _page(
        "Photo", banner_img + hidden_frames + f'<iframe src="{site.frame_url}" width="400"'
        ' height="200"></iframe>'))
    host.route("/p/getter-throws", _page("Photo", photo_img, _GETTER_THROWS))
    other_uri = "data:image/jpeg;base64," + base64.b64encode(other).decode()
    photo_uri = "data:image/jpeg;base64," + base64.b64encode(photo).decode()
    for page, script in (("data-blob-override", _BLOB_OVERRIDE),
                         ("data-key-override", _KEY_OVERRIDE)):
        host.route(f"/p/{page}", _page("Photo", f'<img src="{photo_uri}" alt="Photo">',
                                       script.replace("__OTHER__", other_uri)))
    for page, test in (("cloak-key", _CLOAK_KEY), ("cloak-wrapped", _CLOAK_WRAPPED)):
        host.route(f"/p/{page}", _page("Photo", '<div id="v"></div>', _CLOAK.replace(
            "__TEST__", test).replace("__PHOTO__", photo_img)))
    host.route("/p/blob", _page("Photo", "", _BLOB.replace("__API__", "/api/photo.json")))
    host.route("/p/blob-changed", _page("Photo", "", _BLOB.replace("__API__", "/api/other.json")))
    return site


def _page(title: str, body: str, script: str = "",
          headers: dict[str, str] | None = None) -> Serve:
    html = ('<!doctype html><html><head><meta charset="utf-8">'
            f"<title>{title}</title></head><body><h1>{title}</h1>{body}"
            + (f"<script>{script}</script>" if script else "") + "</body></html>")
    return Serve(html.encode(), content_type=_HTML, headers={**_NO_STORE, **(headers or {})})


_SHADOW = """
customElements.define("hw-notice", class extends HTMLElement {
  constructor() {
    super();
    const root = this.attachShadow({mode: "__MODE__"});
    const p = document.createElement("p");
    p.textContent = "__TEXT__";
    root.appendChild(p);
  }
});
""".replace("__TEXT__", REMOVED_TEXT)

_OVERLAY = """
window.addEventListener("load", function () {
  var layer = document.createElement("div");
  layer.style.cssText = "position:fixed;left:0;top:0;width:100%;height:100%;z-index:1000;" +
                        "background:#fff";
  var p = document.createElement("p");
  p.textContent = "__TEXT__";
  layer.appendChild(p);
  document.body.appendChild(layer);
});
""".replace("__TEXT__", REMOVED_TEXT)

_BLOB = """
fetch("__API__").then(function (r) { return r.json(); }).then(function (data) {
  var raw = atob(data.base64), bytes = new Uint8Array(raw.length);
  for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  var url = URL.createObjectURL(new Blob([bytes], {type: data.type}));
  var img = document.createElement("img");
  img.alt = "Photo";
  img.onload = function () { URL.revokeObjectURL(url); };
  img.src = url;
  document.body.appendChild(img);
});
"""

_GETTER_THROWS = """
Object.defineProperty(HTMLImageElement.prototype, "currentSrc",
                      {get() { throw new Error("no"); }});
Element.prototype.checkVisibility = function () { throw new Error("no"); };
"""

# Other bytes wherever a reader in the page might take them from.
_OTHER_BYTES = """
const other = Uint8Array.from(atob("__OTHER__".split(",")[1]), (c) => c.charCodeAt(0));
const otherBlob = () => new Blob([other], {type: "image/jpeg"});
"""

_BLOB_OVERRIDE = _OTHER_BYTES + """
Response.prototype.blob = async function () { return otherBlob(); };
Response.prototype.arrayBuffer = async function () { return other.buffer; };
Blob.prototype.slice = function () { return otherBlob(); };
FileReader.prototype.readAsDataURL = function () {
  this.readAsDataURL = null;
  Object.defineProperty(this, "result", {value: "__OTHER__"});
  setTimeout(() => this.onload && this.onload());
};
"""

_KEY_OVERRIDE = _OTHER_BYTES + """
window.addEventListener("load", function () {
  const fake = async () => new Response(otherBlob());
  for (const name of Object.getOwnPropertyNames(window)) {
    try { const value = window[name];
          if (value && typeof value === "object" && value !== window) value.fetch = fake; }
    catch (e) {}
    if (name.startsWith("__hw_"))
      try { window[name] = {fetch: fake, hosts: new WeakMap(), blobs: new Map(), inline: []}; }
      catch (e) {}
  }
});
"""

# Shows the photo to a person, the notice to a crawler the test finds.
_CLOAK = """
document.addEventListener("DOMContentLoaded", function () {
  const bot = (__TEST__);
  document.getElementById("v").innerHTML = bot ? "<p>__TEXT__</p>" : '__PHOTO__';
});
""".replace("__TEXT__", REMOVED_TEXT)
_CLOAK_KEY = 'Object.getOwnPropertyNames(window).some((k) => k.startsWith("__hw_"))'
_CLOAK_WRAPPED = ("[URL.createObjectURL, Element.prototype.attachShadow].some((f) => "
                  "!/\\[native code\\]/.test(Function.prototype.toString.call(f)))")

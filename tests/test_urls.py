"""kernel.urls: one spelling per reported URL, the one a browser would request."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.urls import (
    NormalisedUrl,
    Refusal,
    UrlError,
    browser_url,
    document_url,
    is_route,
    normalise_url,
    redirect_url,
    url_host,
    url_route,
)


@pytest.mark.parametrize(("raw", "url", "host"), [
    # Scheme and host lower-cased, empty path made "/".
    ("HTTP://WWW.Example.COM", "http://www.example.com/", "www.example.com"),
    ("https://Img.Example.NL/Gallery/IMG_0042.JPG",
     "https://img.example.nl/Gallery/IMG_0042.JPG", "img.example.nl"),
    ("hTTpS://cdn.example.org?id=42", "https://cdn.example.org/?id=42", "cdn.example.org"),
    # Surrounding whitespace, as pasted from a mail or a spreadsheet.
    ("  https://example.com/a.jpg\t\n", "https://example.com/a.jpg", "example.com"),
    # Default ports dropped, other ports kept; leading zeros are the same port.
    ("http://example.com:80/x", "http://example.com/x", "example.com"),
    ("https://example.com:443/x", "https://example.com/x", "example.com"),
    ("http://example.com:443/x", "http://example.com:443/x", "example.com"),
    ("https://example.com:80/x", "https://example.com:80/x", "example.com"),
    ("https://files.example.com:8443/dl/7f3a", "https://files.example.com:8443/dl/7f3a",
     "files.example.com"),
    ("http://example.com:0080/", "http://example.com/", "example.com"),
    ("http://example.com:/x", "http://example.com/x", "example.com"),
    # An anchor fragment dropped, query kept exactly (order, case, escapes,
    # empty values); a route fragment kept (see test_route_fragments).
    ("https://example.com/view.php?id=12&B=2&a=&id=3#top",
     "https://example.com/view.php?id=12&B=2&a=&id=3", "example.com"),
    ("https://example.com/#/album/9", "https://example.com/#/album/9", "example.com"),
    ("https://example.com/?", "https://example.com/?", "example.com"),
    ("https://example.com/p?next=%2Fhome%3Fa%3D1", "https://example.com/p?next=%2Fhome%3Fa%3D1",
     "example.com"),
    # Percent-encoding kept as given: not decoded, case not changed.
    ("https://example.com/%7Euser/%e2%82%ac.jpg", "https://example.com/%7Euser/%e2%82%ac.jpg",
     "example.com"),
    ("https://example.com/100%/done", "https://example.com/100%/done", "example.com"),
    # Dot segments resolved, backslashes read as slashes: what a browser requests.
    ("https://example.com/a/../b/./c", "https://example.com/b/c", "example.com"),
    ("https://example.com/a/%2E%2E/b", "https://example.com/b", "example.com"),
    ("http://example.com\\evil.example/", "http://example.com/evil.example/", "example.com"),
    ("http://example.com\\@evil.example/", "http://example.com/@evil.example/", "example.com"),
    # Slashes after the scheme as a browser counts them (none, one, three).
    ("http:example.com", "http://example.com/", "example.com"),
    ("https:/example.com/x", "https://example.com/x", "example.com"),
    ("http:///a.jpg", "http://a.jpg/", "a.jpg"),
    # Empty credentials are no credentials; an escaped letter in a host is the letter.
    ("http://:@example.com/", "http://example.com/", "example.com"),
    ("http://ex%61mple.com/", "http://example.com/", "example.com"),
    # Quotes and angle brackets in the path travel percent-encoded.
    ('https://example.com/a"b<c>', "https://example.com/a%22b%3Cc%3E", "example.com"),
    # Spaces and non-ASCII in path and query percent-encoded as UTF-8.
    ("https://example.com/my photos/1.jpg", "https://example.com/my%20photos/1.jpg",
     "example.com"),
    ("https://example.com/fotoğraf/ü.jpg?q=größe 2",
     "https://example.com/foto%C4%9Fraf/%C3%BC.jpg?q=gr%C3%B6%C3%9Fe%202", "example.com"),
    ("https://example.com/картинка", "https://example.com/%D0%BA%D0%B0%D1%80%D1%82%D0%B8%D0%BD"
     "%D0%BA%D0%B0", "example.com"),
    # IDN hosts to punycode; upper-case and full-width letters folded.
    ("https://BÜCHER.example/a", "https://xn--bcher-kva.example/a", "xn--bcher-kva.example"),
    ("http://münchen.de/bild.png", "http://xn--mnchen-3ya.de/bild.png", "xn--mnchen-3ya.de"),
    ("https://пример.рф/", "https://xn--e1afmkfd.xn--p1ai/", "xn--e1afmkfd.xn--p1ai"),
    ("https://例え.テスト/", "https://xn--r8jz45g.xn--zckzah/", "xn--r8jz45g.xn--zckzah"),
    ("http://ＥＸＡＭＰＬＥ.com/", "http://example.com/", "example.com"),
    ("https://xn--mnchen-3ya.de/", "https://xn--mnchen-3ya.de/", "xn--mnchen-3ya.de"),
    # A trailing dot names the same DNS host: kept in the URL, not in the host.
    ("https://example.com./a", "https://example.com./a", "example.com"),
    # Underscores occur in real host names.
    ("https://my_bucket.storage.example.net/o", "https://my_bucket.storage.example.net/o",
     "my_bucket.storage.example.net"),
    # IP literals: IPv4 as is, IPv6 bracketed in the URL, compressed and lower-cased.
    ("http://203.0.113.7/x.jpg", "http://203.0.113.7/x.jpg", "203.0.113.7"),
    ("http://203.0.113.7:8080", "http://203.0.113.7:8080/", "203.0.113.7"),
    ("http://[2001:DB8:0:0::1]/x", "http://[2001:db8::1]/x", "2001:db8::1"),
    ("https://[2001:db8::1]:443/", "https://[2001:db8::1]/", "2001:db8::1"),
    ("http://[2001:db8::1]:8080?a", "http://[2001:db8::1]:8080/?a", "2001:db8::1"),
    # An "@" after the host is part of the path, not userinfo.
    ("https://social.example/@someone/123", "https://social.example/@someone/123",
     "social.example"),
])
def test_normal_form(raw, url, host):
    assert normalise_url(raw) == NormalisedUrl(url=url, host=host)


def test_normal_form_is_stable():
    for raw in ("HTTP://Ex.com:80/a b?c=ü#f", "https://BÜCHER.example", "http://[::1]:81"):
        once = normalise_url(raw).url
        assert normalise_url(once).url == once


@pytest.mark.parametrize(("raw", "refusal", "detail"), [
    ("ftp://files.example.com/a.jpg", Refusal.SCHEME, ""),
    ("javascript:alert(1)", Refusal.SCHEME, ""),
    ("mailto:abuse@example.com", Refusal.SCHEME, ""),
    ("file:///etc/passwd", Refusal.SCHEME, ""),
    ("hxxp://example.com/", Refusal.SCHEME, ""),
    ("example.com/a.jpg", Refusal.SCHEME, "no scheme"),
    ("www.example.com:8080/a.jpg", Refusal.SCHEME, ""),
    ("//example.com/a.jpg", Refusal.SCHEME, "no scheme"),
    ("", Refusal.SCHEME, "no scheme"),
    ("   ", Refusal.SCHEME, "no scheme"),
    ("http://", Refusal.NOT_A_URL, "empty host"),
    ("https://:8080/a", Refusal.NOT_A_URL, "empty host"),
    ("https://?q=1", Refusal.NOT_A_URL, "empty host"),
    ("http://user:secret@example.com/", Refusal.CREDENTIALS, ""),
    ("https://admin@example.com/", Refusal.CREDENTIALS, ""),
    ("http://example.com:99999/", Refusal.NOT_A_URL, "invalid port '99999'"),
    ("http://example.com:0/", Refusal.PORT_ZERO, ""),
    ("http://example.com:8o8o/", Refusal.NOT_A_URL, "invalid port '8o8o'"),
    ("http://example.com:-1/", Refusal.NOT_A_URL, "invalid port '-1'"),
    ("http://example.com:+80/", Refusal.NOT_A_URL, "invalid port '+80'"),
    ("http://example.com:٨٠/", Refusal.NOT_A_URL, "invalid port"),
    ("http://exa mple.com/", Refusal.NOT_A_URL, "invalid character in host"),
    ("http://exa<mple.com/", Refusal.NOT_A_URL, "invalid character in host"),
    ("http://a..b.example/", Refusal.HOST_NOT_DNS, "empty label"),
    ("http://" + "a" * 64 + ".example/", Refusal.HOST_NOT_DNS, "longer than 63"),
    ("http://" + ".".join(["abcdefghij"] * 24) + ".example/", Refusal.HOST_NOT_DNS,
     "longer than 253"),
    ("http://a!b.example/", Refusal.HOST_NOT_DNS, "character '!'"),
    ("http://[2001:db8::1/", Refusal.NOT_A_URL, "invalid IPv6 address"),
    ("http://[2001:db8::zz]/", Refusal.NOT_A_URL, "invalid IPv6 address"),
    ("http://[fe80::1%25eth0]/", Refusal.NOT_A_URL, "invalid IPv6 address"),
    ("http://[::1]x/", Refusal.NOT_A_URL, ""),
    # A browser reads a host that ends in a number as IPv4, and refuses it
    # when it is not one: never a DNS name.
    ("http://1.2.3.4.5/", Refusal.NOT_A_URL, "not an IPv4 address"),
    ("http://4294967296/", Refusal.NOT_A_URL, "not an IPv4 address"),
    ("http://0x100000000/", Refusal.NOT_A_URL, "not an IPv4 address"),
    ("http://256.1.1.1/", Refusal.NOT_A_URL, "not an IPv4 address"),
    ("http://images.example.09/", Refusal.NOT_A_URL, "not an IPv4 address"),
    ("http://example.com/a\nb", Refusal.CONTROL, ""),
    ("http://exa\tmple.com/", Refusal.CONTROL, ""),
    ("http://example.com/a\x00.jpg", Refusal.CONTROL, ""),
    ("\x00http://example.com/a.jpg", Refusal.CONTROL, ""),  # stripped by a browser
    ("http://example.com/a.jpg\x00", Refusal.CONTROL, ""),
    ("http://example.com/caf\udce9", Refusal.NOT_UNICODE, ""),
])
def test_rejected_with_a_reason(raw, refusal, detail):
    with pytest.raises(UrlError) as caught:
        normalise_url(raw)
    assert caught.value.refusal is refusal
    assert str(caught.value).startswith(refusal.value)
    assert detail in caught.value.detail


def test_url_error_is_a_value_error():
    with pytest.raises(ValueError):
        normalise_url("gopher://example.com/")


def test_idn_hosts_follow_idna_2008_like_browsers():
    # IDNA 2003 would map "ß" to "ss" and send the check to another domain.
    assert normalise_url("http://straße.de/x").host == "xn--strae-oqa.de"


@pytest.mark.parametrize(("raw", "url", "host"), [
    # IPv4 hosts written the ways a browser accepts (WHATWG IPv4 parser):
    # decimal, hex, octal, short dotted and mixed forms are one address.
    ("http://3232235777/", "http://192.168.1.1/", "192.168.1.1"),
    ("http://0x7f.1/", "http://127.0.0.1/", "127.0.0.1"),
    ("http://0xa9.0xfe.0xa9.0xfe/latest/meta-data/", "http://169.254.169.254/latest/meta-data/",
     "169.254.169.254"),
    ("http://0251.0376.0251.0376/", "http://169.254.169.254/", "169.254.169.254"),
    ("http://0XA9FEA9FE/", "http://169.254.169.254/", "169.254.169.254"),
    ("http://10.1/", "http://10.0.0.1/", "10.0.0.1"),
    ("http://192.168.257/", "http://192.168.1.1/", "192.168.1.1"),
    ("http://0x55.0x11.0401/a.jpg", "http://85.17.1.1/a.jpg", "85.17.1.1"),
    ("https://1427439873:8443/a.jpg", "https://85.21.1.1:8443/a.jpg", "85.21.1.1"),
    ("http://127.1./", "http://127.0.0.1/", "127.0.0.1"),
    ("http://0/", "http://0.0.0.0/", "0.0.0.0"),
    # A full-width or percent-encoded number is still the number.
    ("http://０ｘ７ｆ.１/", "http://127.0.0.1/", "127.0.0.1"),
    ("http://%30x7f.1/", "http://127.0.0.1/", "127.0.0.1"),
    # IPv6 as a browser writes it: compressed, lower case, IPv4 tail in hex.
    ("http://[0:0:0:0:0:0:0:1]/", "http://[::1]/", "::1"),
    ("http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "::ffff:7f00:1"),
    ("http://[2001:DB8:0:0:1:0:0:1]:8080/", "http://[2001:db8::1:0:0:1]:8080/",
     "2001:db8::1:0:0:1"),
])
def test_numeric_hosts_are_the_address_a_browser_connects_to(raw, url, host):
    assert normalise_url(raw) == NormalisedUrl(url=url, host=host)


def test_a_name_that_only_contains_numbers_in_other_labels_stays_a_name():
    assert normalise_url("http://1.example/").host == "1.example"
    assert normalise_url("http://0x7f.example/").host == "0x7f.example"


def test_url_host_reads_any_absolute_url_as_a_browser_does():
    assert url_host("http://0x7f.1:8080/x") == "127.0.0.1"
    assert url_host("https://[2001:DB8::1]/") == "2001:db8::1"
    assert url_host("http://BÜCHER.example./") == "xn--bcher-kva.example"
    assert url_host("http://1.2.3.4.5/") is None
    assert url_host("/relative") is None


def test_browser_url_is_what_a_browser_would_request():
    assert browser_url("http://3232235777:81/a/../b#x") == "http://192.168.1.1:81/b"
    assert browser_url("http://[::1/") is None


@pytest.mark.parametrize(("location", "target"), [
    ("http://u:secret@h.example:8/a?q#frag", "http://h.example:8/a?q"),
    ("/x?#y", "http://base.example/x?"),
    ("http://a%2Fb:c%2F@h.example?x", "http://h.example/?x"),
    ("//0x7f.1/a b", "http://127.0.0.1/a%20b"),
    ("http://\u00e9.example/?a=\u00e9", "http://xn--9ca.example/?a=%C3%A9"),
    ("http://[::1/", None),
])
def test_a_redirect_target_is_what_a_browser_requests_without_credentials(location, target):
    assert redirect_url(location, "http://user:pw@base.example/dir/") == target


def test_every_refusal_is_documented_in_the_readme():
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    section = readme[readme.index("### Reported URLs"):]
    for refusal in Refusal:
        assert f"`{refusal.value}`" in section, refusal


@pytest.mark.parametrize(("raw", "url"), [
    # Hash-slash and hash-bang routes of single-page apps are kept: each is
    # another item at the same document.
    ("https://spa.example/app/#/photo/21", "https://spa.example/app/#/photo/21"),
    ("https://spa.example/app/#/photo/22", "https://spa.example/app/#/photo/22"),
    ("https://spa.example/#!/item/9", "https://spa.example/#!/item/9"),
    ("https://spa.example/#!item/9", "https://spa.example/#!item/9"),
    ("HTTPS://SPA.example:443#/Photo/21?size=Large", "https://spa.example/#/Photo/21?size=Large"),
    ("https://spa.example/#/", "https://spa.example/#/"),
    ("https://spa.example/#!", "https://spa.example/#!"),
    # Serialised as a browser writes a fragment: spaces, quotes, angle
    # brackets and non-ASCII escaped; existing escapes and "#" kept.
    ("https://spa.example/#/foto/ü x", "https://spa.example/#/foto/%C3%BC%20x"),
    ('https://spa.example/#/a"<b>`', "https://spa.example/#/a%22%3Cb%3E%60"),
    ("https://spa.example/#/a%2Fb#c", "https://spa.example/#/a%2Fb#c"),
    # Anything else is a place in the page: the same document, the same case.
    ("https://spa.example/app/#top", "https://spa.example/app/"),
    ("https://spa.example/app/#comments", "https://spa.example/app/"),
    ("https://spa.example/doc.pdf#page=2", "https://spa.example/doc.pdf"),
    ("https://spa.example/app/#", "https://spa.example/app/"),
    ("https://spa.example/app/# /photo/21", "https://spa.example/app/"),
    ("https://spa.example/app/#%2Fphoto", "https://spa.example/app/"),
])
def test_route_fragments(raw, url):
    assert normalise_url(raw).url == url
    assert normalise_url(url).url == url  # stable
    assert document_url(url) == url.partition("#")[0]
    assert url_route(url) == (url.partition("#")[2] if "#" in url else None)


def test_which_fragments_are_routes():
    assert [f for f in ("/photo/1", "!/item/9", "!item", "/", "!", "top", "", "page=2",
                        " /x", "%2Fx", "?/x") if is_route(f)] == ["/photo/1", "!/item/9",
                                                                   "!item", "/", "!"]


_ROUTE_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)


@given(prefix=st.sampled_from(["/", "!", "!/"]), rest=_ROUTE_TEXT)
def test_a_route_is_kept_and_only_the_route_differs(prefix, rest):
    """Any route keeps the document's own normal form and adds its
    fragment; the document is what an HTTP check requests."""
    document = "https://spa.example/app/"
    normal = normalise_url(f"{document}#{prefix}{rest}").url
    assert document_url(normal) == document
    assert url_route(normal) is not None and url_route(normal).startswith(prefix)
    assert normalise_url(normal).url == normal


@given(fragment=_ROUTE_TEXT.filter(lambda f: not f.startswith(("/", "!"))))
def test_an_anchor_is_the_same_case_as_its_document(fragment):
    assert normalise_url(f"https://spa.example/app/#{fragment}").url == "https://spa.example/app/"

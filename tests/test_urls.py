"""hostwatch.urls: one spelling per reported URL, without changing what is fetched."""

import pytest

from hostwatch.urls import NormalisedUrl, UrlError, normalise_url


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
    # Fragment dropped, query kept exactly (order, case, escapes, empty values).
    ("https://example.com/view.php?id=12&B=2&a=&id=3#top",
     "https://example.com/view.php?id=12&B=2&a=&id=3", "example.com"),
    ("https://example.com/#/album/9", "https://example.com/", "example.com"),
    ("https://example.com/?", "https://example.com/?", "example.com"),
    ("https://example.com/p?next=%2Fhome%3Fa%3D1", "https://example.com/p?next=%2Fhome%3Fa%3D1",
     "example.com"),
    # Percent-encoding kept as given: not decoded, case not changed.
    ("https://example.com/%7Euser/%e2%82%ac.jpg", "https://example.com/%7Euser/%e2%82%ac.jpg",
     "example.com"),
    ("https://example.com/100%/done", "https://example.com/100%/done", "example.com"),
    # Dot segments are what the server is asked for: kept.
    ("https://example.com/a/../b/./c", "https://example.com/a/../b/./c", "example.com"),
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


@pytest.mark.parametrize(("raw", "reason"), [
    ("ftp://files.example.com/a.jpg", "scheme must be http or https"),
    ("javascript:alert(1)", "scheme must be http or https"),
    ("mailto:abuse@example.com", "scheme must be http or https"),
    ("file:///etc/passwd", "scheme must be http or https"),
    ("hxxp://example.com/", "scheme must be http or https"),
    ("example.com/a.jpg", "scheme must be http or https"),
    ("www.example.com:8080/a.jpg", "scheme must be http or https"),
    ("//example.com/a.jpg", "scheme must be http or https"),
    ("", "scheme must be http or https"),
    ("   ", "scheme must be http or https"),
    ("http:example.com", "missing '//' after 'http:'"),
    ("https:/example.com/x", "missing '//' after 'https:'"),
    ("http://", "empty host"),
    ("http:///a.jpg", "empty host"),
    ("https://:8080/a", "empty host"),
    ("https://?q=1", "empty host"),
    ("http://user:secret@example.com/", "credentials are not stored"),
    ("https://admin@example.com/", "credentials are not stored"),
    ("http://:@example.com/", "credentials are not stored"),
    ("http://example.com:99999/", "invalid port '99999'"),
    ("http://example.com:0/", "invalid port '0'"),
    ("http://example.com:8o8o/", "invalid port '8o8o'"),
    ("http://example.com:-1/", "invalid port '-1'"),
    ("http://example.com:+80/", "invalid port '+80'"),
    ("http://example.com:٨٠/", "invalid port"),
    ("http://exa mple.com/", "invalid character in host"),
    ("http://example.com\\@evil.example/", "credentials are not stored"),
    ("http://example.com\\evil.example/", "invalid character in host"),
    ("http://ex%61mple.com/", "invalid character in host"),
    ("http://exa<mple.com/", "invalid character in host"),
    ("http://a..b.example/", "not a valid domain name"),
    ("http://" + "a" * 64 + ".example/", "not a valid domain name"),
    ("http://" + ".".join(["abcdefghij"] * 24) + ".example/", "longer than 253"),
    ("http://[2001:db8::1/", "without closing ']'"),
    ("http://[2001:db8::zz]/", "not an IPv6 address"),
    ("http://[fe80::1%25eth0]/", "zone identifiers"),
    ("http://[::1]x/", "unexpected 'x' after IPv6 address"),
    ("http://example.com/a\nb", "control character"),
    ("http://example.com/a\x00.jpg", "control character"),
    ("http://example.com/caf\udce9", "not valid Unicode"),
])
def test_rejected_with_a_reason(raw, reason):
    with pytest.raises(UrlError, match=None) as caught:
        normalise_url(raw)
    assert reason in str(caught.value)


def test_url_error_is_a_value_error():
    with pytest.raises(ValueError):
        normalise_url("gopher://example.com/")


def test_idn_hosts_follow_idna_2008_like_browsers():
    # IDNA 2003 would map "ß" to "ss" and send the check to another domain.
    assert normalise_url("http://straße.de/x").host == "xn--strae-oqa.de"

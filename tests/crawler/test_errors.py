"""error_kind(): failures map to kinds, and no response bytes reach the reason."""

from twisted.internet import error as txerror
from twisted.python.failure import Failure
from twisted.web._newclient import ParseError, ResponseNeverReceived

from crawler.browser.page import _error_kind as browser_error_kind
from crawler.browser.proxy import GuardedProxy
from crawler.errors import error_kind
from crawler.verdict import ErrorKind
from outbound.dns import Resolver


def test_a_parse_error_keeps_the_class_not_the_bytes_the_server_sent():
    wrapped = ResponseNeverReceived([Failure(ParseError("wrong number of parts",
                                                        b"SECRET-BODY-BYTES"))])
    kind, detail = error_kind(wrapped)
    assert kind is ErrorKind.BAD_RESPONSE
    assert "SECRET" not in detail
    assert "ParseError" in detail


def test_refused_and_timeouts_keep_their_message():
    kind, detail = error_kind(txerror.ConnectionRefusedError("111: Connection refused"))
    assert kind is ErrorKind.REFUSED
    assert "Connection refused" in detail
    assert error_kind(txerror.TimeoutError())[0] is ErrorKind.TIMEOUT


def test_a_browser_error_keeps_the_api_name_not_what_the_page_said():
    # A page's script can make Playwright's evaluate() throw with any text.
    proxy = GuardedProxy(Resolver((("127.0.0.1", 53),)), ())
    message = "Page.evaluate: Error: SECRET-PAGE-TEXT\n    at eval (eval at <anonymous>)"
    kind, detail = browser_error_kind(message, proxy)
    assert kind is ErrorKind.OTHER
    assert "SECRET" not in detail
    assert detail.startswith("browser error in Page.evaluate (message withheld: ")


def test_a_net_error_a_page_throws_is_neither_its_verdict_nor_its_words():
    # A page's getter can throw "net::ERR_SSL_<anything>" into our read: that
    # is text the page chose, not a TLS failure of the browser.
    proxy = GuardedProxy(Resolver((("127.0.0.1", 53),)), ())
    for message in ("Page.evaluate: Error: net::ERR_SSL_SECRETPAGETEXT",
                    "Frame.evaluate: Error: net::ERR_NAME_NOT_RESOLVED",
                    "Page.goto: net::ERR_CERT_SECRETPAGETEXT at http://x.test/"):
        kind, detail = browser_error_kind(message, proxy)
        assert kind is ErrorKind.OTHER, message
        assert "SECRET" not in detail and "ERR_" not in detail, message


def test_the_browsers_own_net_errors_keep_their_kind_and_name():
    proxy = GuardedProxy(Resolver((("127.0.0.1", 53),)), ())
    assert browser_error_kind("Page.goto: net::ERR_CERT_AUTHORITY_INVALID at https://x.test/",
                              proxy) == (ErrorKind.TLS, "ERR_CERT_AUTHORITY_INVALID")
    assert browser_error_kind("Page.goto: net::ERR_NAME_NOT_RESOLVED at http://x.test/",
                              proxy) == (ErrorKind.NXDOMAIN, "ERR_NAME_NOT_RESOLVED")

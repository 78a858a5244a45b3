"""error_kind(): failures map to kinds, and no response bytes reach the reason."""

from twisted.internet import error as txerror
from twisted.python.failure import Failure
from twisted.web._newclient import ParseError, ResponseNeverReceived

from crawler.errors import error_kind
from crawler.verdict import ErrorKind


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

"""The local test internet: a real DNS server and scripted HTTP hosts on loopback.

Used by the test suite (in-process), ``hostwatch demo`` and the benchmarks
(``python -m tests.net serve``). Nothing here binds or connects outside
127.0.0.0/8.

    with TestInternet() as net:
        host = net.add_host("gallery-a.test")
        host.route("/img/1.jpg", [Serve(marker_body("case-1")), Status(404)])
        ...  # crawl with HOSTWATCH_NAMESERVERS=net.nameservers_env
        net.round = 1  # now /img/1.jpg answers 404
"""

from tests.net.behaviours import (
    Behaviour,
    Bursts,
    EndlessRedirect,
    Garbage,
    Hangup,
    Homepage,
    Huge,
    LoginPage,
    Redirect,
    RedirectHome,
    RedirectLogin,
    Reply,
    Request,
    Reset,
    Response,
    Serve,
    Slow,
    SoftNotFound,
    Status,
    Stream,
    marker_body,
)
from tests.net.internet import Hit, Host, TestInternet

__all__ = [
    "Behaviour",
    "Bursts",
    "EndlessRedirect",
    "Garbage",
    "Hangup",
    "Hit",
    "Homepage",
    "Host",
    "Huge",
    "LoginPage",
    "Redirect",
    "RedirectHome",
    "RedirectLogin",
    "Reply",
    "Request",
    "Reset",
    "Response",
    "Serve",
    "Slow",
    "SoftNotFound",
    "Status",
    "Stream",
    "TestInternet",
    "marker_body",
]

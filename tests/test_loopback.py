"""The test session's loopback guard (tests/conftest.py) does refuse the outside."""

import socket

import pytest


def test_the_loopback_guard_refuses_the_outside_world() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, \
            pytest.raises(OSError, match="stay on 127"):
        sock.sendto(b"x", ("192.0.2.1", 53))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, \
            pytest.raises(OSError, match="stay on 127"):
        sock.connect(("8.8.8.8", 53))

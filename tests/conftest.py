"""Shared fixtures: a store on SQLite (always) and on the local PostgreSQL.

PostgreSQL tests skip when the server is unreachable, unless
HOSTWATCH_REQUIRE_SERVICES=1 (as in CI), where they fail instead.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text

from store import Store
from tests import netns

PG_URL = os.environ.get(
    "HOSTWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("HOSTWATCH_REQUIRE_SERVICES") == "1"
# The tests state every setting they use: a developer's own HOSTWATCH_OFFLINE=1,
# HOSTWATCH_DB or HOSTWATCH_GEOIP_DB (set in the shell for every run by hand)
# must not change what a test checks, in this process or a child.
# The tests' own switches stay: HOSTWATCH_TEST_* (HOSTWATCH_TEST_NETNS marks the
# child a netns test runs in, tests/netns.py: without it the child would run
# itself again in a new namespace, and so on) and HOSTWATCH_REQUIRE_SERVICES.
for _name in [name for name in os.environ if name.startswith("HOSTWATCH_")]:
    if not _name.startswith("HOSTWATCH_TEST_") and _name != "HOSTWATCH_REQUIRE_SERVICES":
        del os.environ[_name]

# Property tests (tests/*_properties.py): a bounded number of examples, no
# per-example time limit (a busy machine is not a failure), and in CI the same
# examples every run, so a red CI always reproduces. HYPOTHESIS_PROFILE=deep
# searches longer by hand.
settings.register_profile("hostwatch", max_examples=100, deadline=None,
                          derandomize=os.environ.get("CI") == "true")
settings.register_profile("deep", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "hostwatch"))


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure means "not reachable here"
        return str(exc).splitlines()[0]
    return None


def need_postgres() -> None:
    problem = _pg_reachable()
    if problem is None:
        return
    if REQUIRE_SERVICES:
        pytest.fail("PostgreSQL required (HOSTWATCH_REQUIRE_SERVICES=1) "
                    f"but unreachable: {problem}")
    pytest.skip(f"PostgreSQL unreachable: {problem}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, private schema."""
    need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'hostwatch.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hostwatch.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url) -> Iterator[Store]:
    s = Store(db_url)
    s.upgrade()
    yield s
    s.dispose()


# -- loopback only --------------------------------------------------------------
# No test may send a packet outside 127.0.0.0/8. Every socket this test process
# opens goes through these checks (the crawl children get loopback endpoints
# from their environment: HOSTWATCH_NAMESERVERS, HOSTWATCH_RDAP_URL...).

_CONNECT = socket.socket.connect
_CONNECT_EX = socket.socket.connect_ex
_SENDTO = socket.socket.sendto


def _refuse_outside(address: object) -> None:
    if not isinstance(address, tuple) or not address:
        return  # a Unix socket path
    host = str(address[0]).split("%")[0]
    if host == "localhost":
        return
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise OSError(f"a test connected to the name {host!r}: tests use loopback "
                      "addresses only") from None
    mapped = getattr(ip, "ipv4_mapped", None)
    if not (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
        raise OSError(f"a test tried to reach {host}: tests stay on 127.0.0.0/8")


def _connect(self: socket.socket, address: Any) -> None:
    _refuse_outside(address)
    _CONNECT(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    _refuse_outside(address)
    return _CONNECT_EX(self, address)


def _sendto(self: socket.socket, data: Any, *args: Any) -> int:
    _refuse_outside(args[-1])
    return _SENDTO(self, data, *args)


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = _sendto  # type: ignore[method-assign]
    yield
    socket.socket.connect = _CONNECT  # type: ignore[method-assign]
    socket.socket.connect_ex = _CONNECT_EX  # type: ignore[method-assign]
    socket.socket.sendto = _SENDTO  # type: ignore[method-assign]



# -- tests aimed at addresses outside loopback: in a network namespace -----------


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A ``netns`` test's body runs only in a child inside ``unshare --net``
    (tests/netns.py); here it takes the child's result."""
    if pyfuncitem.get_closest_marker("netns") is None:
        return None
    if netns.inside():
        if not netns.only_loopback():
            pytest.fail("a netns test found network interfaces other than lo")
        return None  # run the body here, in the namespace
    passed, output = netns.run_in_namespace(pyfuncitem.nodeid)
    if not passed:
        pytest.fail(f"in a network namespace:\n{output}", pytrace=False)
    return True

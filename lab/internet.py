"""TestInternet: DNS, scripted HTTP hosts, test networks and RDAP on loopback.

Each host gets its own address and an A record; every host listens on the
same HTTP port. A host without a network lives in 127.0.0.0/16 (from
127.0.0.10 up, in no ASN); a host in a test network gets an address of that
network's block (see ``lab.networks`` for the address plan). Routes map
a path to a behaviour, or to a list of behaviours indexed by ``net.round``
(the last one repeats), so one test can script "served, then gone" across
crawl rounds.

Started with the internet, besides DNS and the hosts: an RDAP server on its
own port of 127.0.0.1 (``rdap_url``), and two files describing the test
networks, a pyasn table (``asn_table_path``) and an asnames JSON
(``asnames_path``).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from lab.dns_server import DnsServer, Zone, canonical
from lab.hosts import Hit, Host
from lab.http_server import HttpServer, Listener, listen, listen_all
from lab.networks import (
    ASN_TABLE_FILE,
    ASNAMES_FILE,
    CUSTOM_NETWORKS_FROM,
    DEFAULT_NETWORKS,
    GEOIP_FILE,
    PLAIN_HOSTS,
    AddressPool,
    Mimic,
    Network,
    NetworkSpec,
    cdn_headers,
    make_network,
    write_network_files,
)
from lab.rdap import REAL_RESPONSES, RdapHit, RdapServer, Target

__all__ = ["FIRST_HOST_IP", "Hit", "Host", "TestInternet"]

FIRST_HOST_IP = "127.0.0.10"
"""The first address of a host without a network."""

NetworkKey = Network | int | str
"""A network, its ASN (the first network of that AS) or its name (netname or AS handle)."""


class TestInternet:
    """DNS, scripted HTTP hosts and RDAP on loopback, in background threads.

    Use as a context manager, or call start() and stop(). Records, hosts and
    networks can be added before or after start; a host added after start
    listens at once.

    ``networks`` are the test networks to start with (default
    :data:`~lab.networks.DEFAULT_NETWORKS`; ``()`` for none).
    ``rdap_responses`` is the real RDAP data served by IP (None: none).
    ``files_dir`` is where the ASN table and asnames file go (kept after
    stop); by default a temporary directory removed by stop().
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self,
        ttl: int = 60,
        *,
        record_hits: bool = True,
        networks: Iterable[NetworkSpec] | None = None,
        rdap_responses: Path | None = REAL_RESPONSES,
        files_dir: Path | str | None = None,
    ) -> None:
        self.zone = Zone("test.", ttl=ttl)
        self.record_hits = record_hits
        self._dns = DnsServer(self.zone)
        self._http = HttpServer()
        self._hosts: dict[str, Host] = {}
        self._aliases: dict[str, str] = {}  # CDN edge name -> site name
        self._listeners: dict[str, Listener] = {}  # host name -> its listener, once started
        self._plain = AddressPool(PLAIN_HOSTS)
        self._networks: list[Network] = []
        self._pools: dict[str, AddressPool] = {}  # netname -> pool
        self._rdap = RdapServer(lambda: list(self._networks), rdap_responses)
        self._files_dir = Path(files_dir) if files_dir is not None else None
        self._temp_dir: Path | None = None
        self._files_written = False
        self._port: int | None = None
        self._round = 0
        self._hits: list[Hit] = []
        self._hit_count = 0
        self._lock = threading.Lock()
        for spec in DEFAULT_NETWORKS if networks is None else networks:
            self._add_network(spec)

    # -- networks ------------------------------------------------------------

    def add_network(
        self,
        asn: int,
        name: str,
        country: str,
        org: str,
        abuse: str,
        *,
        prefix: str | None = None,
        cdn: bool = False,
        rdap_name: str | None = None,
        rdap_country: str | None = None,
        org_country: str | None = None,
        reseller: str | None = None,
    ) -> Network:
        """A test network: an address block announced by AS ``asn``.

        ``name`` is the AS name as in asnames (``"HANDLE Org name"``) and
        ``country`` the AS's country; RDAP reports ``org``, ``abuse`` and
        ``rdap_country`` (default ``country``) for the block, under the
        network name ``rdap_name`` (default the AS handle), and
        ``org_country`` (default ``rdap_country``) as the holder's address,
        and ``reseller`` (default none) as the entity with role reseller. ``prefix`` is a
        /16 to /24 inside 127.0.0.0/8, outside 127.0.0.0/16; by default the
        next free /24 from 127.2.0.0. Another network of the same AS needs its
        own ``rdap_name``. Hosts join with ``add_host(..., network=...)``.
        """
        spec = NetworkSpec(asn, name, country, org, abuse, prefix, cdn, rdap_name, rdap_country,
                           org_country, reseller=reseller)
        return self._add_network(spec)

    def _add_network(self, spec: NetworkSpec) -> Network:
        network = make_network(spec, self._networks, CUSTOM_NETWORKS_FROM)
        self._pools[network.netname] = AddressPool(network.prefix)
        self._networks.append(network)
        if self._files_written:
            self._write_files()
        return network

    def network(self, key: int | str) -> Network:
        """The network of AS ``key`` (the first one added), or named ``key``.

        A name is the RDAP network name or the AS handle, any case.
        """
        for network in self._networks:
            if isinstance(key, int):
                if network.asn == key:
                    return network
            elif key.upper() in (network.netname, network.handle.upper()):
                return network
        raise KeyError(f"no test network {key!r}")

    @property
    def networks(self) -> list[Network]:
        return list(self._networks)

    def _network_of(self, key: NetworkKey | None) -> Network | None:
        if key is None or isinstance(key, Network):
            return key
        return self.network(key)

    # -- names -------------------------------------------------------------

    def add_host(
        self,
        name: str,
        *,
        headers: dict[str, str] | None = None,
        network: NetworkKey | None = None,
    ) -> Host:
        """A web host with an A record for ``name``.

        Its address is the next free one of ``network``'s block, or without a
        network the next free 127.0.0.x (from 127.0.0.10).
        """
        key = self._new_name(name)
        home = self._network_of(network)
        host = Host(self, key, self._take_ip(home), headers or {}, network=home)
        self._listen(host)
        self._hosts[key] = host
        self.zone.add_a(key, host.ip)
        return host

    def add_cdn_site(
        self,
        name: str,
        *,
        cdn_network: NetworkKey | None = None,
        edge_name: str | None = None,
        mimic: Mimic | None = None,
        headers: dict[str, str] | None = None,
    ) -> Host:
        """A site behind a CDN: ``name CNAME edge_name``, and the edge's A record in the CDN.

        ``cdn_network`` defaults to the first network marked ``cdn`` (TestCDN,
        AS64505); ``edge_name`` to ``{name}.{cdn handle}-edge.test`` (e.g.
        ``shop.test.testcdn-edge.test``). The returned host is known by both
        names and serves like any host, adding the CDN's response headers to
        every response: ``Server: TestCDN`` and ``X-TestCDN-Id``, or with
        ``mimic`` a real CDN's look-alikes ("cloudflare": ``CF-RAY``...;
        "fastly": ``X-Served-By``...; "cloudfront": ``X-Amz-Cf-Id``...);
        ``headers`` adds or overrides.
        """
        cdn = self._network_of(cdn_network)
        if cdn is None:
            cdn = next((network for network in self._networks if network.cdn), None)
            if cdn is None:
                raise ValueError("no CDN network: add one with add_network(..., cdn=True)")
        key = self._new_name(name)
        edge = self._new_name(edge_name or f"{key}.{cdn.handle.lower()}-edge.test")
        if edge == key:
            raise ValueError("the edge name must differ from the site name")
        all_headers = {**cdn_headers(edge, mimic), **(headers or {})}
        host = Host(self, key, self._take_ip(cdn), all_headers, network=cdn, edge_name=edge)
        self._listen(host)
        self._hosts[key] = host
        self._aliases[edge] = key
        self.zone.add_a(edge, host.ip)
        self.zone.add_cname(key, edge)
        return host

    def move_host(self, name: str, to_network: NetworkKey | None) -> Host:
        """Move a host to a new address in ``to_network`` (None: 127.0.0.0/16).

        Routes, behaviours, headers and counters stay. Its A record (the
        edge name's, for a CDN site) now holds the new address, with the
        zone's usual TTL: a resolver that cached the old answer keeps it until
        the TTL runs out, and the old address no longer answers (connection
        refused), as when a site leaves its old hoster.
        """
        host = self.host(name)
        target = self._network_of(to_network)
        new_ip = self._take_ip(target)
        old_listener = self._listeners.get(host.name)
        if self._http.running:
            self._listeners[host.name] = self._http.serve(listen(new_ip, self.port), host)
        self.zone.replace_a(host.address_name, host.ip, new_ip)
        host.ip, host.network = new_ip, target
        if old_listener is not None:
            self._http.close(old_listener)
        return host

    def host(self, name: str) -> Host:
        """The host called ``name`` (a CDN site also by its edge name)."""
        key = canonical(name).rstrip(".")
        return self._hosts[self._aliases.get(key, key)]

    @property
    def hosts(self) -> list[Host]:
        return list(self._hosts.values())

    def add_cname(self, name: str, target: str) -> None:
        self.zone.add_cname(name, target)

    def add_a(self, name: str, ip: str) -> None:
        """An A record only (nothing listens there unless it is a host's address)."""
        self.zone.add_a(name, ip)

    def add_aaaa(self, name: str, ip: str) -> None:
        self.zone.add_aaaa(name, ip)

    def add_servfail(self, name: str) -> None:
        self.zone.add_servfail(name)

    def break_dns(self, answer: str | None) -> None:
        """Make the DNS server a broken resolver: ``"servfail"`` or ``"nxdomain"``
        for every question (a dead or wrong resolver); ``None`` mends it."""
        if answer not in (None, "servfail", "nxdomain"):
            raise ValueError(f"break_dns: expected servfail, nxdomain or None, got {answer!r}")
        self.zone.broken = answer

    def remove_name(self, name: str) -> None:
        """Drop every DNS record of ``name`` (NXDOMAIN from now on); hosts keep serving."""
        self.zone.remove(name)

    def _new_name(self, name: str) -> str:
        key = canonical(name).rstrip(".")
        if key in self._hosts or key in self._aliases:
            raise ValueError(f"host {key} already exists")
        return key

    def _take_ip(self, network: Network | None) -> str:
        return (self._plain if network is None else self._pools[network.netname]).take()

    def _listen(self, host: Host) -> None:
        if self._http.running:
            self._listeners[host.name] = self._http.serve(listen(host.ip, self.port), host)

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> TestInternet:
        """Start DNS, RDAP and every host and write the network files.

        Returns once all of them are listening.
        """
        if self._http.running:
            raise RuntimeError("already started")
        self._dns.start()
        try:
            hosts = list(self._hosts.values())
            # Also try the next free address of every block, so that hosts
            # added later are likely to find the port free too.
            spare = [pool.peek() for pool in (self._plain, *self._pools.values())]
            ips = [host.ip for host in hosts] + [ip for ip in spare if ip is not None]
            port, socks = listen_all(ips)
            for sock in socks[len(hosts) :]:
                sock.close()
            self._port = port
            self._http.start()
            for host, sock in zip(hosts, socks[: len(hosts)], strict=True):
                self._listeners[host.name] = self._http.serve(sock, host)
            rdap_sock = listen("127.0.0.1", 0)
            self._rdap.url = f"http://127.0.0.1:{rdap_sock.getsockname()[1]}"
            self._http.serve(rdap_sock, self._rdap)
            self._write_files()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close every listener and connection, join the threads, drop temp files (idempotent)."""
        self._http.stop()
        self._dns.stop()
        self._listeners.clear()
        self._files_written = False
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def __enter__(self) -> TestInternet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------

    @property
    def port(self) -> int:
        """The HTTP port every host listens on."""
        if self._port is None:
            raise RuntimeError("the TestInternet is not started")
        return self._port

    @property
    def nameserver(self) -> tuple[str, int]:
        if self._dns.port is None:
            raise RuntimeError("the TestInternet is not started")
        return (self._dns.address, self._dns.port)

    @property
    def nameservers_env(self) -> str:
        """The value for HOSTWATCH_NAMESERVERS."""
        address, port = self.nameserver
        return f"{address}:{port}"

    def url_list(self) -> list[str]:
        """Every routed URL of every host."""
        return [host.url(path) for host in self._hosts.values() for path in host.paths]

    # -- network files -------------------------------------------------------

    @property
    def asn_table_path(self) -> Path:
        """The pyasn table of the test networks (``prefix<TAB>asn``), for HOSTWATCH_ASN_DB."""
        return self._files() / ASN_TABLE_FILE

    @property
    def asnames_path(self) -> Path:
        """The AS names of the test networks (pyasn's asnames JSON), for HOSTWATCH_ASNAMES."""
        return self._files() / ASNAMES_FILE

    @property
    def geoip_path(self) -> Path:
        """Where the test networks' servers stand (MaxMind DB format), for HOSTWATCH_GEOIP_DB."""
        return self._files() / GEOIP_FILE

    def _files(self) -> Path:
        directory = self._files_dir or self._temp_dir
        if not self._files_written or directory is None:
            raise RuntimeError("the TestInternet is not started")
        return directory

    def _write_files(self) -> None:
        if self._files_dir is None and self._temp_dir is None:
            self._temp_dir = Path(tempfile.mkdtemp(prefix="hostwatch-testnet-"))
        directory = self._files_dir or self._temp_dir
        assert directory is not None
        write_network_files(directory, self._networks)
        self._files_written = True

    # -- RDAP ------------------------------------------------------------------

    @property
    def rdap_url(self) -> str:
        """The RDAP base URL (``GET {rdap_url}/ip/{ip}``), for HOSTWATCH_RDAP_URL."""
        if not self._http.running:
            raise RuntimeError("the TestInternet is not started")
        return self._rdap.url

    def rdap_fail(
        self,
        target: Target,
        status: int = 503,
        *,
        times: int | None = None,
        delay: float = 0.0,
        retry_after: int | None = None,
    ) -> None:
        """RDAP queries for addresses inside ``target`` get ``status`` and an RDAP error.

        ``target`` is an address, a prefix or a Network. Only the next
        ``times`` matching queries fail (None: all); ``delay`` seconds pass
        before the answer; ``retry_after`` adds a Retry-After header (429).
        The latest scripted fault for an address wins.
        """
        self._rdap.fail(target, status, times=times, delay=delay, retry_after=retry_after)

    def rdap_slow(self, target: Target, seconds: float, *, times: int | None = None) -> None:
        """RDAP queries inside ``target`` are answered normally, after ``seconds``."""
        self._rdap.slow(target, seconds, times=times)

    def rdap_redirect(self, target: Target, to: str, status: int = 302, *,
                      times: int | None = None) -> None:
        """RDAP queries inside ``target`` get ``status`` with ``Location:
        {to}/ip/{address}`` (as ARIN sends a RIPE address on to RIPE); only the
        next ``times`` ones (None: all). ``to`` may name any host: the client
        under test decides whether to follow."""
        self._rdap.redirect(target, to, status, times=times)

    def clear_rdap_faults(self) -> None:
        self._rdap.clear_faults()

    @property
    def rdap_hits(self) -> list[RdapHit]:
        """A copy of every RDAP request received: path, address asked for, status."""
        return self._rdap.hits

    def rdap_hit_count(self, target: Target | None = None) -> int:
        """RDAP requests received, or IP queries for addresses inside ``target``."""
        return self._rdap.hit_count(target)

    def clear_rdap_hits(self) -> None:
        self._rdap.clear_hits()

    # -- rounds and hits ----------------------------------------------------

    @property
    def round(self) -> int:
        return self._round

    @round.setter
    def round(self, value: int) -> None:
        if value < 0:
            raise ValueError("round must be >= 0")
        with self._lock:
            self._round = int(value)

    @property
    def hits(self) -> list[Hit]:
        """A copy of every request received (while ``record_hits`` is on)."""
        with self._lock:
            return list(self._hits)

    @property
    def hit_count(self) -> int:
        """Requests received since the last clear_hits(), recorded or not."""
        return self._hit_count

    def clear_hits(self) -> None:
        with self._lock:
            self._hits.clear()
            self._hit_count = 0

    def _record(self, hit: Hit) -> None:
        with self._lock:
            self._hit_count += 1
            if self.record_hits:
                self._hits.append(hit)

"""Every setting of hostwatch, in one place.

Settings come from environment variables (``HOSTWATCH_*``); the CLI's options
override some of them. Each key has a default and a one-line description; the
README's configuration table lists them all (a test keeps the two in step).
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from kernel.errors import ConfigError
from kernel.redact import without_password
from kernel.schedule import ScheduleRule
from kernel.state import Debounce

# What HOSTWATCH_ALLOW_PRIVATE=1 lets through: loopback and the private ranges.
LAB_NETWORKS: tuple[str, ...] = (
    "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
    "100.64.0.0/10", "fc00::/7",
)


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected 0/1/true/false, got {raw!r}")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}, got {raw!r}")
    return value


def _nameservers(raw: str) -> tuple[tuple[str, int], ...]:
    """Parse ``host[:port],host[:port]``; IPv6 as ``[addr]:port``."""
    servers: list[tuple[str, int]] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else 53
        elif item.count(":") == 1:
            host, port_text = item.split(":")
            port = int(port_text)
        else:
            host, port = item, 53
        if not 0 < port < 65536:
            raise ValueError(f"port out of range in {item!r}")
        servers.append((host, port))
    return tuple(servers)


def _allow_private(raw: str) -> tuple[str, ...]:
    """``0``/``1`` or a comma-separated list of networks (CIDR)."""
    value = raw.strip().lower()
    if value in {"", "0", "false", "no", "off"}:
        return ()
    if value in {"1", "true", "yes", "on"}:
        return LAB_NETWORKS
    networks = tuple(part.strip() for part in raw.split(",") if part.strip())
    for network in networks:
        ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
    return networks


def _whole(raw: str, low: int, high: int, what: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValueError(f"expected a whole number of {what} from {low} to {high}, got {raw!r}")
    return value


def _bits(raw: str) -> int:
    """A number of PDQ bits that may differ: 0..64. Unrelated pictures are
    about 128 of 256 bits apart; beyond 64 they start to match."""
    return _whole(raw, 0, 64, "bits")


def _percent(raw: str) -> int:
    return _whole(raw, 0, 100, "percent")


def _seconds(raw: str) -> float:
    """A time limit in seconds, more than 0."""
    value = float(raw)
    if not 0 < value < float("inf"):
        raise ValueError(f"expected more than 0 seconds, got {raw!r}")
    return value


def _control_urls(raw: str) -> tuple[str, ...]:
    """Comma-separated absolute http(s) URLs with a host."""
    urls = tuple(part.strip() for part in raw.split(",") if part.strip())
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL with a host: {url!r}")
    return urls


def _share(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= 1:
        raise ValueError(f"must be a share in (0, 1], got {value}")
    return value


def _queue(raw: str) -> str:
    value = raw.strip()
    if not value:
        return ""
    scheme = value.split(":", 1)[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        raise ValueError("hostwatch's queue is Procrastinate on PostgreSQL, not Redis "
                         "(docs/architecture.md, \"Scale-out\", says why); give a "
                         "postgresql:// URL")
    if scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError("expected a PostgreSQL URL (postgresql://user@host/db)")
    return value


def _lease(raw: str) -> float:
    value = float(raw)
    if not 1 <= value <= 3600:
        raise ValueError(f"expected seconds from 1 to 3600, got {value:g}")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):  # "inf" would make a time-out or a wait endless
        raise ValueError(f"expected a finite number, got {raw.strip()!r}")
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


# Settings whose values are URLs that may hold a password: never echoed whole.
_URL_SETTINGS = frozenset({"db", "queue"})


@dataclass(frozen=True)
class _Key:
    env: str
    default: str
    parse: Callable[[str], Any]
    doc: str
    # An earlier name of the variable, still read when ``env`` is not set.
    old_env: str | None = None


# name -> (environment variable, default, parser, description)
KEYS: dict[str, _Key] = {
    "db": _Key("HOSTWATCH_DB", "sqlite:///hostwatch.db", str,
               "SQLAlchemy URL of the store; PostgreSQL as postgresql+psycopg://..."),
    "data_dir": _Key("HOSTWATCH_DATA_DIR", ".", str,
                     "folder of the run lock when the store is not a SQLite file"),
    "nameservers": _Key("HOSTWATCH_NAMESERVERS", "", _nameservers,
                        "DNS servers as host:port list; empty = the system's resolv.conf"),
    "dns_timeout": _Key("HOSTWATCH_DNS_TIMEOUT", "5", _non_negative_float,
                        "seconds for one DNS lookup, all tries included"),
    "allow_private": _Key("HOSTWATCH_ALLOW_PRIVATE", "0", _allow_private,
                          "1 (or a list of networks, e.g. 127.0.0.0/8) lets the crawler "
                          "and RDAP connect to those non-public addresses: labs and tests "
                          "only"),
    "timeout": _Key("HOSTWATCH_TIMEOUT", "15", _non_negative_float,
                    "seconds before a fetch is given up as a timeout"),
    "max_body": _Key("HOSTWATCH_MAX_BODY", str(16 * 1024 * 1024), _positive_int,
                     "bytes of a body that are hashed; the rest is not read (truncated)"),
    "max_redirects": _Key("HOSTWATCH_MAX_REDIRECTS", "10", _positive_int,
                          "redirects followed before the check ends as redirect_loop"),
    "concurrency": _Key("HOSTWATCH_CONCURRENCY", "400", _positive_int,
                        "requests in flight at once"),
    "concurrency_per_ip": _Key("HOSTWATCH_CONCURRENCY_PER_IP", "8", _positive_int,
                               "requests in flight at once to one address, whatever host "
                               "names they use (HOSTWATCH_CONCURRENCY_PER_HOST, its earlier "
                               "name, is still read)",
                               old_env="HOSTWATCH_CONCURRENCY_PER_HOST"),
    "concurrency_per_hoster": _Key("HOSTWATCH_CONCURRENCY_PER_HOSTER", "32", _positive_int,
                                   "requests in flight at once to one hoster (a case's hoster "
                                   "of record, from earlier checks), over all its addresses"),
    "backoff_max_delay": _Key("HOSTWATCH_BACKOFF_MAX_DELAY", "2", _non_negative_float,
                              "seconds at most between two requests to an address or hoster "
                              "whose requests keep failing (time-outs, refused or reset "
                              "connections, 429/502/503/504); 0 = no delay"),
    "backoff_min_concurrency": _Key("HOSTWATCH_BACKOFF_MIN_CONCURRENCY", "4", _positive_int,
                                    "requests in flight to a failing address or hoster that "
                                    "backing off never goes below, so that its cases are all "
                                    "still checked in the night"),
    "recheck_hours": _Key("HOSTWATCH_RECHECK_HOURS", "20", _non_negative_float,
                          "a case is due when its last check is at least this old"),
    "watch_removed_days": _Key("HOSTWATCH_WATCH_REMOVED_DAYS", "30", _non_negative_float,
                               "removed cases keep being checked this long, for reappearance"),
    "removal_confirmations": _Key("HOSTWATCH_REMOVAL_CONFIRMATIONS", "2", _positive_int,
                                  "consecutive gone checks that confirm a removal"),
    "removal_min_hours": _Key("HOSTWATCH_REMOVAL_MIN_HOURS", "12", _non_negative_float,
                              "hours the confirming gone checks must span"),
    "transient_days": _Key("HOSTWATCH_TRANSIENT_DAYS", "7", _non_negative_float,
                           "days of only failing checks after which removal counts as confirmed"),
    "deadline_margin": _Key("HOSTWATCH_DEADLINE_MARGIN_SECONDS", "300", _positive_int,
                            "seconds before and after an order's deadline at which "
                            "`hostwatch crawl --due` checks its case"),
    "control_urls": _Key("HOSTWATCH_CONTROL_URLS", "", _control_urls,
                         "URLs that must be served (2xx) at the start and end of every run, "
                         "fetched like the checks; a failure makes the run suspect"),
    "suspect_share": _Key("HOSTWATCH_SUSPECT_SHARE", "0.5", _share,
                          "share of a run's previously served cases failing at network level "
                          "(no name, no DNS answer, refused, time-out, TLS, guard) that makes "
                          "the run suspect"),
    "suspect_min_cases": _Key("HOSTWATCH_SUSPECT_MIN_CASES", "20", _positive_int,
                              "cases a run must have checked before a share judges it"),
    "suspect_no_address_share": _Key("HOSTWATCH_SUSPECT_NO_ADDRESS_SHARE", "0.9", _share,
                                     "share of a run's checks without a usable address (no "
                                     "name, no DNS answer, refused by the guard) that makes "
                                     "the run suspect, unless every control URL was served"),
    "write_batch": _Key("HOSTWATCH_WRITE_BATCH", "500", _positive_int,
                        "checks written per transaction"),
    "feed_batch": _Key("HOSTWATCH_FEED_BATCH", "2000", _positive_int,
                       "due cases handed to the scheduler at a time"),
    "soft404_probe": _Key("HOSTWATCH_SOFT404_PROBE", "1", _bool,
                          "probe one random sibling URL per host to learn its 'not found' page"),
    "placeholder_hashes": _Key("HOSTWATCH_PLACEHOLDER_HASHES", "", str,
                               "file of extra SHA-256 hashes of 'removed' images, one a line"),
    "placeholder_markers": _Key("HOSTWATCH_PLACEHOLDER_MARKERS", "", str,
                                "file of extra 'removed' text markers, one a line"),
    "user_agent": _Key("HOSTWATCH_USER_AGENT", "hostwatch/0.1 (+hotline re-check)", str,
                       "User-Agent header of every check"),
    "progress": _Key("HOSTWATCH_PROGRESS", "1", _bool,
                     "one progress line on stderr for crawl, enrich and export sqlite (in "
                     "place on a terminal, every few seconds elsewhere)"),
    "log_level": _Key("HOSTWATCH_LOG_LEVEL", "WARNING", _log_level,
                      "log level: WARNING shows problems only; INFO (-v) adds Scrapy's "
                      "start-up lines and Python's warnings; DEBUG (-vv) every request"),
    "asn_db": _Key("HOSTWATCH_ASN_DB", "", str,
                   "offline BGP prefix table in pyasn format (.dat or .dat.gz): IP to ASN "
                   "and prefix; empty = no ASN layer"),
    "asnames": _Key("HOSTWATCH_ASNAMES", "", str,
                    "AS names file (JSON, pyasn's asnames format, may be .gz): AS name "
                    "and country"),
    "geoip_db": _Key("HOSTWATCH_GEOIP_DB", "", str,
                     "IP geolocation database in the MaxMind DB format (GeoLite2-Country, "
                     "DB-IP Lite, IPinfo Lite): where each serving address is located; "
                     "empty = the RDAP network's country"),
    "rdap_url": _Key("HOSTWATCH_RDAP_URL", "https://rdap.arin.net/registry", str,
                     "RDAP base URL asked for address holders (GET {url}/ip/{ip}); ARIN "
                     "redirects to the registry that holds the address"),
    "rdap_timeout": _Key("HOSTWATCH_RDAP_TIMEOUT", "10", _non_negative_float,
                         "seconds for one RDAP request"),
    "rdap_ttl_days": _Key("HOSTWATCH_RDAP_TTL_DAYS", "30", _non_negative_float,
                          "days an RDAP answer is reused for its address range before it is "
                          "asked again"),
    "offline": _Key("HOSTWATCH_OFFLINE", "0", _bool,
                    "1 = enrichment asks nothing outside (no RDAP, no DNS); local files only"),
    "hosters": _Key("HOSTWATCH_HOSTERS", "", str,
                    "your hoster registry file (TOML), merged over the shipped one by id"),
    "enrich_batch": _Key("HOSTWATCH_ENRICH_BATCH", "1000", _positive_int,
                         "checks attributed per transaction"),
    "browser_rules": _Key("HOSTWATCH_BROWSER_RULES", "", str,
                          "your browser rule file (TOML): hosts that need the browser, their "
                          "'removed' texts and elements; read before the shipped one"),
    "chromium": _Key("HOSTWATCH_CHROMIUM", "/usr/bin/chromium", str,
                     "the Chromium executable browser checks run (Debian's package)"),
    "browser_pages": _Key("HOSTWATCH_BROWSER_PAGES", "2", _positive_int,
                          "browser pages open at once"),
    "browser_timeout": _Key("HOSTWATCH_BROWSER_TIMEOUT", "30", _non_negative_float,
                            "seconds a page may take in the browser, all in"),
    "browser_settle": _Key("HOSTWATCH_BROWSER_SETTLE", "5", _non_negative_float,
                           "seconds at most a page's scripts get after it loaded, to fetch and "
                           "draw; a page that is stable sooner is read sooner"),
    "browser_quiet": _Key("HOSTWATCH_BROWSER_QUIET", "0.5", _non_negative_float,
                          "seconds of nothing happening (no request, nothing shown changing, no "
                          "timer due) after which a page counts as stable and is read"),
    "browser_scroll_height": _Key("HOSTWATCH_BROWSER_SCROLL_HEIGHT", "20000", _non_negative_int,
                                  "pixels a page taller than its viewport is scrolled down at "
                                  "most, viewport by viewport, for lazy loading; 0 = no scrolling"),
    "browser_scroll_time": _Key("HOSTWATCH_BROWSER_SCROLL_TIME", "5", _non_negative_float,
                                "seconds a page is scrolled for at most; 0 = no scrolling"),
    "browser_restart_pages": _Key("HOSTWATCH_BROWSER_RESTART_PAGES", "100", _positive_int,
                                  "pages after which the browser is restarted"),
    "browser_media_limit": _Key("HOSTWATCH_BROWSER_MEDIA_LIMIT", "8", _positive_int,
                                "media files of one page hashed at most"),
    "browser_temp": _Key("HOSTWATCH_BROWSER_TEMP", "", str,
                         "where the browser's temporary profile goes (default /dev/shm, "
                         "else the system's temp dir); removed after the crawl"),
    "browser_user_agent": _Key("HOSTWATCH_BROWSER_USER_AGENT", "", str,
                               "the browser's User-Agent (default: Chromium's own)"),
    "pdq": _Key("HOSTWATCH_PDQ", "1", _bool,
                "compare served images with the reference by picture (PDQ) too, so that a "
                "re-encoded copy is not counted as removed; 0 = SHA-256 only"),
    "pdq_threshold": _Key("HOSTWATCH_PDQ_THRESHOLD", "31", _bits,
                          "PDQ bits (of 256) that may differ for the same picture (0-64)"),
    "pdq_min_quality": _Key("HOSTWATCH_PDQ_MIN_QUALITY", "50", _percent,
                            "PDQ quality (0-100) under which a picture's hash never matches "
                            "(flat or tiny images)"),
    "pdq_max_pixels": _Key("HOSTWATCH_PDQ_MAX_PIXELS", "50000000", _positive_int,
                           "images with more pixels than this, as decoded (a JPEG at its "
                           "smallest scale), are not decoded: not compared, never counted as "
                           "removed"),
    "pdq_timeout": _Key("HOSTWATCH_PDQ_TIMEOUT", "10", _seconds,
                        "seconds (more than 0) one image may take to decode and hash; its "
                        "worker is then killed and the image is not compared (never counted "
                        "as removed)"),
    "pdq_workers": _Key("HOSTWATCH_PDQ_WORKERS", "1", _non_negative_int,
                        "worker processes that decode images; 0 = a thread of the crawl "
                        "(no time-out kill, no memory cap: for machines that cannot start "
                        "processes)"),
    "serve_password_hash": _Key("HOSTWATCH_SERVE_PASSWORD_HASH", "", str,
                                "`hostwatch serve`: password hash (datasette hash-password) "
                                "of the account `analyst`; set, every page needs a login"),
    "queue": _Key("HOSTWATCH_QUEUE", "", _queue,
                  "PostgreSQL URL of the queue that workers share (Procrastinate); empty = "
                  "`crawl` checks every case in its own process"),
    "queue_lease": _Key("HOSTWATCH_QUEUE_LEASE", "30", _lease,
                        "seconds without a worker's heartbeat after which its unfinished "
                        "batches go to another worker"),
    "queue_batch": _Key("HOSTWATCH_QUEUE_BATCH", "500", _positive_int,
                        "due cases per batch (queued job) of a shared run"),
    "worker_jobs": _Key("HOSTWATCH_WORKER_JOBS", "4", _positive_int,
                        "batches a worker checks at once"),
}


@dataclass(frozen=True)
class Config:
    """Every setting of hostwatch (one field per HOSTWATCH_* variable: see
    `KEYS` and the README's "Configuration").

    Build it with `Config.from_env()` (the process environment, or a mapping
    you pass) with keyword overrides, e.g. ``Config.from_env(db="sqlite:///x.db",
    timeout=5)``; every value is checked as the environment's text is, and a
    bad one raises `ConfigError` naming the setting. Frozen: derive another
    with ``dataclasses.replace``.
    """

    db: str
    data_dir: str
    nameservers: tuple[tuple[str, int], ...]
    dns_timeout: float
    allow_private: tuple[str, ...]
    timeout: float
    max_body: int
    max_redirects: int
    concurrency: int
    concurrency_per_ip: int
    concurrency_per_hoster: int
    backoff_max_delay: float
    backoff_min_concurrency: int
    recheck_hours: float
    watch_removed_days: float
    removal_confirmations: int
    removal_min_hours: float
    transient_days: float
    deadline_margin: int
    control_urls: tuple[str, ...]
    suspect_share: float
    suspect_min_cases: int
    suspect_no_address_share: float
    write_batch: int
    feed_batch: int
    soft404_probe: bool
    placeholder_hashes: str
    placeholder_markers: str
    user_agent: str
    progress: bool
    log_level: str
    asn_db: str
    asnames: str
    geoip_db: str
    rdap_url: str
    rdap_timeout: float
    rdap_ttl_days: float
    offline: bool
    hosters: str
    enrich_batch: int
    browser_rules: str
    chromium: str
    browser_pages: int
    browser_timeout: float
    browser_settle: float
    browser_quiet: float
    browser_scroll_height: int
    browser_scroll_time: float
    browser_restart_pages: int
    browser_media_limit: int
    browser_temp: str
    browser_user_agent: str
    pdq: bool
    pdq_threshold: int
    pdq_min_quality: int
    pdq_max_pixels: int
    pdq_timeout: float
    pdq_workers: int
    serve_password_hash: str
    queue: str
    queue_lease: float
    queue_batch: int
    worker_jobs: int

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Config:
        """Read every key from ``environ`` (default: the process environment).

        ``overrides`` (already parsed values, e.g. from CLI options) win over the
        environment; ``None`` overrides are ignored.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, key in KEYS.items():
            env_name, raw = _raw(env, key)
            try:
                values[name] = key.parse(raw)
            except ValueError as exc:
                shown = without_password(raw) if name in _URL_SETTINGS else raw
                raise ConfigError(f"{env_name}={shown!r}: {exc}") from exc
        for name, value in overrides.items():
            if name not in KEYS:
                raise ConfigError(f"unknown setting {name!r}")
            if value is not None:
                # Checked as the environment's text is: the same types and ranges.
                key = KEYS[name]
                try:
                    values[name] = key.parse(_as_text(name, value))
                except (ValueError, TypeError) as exc:
                    shown = without_password(str(value)) if name in _URL_SETTINGS else value
                    raise ConfigError(f"{name}={shown!r} (as {key.env}): {exc}") from exc
        return cls(**values)

    def debounce(self) -> Debounce:
        """The removal rule (kernel/state.py) these settings make: every stage
        that derives a case's state takes it from here."""
        return Debounce(self.removal_confirmations, self.removal_min_hours, self.transient_days)

    def schedule_rule(self) -> ScheduleRule:
        """The deadline-check rule (kernel/schedule.py) these settings make."""
        return ScheduleRule(timedelta(seconds=self.deadline_margin))

    def to_env(self) -> dict[str, str]:
        """The environment that reproduces this config in a child process."""
        return {KEYS[field.name].env: _as_text(field.name, getattr(self, field.name))
                for field in fields(self)}


def _raw(env: Mapping[str, str], key: _Key) -> tuple[str, str]:
    """Which variable sets ``key`` in ``env`` (its earlier name only when the
    current one is not set; both set and different is an error), and its text."""
    old = env.get(key.old_env) if key.old_env else None
    if key.env in env:
        if old is not None and old.strip() != env[key.env].strip():
            raise ConfigError(f"{key.old_env}={old!r} and {key.env}={env[key.env]!r} disagree: "
                              f"{key.old_env} is the earlier name of {key.env}; set only "
                              f"{key.env}")
        return key.env, env[key.env]
    if old is not None:
        assert key.old_env is not None
        return key.old_env, old
    return key.env, key.default


def _as_text(name: str, value: Any) -> str:
    """A setting's value as its environment variable spells it."""
    if isinstance(value, str):
        return value
    if name == "nameservers":
        return ",".join(f"{host}:{port}" for host, port in value)
    if name == "allow_private":
        return ",".join(value) or "0"
    if name == "control_urls":
        return ",".join(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)

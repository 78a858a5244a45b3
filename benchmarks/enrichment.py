"""Enrichment throughput: attribute many IP addresses drawn from the real BGP table.

    .venv/bin/python benchmarks/enrichment.py [--ips N] [--networks K] [--skew S]
                                              [--seed X] [--json FILE]

Everything runs on loopback (127.0.0.0/8):

1. loads the real 2014 prefix table (lab/data/realdata/ipasn_20140513.dat.gz)
   and AS names into hostwatch's `AsnTable` and `AsNames`;
2. draws N addresses (default 1,000,000) from K announced IPv4 prefixes
   (default 2,000, picked at random from the table) with a Zipf-like skew:
   the prefix of rank r gets weight 1 / r**S (default S = 1.1), so most
   addresses fall on a few networks, as reported URLs do;
3. times `AsnTable.lookup` over all N addresses (ASN lookups per second;
   target >= 100,000/s);
4. attributes all N addresses with hostwatch's `Attributor` (ASN table,
   AS names, hoster registry, CDN rules, jurisdiction, and the RDAP cache in a
   fresh SQLite store) against the local test internet's RDAP server, and
   counts the RDAP requests made (target: no more than the number of distinct
   networks among the N addresses). That server knows none of these 2014
   networks, so it answers 404, which is cached like any answer: the count is
   what matters here, not the content.

Exit status 0 when both targets are met, 1 when one is missed.
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Run as a script, benchmarks/ comes first on sys.path, and its enrichment.py and
# reports.py would hide the packages of those names (even with REPO on PYTHONPATH).
sys.path[:] = [str(REPO), *(entry for entry in sys.path
                            if Path(entry).resolve() not in (REPO, REPO / "benchmarks"))]

from lab.rdap import REALDATA  # noqa: E402

TABLE = REALDATA / "ipasn_20140513.dat.gz"
NAMES = REALDATA / "asnames.json.gz"
TARGET_LOOKUPS = 100_000
BATCH = 10_000


def ipv4_prefixes(path: Path) -> list[ipaddress.IPv4Network]:
    """The announced IPv4 prefixes of a pyasn-format table."""
    prefixes = []
    with gzip.open(path, "rt", encoding="ascii") as table:
        for line in table:
            if line.startswith(";") or not line.strip():
                continue
            prefix = line.split("\t", 1)[0]
            if ":" not in prefix:
                prefixes.append(ipaddress.IPv4Network(prefix))
    return prefixes


def draw(prefixes: list[ipaddress.IPv4Network], count: int, networks: int, skew: float,
         rng: random.Random) -> list[str]:
    """``count`` addresses from ``networks`` random prefixes, Zipf-weighted."""
    chosen = rng.sample(prefixes, networks)
    weights = [1 / (rank ** skew) for rank in range(1, networks + 1)]
    picks = rng.choices(chosen, weights=weights, k=count)
    out = []
    for net in picks:
        first = int(net.network_address)
        out.append(str(ipaddress.IPv4Address(first + rng.randrange(net.num_addresses))))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ips", type=int, default=1_000_000)
    parser.add_argument("--networks", type=int, default=2_000)
    parser.add_argument("--skew", type=float, default=1.1)
    parser.add_argument("--seed", type=int, default=20141105)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    from enrichment.asn import AsNames, AsnTable
    from enrichment.attribute import Attributor, Target
    from enrichment.rdap_client import RdapClient
    from kernel.config import Config
    from lab import TestInternet
    from store import Network, Store

    print(f"enrichment benchmark, {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; "
          f"{platform.python_version()}, {platform.platform()}")
    started = time.perf_counter()
    table = AsnTable.load(TABLE)
    names = AsNames.load(NAMES)
    print(f"loaded {TABLE.name} ({len(table)} prefixes) and {NAMES.name} ({len(names)} ASes) "
          f"in {time.perf_counter() - started:.1f} s")
    rng = random.Random(args.seed)
    ips = draw(ipv4_prefixes(TABLE), args.ips, args.networks, args.skew, rng)
    keys = [table.lookup(ip) for ip in ips[:1000]]
    assert all(keys), "an address drawn from the table is not in the table"

    started = time.perf_counter()
    found = [table.lookup(ip) for ip in ips]
    lookup_seconds = time.perf_counter() - started
    lookups = len(ips) / lookup_seconds
    distinct = len({hit[1] for hit in found if hit is not None})
    top = sorted(_counts(hit[1] for hit in found if hit is not None).values(), reverse=True)
    print(f"\n{len(ips):,} addresses on {distinct:,} distinct networks "
          f"(largest: {top[0]:,} addresses; top 10: {sum(top[:10]) / len(ips):.0%})")
    print(f"ASN lookups: {lookups:,.0f}/s ({lookup_seconds:.2f} s)  target >= "
          f"{TARGET_LOOKUPS:,}/s  {'PASS' if lookups >= TARGET_LOOKUPS else 'FAIL'}")

    with tempfile.TemporaryDirectory() as tmp, TestInternet(networks=()) as net:
        # Every endpoint on loopback: RDAP and DNS are the test internet's.
        config = Config.from_env({"HOSTWATCH_RDAP_URL": net.rdap_url,
                                  "HOSTWATCH_ALLOW_PRIVATE": "127.0.0.0/8",
                                  "HOSTWATCH_RDAP_TIMEOUT": "5",
                                  "HOSTWATCH_NAMESERVERS": net.nameservers_env})
        store = Store(f"sqlite:///{tmp}/bench.db")
        store.upgrade()
        rdap = RdapClient.from_config(config)
        attributor = Attributor(config, store, table=table, names=names, rdap=rdap)
        started = time.perf_counter()
        places: dict[str, int] = {}
        for start in range(0, len(ips), BATCH):
            for facts in attributor.facts([Target(None, ip) for ip in ips[start:start + BATCH]]):
                places[facts.jurisdiction] = places.get(facts.jurisdiction, 0) + 1
        attribute_seconds = time.perf_counter() - started
        with store.session() as session:
            cached = session.query(Network).count()
        requests = rdap.requests_made
        server_hits = net.rdap_hit_count()
        store.dispose()
    rate = len(ips) / attribute_seconds
    ok_rdap = requests <= distinct
    print(f"attribution: {rate:,.0f} addresses/s ({attribute_seconds:.1f} s); "
          f"jurisdictions {dict(sorted(places.items()))}")
    print(f"RDAP requests: {requests:,} (server saw {server_hits:,}), networks cached "
          f"{cached:,}, distinct networks {distinct:,}  target <= {distinct:,}  "
          f"{'PASS' if ok_rdap else 'FAIL'}")
    figures: dict[str, Any] = {
        "ips": len(ips), "networks_drawn": args.networks, "skew": args.skew,
        "distinct_networks": distinct, "lookups_per_second": lookups,
        "attributions_per_second": rate, "rdap_requests": requests,
        "rdap_server_hits": server_hits, "networks_cached": cached,
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0 if lookups >= TARGET_LOOKUPS and ok_rdap else 1


def _counts(items: Any) -> dict[Any, int]:
    counts: dict[Any, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


if __name__ == "__main__":
    sys.exit(main())

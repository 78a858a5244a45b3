"""Run the local test internet in its own process (benchmarks, the demo).

    python -m tests.net serve --hosts 4 --paths 100 [--size 2048] [--ttl 60]

starts hosts h0.bench.test ... h{N-1}.bench.test, each serving a distinct
marker_body at /c/0 ... /c/{M-1}, and prints one JSON line to stdout:

    {"nameservers": "127.0.0.1:P", "port": P, "hosts": [{"name": ..., "ip": ...}],
     "rdap_url": "http://127.0.0.1:R", "asn_table": "/tmp/.../ipasn.dat",
     "asnames": "/tmp/.../asnames.json", "networks": [{"asn": 64501, ...}], ...}

(the networks are the default test networks; the bench hosts are in none).

then serves until SIGTERM or SIGINT, or until stdin closes when stdin is a
pipe (so a parent that dies takes the server with it). On the way out it
prints a second JSON line, {"requests": N}.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import stat
import sys
import threading
from types import FrameType

from tests.net.behaviours import Serve, marker_body
from tests.net.internet import TestInternet


def bench_marker(host: int, path: int) -> str:
    """The marker inside the body of http://h{host}.bench.test:PORT/c/{path}."""
    return f"hostwatch-bench-h{host}-c{path}"


def build(hosts: int, paths: int, size: int, ttl: int) -> TestInternet:
    net = TestInternet(ttl=ttl, record_hits=False)
    for i in range(hosts):
        host = net.add_host(f"h{i}.bench.test")
        for j in range(paths):
            host.route(f"/c/{j}", Serve(marker_body(bench_marker(i, j), size)))
    return net


def _stdin_is_pipe() -> bool:
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def serve(args: argparse.Namespace) -> int:
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if _stdin_is_pipe():
        fd = sys.stdin.fileno()

        def watch_stdin() -> None:
            # os.read, not sys.stdin: a daemon thread blocked inside a buffered
            # reader aborts interpreter shutdown.
            while os.read(fd, 65536):
                pass
            done.set()

        threading.Thread(target=watch_stdin, name="testnet-stdin", daemon=True).start()

    net = build(args.hosts, args.paths, args.size, args.ttl)
    with net:
        ready = {
            "nameservers": net.nameservers_env,
            "port": net.port,
            "hosts": [{"name": host.name, "ip": host.ip} for host in net.hosts],
            "paths": args.paths,
            "size": args.size,
            "rdap_url": net.rdap_url,
            "asn_table": str(net.asn_table_path),
            "asnames": str(net.asnames_path),
            "networks": [
                {
                    "asn": network.asn,
                    "netname": network.netname,
                    "as_name": network.asnames_entry,
                    "org": network.org,
                    "country": network.country,
                    "prefix": str(network.prefix),
                    "cdn": network.cdn,
                }
                for network in net.networks
            ],
        }
        print(json.dumps(ready), flush=True)
        while not done.wait(0.5):
            pass
        requests = net.hit_count
    print(json.dumps({"requests": requests}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.net",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve N bench hosts with M paths each")
    run.add_argument("--hosts", type=int, default=1, help="number of hosts (default 1)")
    run.add_argument("--paths", type=int, default=10, help="paths per host (default 10)")
    run.add_argument("--size", type=int, default=2048, help="body size in bytes (default 2048)")
    run.add_argument("--ttl", type=int, default=60, help="DNS TTL in seconds (default 60)")
    args = parser.parse_args(argv)
    if args.hosts < 0 or args.paths < 0 or args.size < 0:
        parser.error("--hosts, --paths and --size must be >= 0")
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())

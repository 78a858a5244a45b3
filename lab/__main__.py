"""Run the local test internet in its own process (benchmarks, the demo).

    python -m lab serve --hosts 4 --paths 100 [--size 2048] [--ttl 60] [--images K]

starts hosts h0.bench.test ... h{N-1}.bench.test, each serving a distinct
marker_body at /c/0 ... /c/{M-1}; with ``--images K`` (K > 0) each also
serves real pictures (lab.images, K of them, made in memory): at
/i/{j} the reported JPEG of picture `bench_image_seed(host, j, N, K)`, and
at /i/{j}/{variant} each of its re-encodings (images.SAME_PICTURE). Then it
prints one JSON line to stdout:

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

from lab.behaviours import Serve, marker_body
from lab.internet import TestInternet


def bench_marker(host: int, path: int) -> str:
    """The marker inside the body of http://h{host}.bench.test:PORT/c/{path}."""
    return f"hostwatch-bench-h{host}-c{path}"


def bench_image_seed(host: int, path: int, hosts: int, images: int) -> int:
    """The picture (lab.images seed) at /i/{path} of h{host}.bench.test:
    the farm's K pictures taken in turn over the cases, host by host."""
    return 1 + (path * hosts + host) % images


def build(hosts: int, paths: int, size: int, ttl: int, images: int = 0) -> TestInternet:
    net = TestInternet(ttl=ttl, record_hits=False)
    pictures = _image_routes(images)
    for i in range(hosts):
        host = net.add_host(f"h{i}.bench.test")
        for j in range(paths):
            host.route(f"/c/{j}", Serve(marker_body(bench_marker(i, j), size)))
            if images:
                for suffix, behaviour in pictures[bench_image_seed(i, j, hosts, images)].items():
                    host.route(f"/i/{j}{suffix}", behaviour)
    return net


def _image_routes(images: int) -> dict[int, dict[str, Serve]]:
    """{seed: {path suffix: what it serves}} for pictures 1..images: the
    reported JPEG at "" and each re-encoding at "/{variant}"."""
    if not images:
        return {}
    from lab import images as pictures  # Pillow: only when asked

    routes = {}
    for seed in range(1, images + 1):
        served = {"": Serve(pictures.reported(seed), content_type="image/jpeg")}
        for name in pictures.SAME_PICTURE:
            served[f"/{name}"] = Serve(pictures.variants(seed)[name],
                                       content_type=pictures.CONTENT_TYPES[name])
        routes[seed] = served
    return routes


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

    net = build(args.hosts, args.paths, args.size, args.ttl, args.images)
    with net:
        ready = {
            "nameservers": net.nameservers_env,
            "port": net.port,
            "hosts": [{"name": host.name, "ip": host.ip} for host in net.hosts],
            "paths": args.paths,
            "size": args.size,
            "images": args.images,
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
        prog="python -m lab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve N bench hosts with M paths each")
    run.add_argument("--hosts", type=int, default=1, help="number of hosts (default 1)")
    run.add_argument("--paths", type=int, default=10, help="paths per host (default 10)")
    run.add_argument("--size", type=int, default=2048, help="body size in bytes (default 2048)")
    run.add_argument("--ttl", type=int, default=60, help="DNS TTL in seconds (default 60)")
    run.add_argument("--images", type=int, default=0,
                     help="also serve K real pictures and their re-encodings at /i/{j}[/variant] "
                          "(default 0: none)")
    args = parser.parse_args(argv)
    if min(args.hosts, args.paths, args.size, args.images) < 0:
        parser.error("--hosts, --paths, --size and --images must be >= 0")
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())

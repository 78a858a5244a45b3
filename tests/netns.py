"""Tests that aim at addresses outside loopback run in a network namespace.

A guard test points hostwatch at 169.254.169.254, 10.0.0.1 and the like and
expects it to refuse. If the guard failed, the packet must still go nowhere:
so such a test is marked ``@pytest.mark.netns`` and pytest runs it again in a
child process inside ``unshare --net`` (a network namespace with nothing but
its own loopback, brought up), where every other address is unreachable. The
test body runs only there; in the parent the test passes or fails with the
child's result. Its fixtures (the local test internet) start in the child, on
the namespace's loopback (and, unused, in the parent too).

``unshare`` needs root or unprivileged user namespaces; without them the test
fails, saying so: it is never skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

INSIDE = "HOSTWATCH_TEST_NETNS"
"""Set to 1 in the child: the test body runs here."""

ROOT = Path(__file__).resolve().parents[1]


def inside() -> bool:
    return os.environ.get(INSIDE) == "1"


def only_loopback() -> bool:
    """Whether this process sees no network interface but ``lo``."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def run_in_namespace(nodeid: str, timeout: float = 300) -> tuple[bool, str]:
    """Run one test (pytest node id) in a fresh network namespace: (passed, output)."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip") or "/usr/sbin/ip"
    if unshare is None or not Path(ip).exists():
        return False, "these tests need unshare (util-linux) and ip (iproute2)"
    command = [unshare, "--net"]
    if os.geteuid() != 0:
        command.append("--map-root-user")  # unprivileged user namespace
    command += ["--", "sh", "-c", f'"{ip}" link set lo up && exec "$@"', "sh",
                sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", nodeid]
    env = {**os.environ, INSIDE: "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return False, f"the namespaced run of {nodeid} took more than {timeout} s"
    output = done.stdout + done.stderr
    return done.returncode == 0 and " passed" in done.stdout, output

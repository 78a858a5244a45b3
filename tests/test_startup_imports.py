"""What a process loads when it starts. The nightly crawl and its store
writer process start at every run, and a library loaded for nothing costs
CPU each time (#16: CPU per check, start-up included; BENCHMARKS.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def loaded_after_import(module: str, candidates: list[str]) -> list[str]:
    """Which of ``candidates`` a fresh interpreter has loaded once ``module`` is imported."""
    code = (f"import json, sys, {module}; "
            f"print(json.dumps([m for m in {candidates!r} if m in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


def test_the_command_line_loads_datasette_only_for_serve() -> None:
    assert loaded_after_import("hostwatch.cli", ["datasette"]) == []


def test_the_store_writer_process_loads_no_migrations() -> None:
    assert loaded_after_import("store.writer", ["alembic", "mako"]) == []

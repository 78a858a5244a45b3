"""Migrations import no live hostwatch code (#13): a migration copies what it
needs, so that it computes the same whatever the live code becomes."""

from __future__ import annotations

import ast
from pathlib import Path

import store

PRODUCT = {"hostwatch", "kernel", "outbound", "crawler", "enrichment", "reports", "store", "lab",
           "tests"}
VERSIONS = Path(store.__file__).parent / "migrations" / "versions"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_migration_imports_live_hostwatch_code():
    migrations = sorted(VERSIONS.glob("*.py"))
    assert len(migrations) >= 10
    offending = {path.name: sorted(name for name in imported_modules(path)
                                   if name.split(".")[0] in PRODUCT)
                 for path in migrations}
    assert {name: found for name, found in offending.items() if found} == {}

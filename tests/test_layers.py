"""The product's imports run one way (docs/architecture.md, "Layers").

Every ``import`` and ``from ... import`` in the product packages (at module
level, in functions, under ``TYPE_CHECKING``: each is a dependency), every
``import_module("...")`` / ``__import__("...")`` and every dotted path in a
string that starts with a product package (Scrapy's component settings,
``-m store.writer``; logger names aside) must name its own package or a
package of a lower layer. Packages of one layer are peers
and import each other not at all, so no package cycle can form. No product
module imports ``tests`` or ``benchmarks``. The graph is read from the source
with ``ast`` (nothing is imported), so the test also covers modules that
need Scrapy, Playwright or a database to import.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS: dict[str, int] = {
    "kernel": 0,  # domain enums, configuration, URL rules, errors, pure decision rules
    "lab": 0,  # the local test internet: a lab beside the pipeline, importing none of it
    "outbound": 1,  # what leaves the machine: address guard, resolver, guarded HTTP
    "store": 1,  # the database: models, migrations, imports, readers
    "crawler": 2,  # the nightly re-check (Scrapy, Playwright)
    "enrichment": 2,  # who serves each URL (DNS, ASN, RDAP, hosters)
    "reports": 3,  # hoster report, deadlines, evidence packs, XARF, verification
    "hostwatch": 4,  # the library API, the CLI and the demo
}
"""Each product package and its layer: a package imports only lower layers."""

NOT_PRODUCT = ("tests", "benchmarks")
"""Top-level folders of the repository that product code must never import."""


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    path: Path
    line: int
    target: str  # the imported module, dotted

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.module} imports {self.target}"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _targets(node: ast.AST, module: str, is_package: bool,
             packages: Mapping[str, int]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level == 0:
            yield node.module or ""
            return
        # A relative import: resolve it against the importing module's package.
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = package[: len(package) - (node.level - 1)]
        yield ".".join(base + ([node.module] if node.module else []))
    elif (isinstance(node, ast.Call) and node.args
          and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
          and _called(node.func) in {"import_module", "__import__"}):
        yield node.args[0].value  # importlib.import_module("store.db"), __import__("store")
    elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
          and _DOTTED.fullmatch(node.value) and node.value.split(".")[0] in packages):
        yield node.value  # a dotted path named in a string: Scrapy settings, `-m store.writer`


_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def _called(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def imports(root: Path, packages: Mapping[str, int]) -> Iterator[Import]:
    """Every import statement in the given top-level packages under ``root``."""
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            module = _module_name(path, root)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            names = {id(arg) for call in ast.walk(tree) if isinstance(call, ast.Call)
                     and _called(call.func) == "getLogger" for arg in call.args}
            for node in ast.walk(tree):
                if id(node) in names:
                    continue  # a logger's name ("hostwatch.migrations"), not a module
                for target in _targets(node, module, path.name == "__init__.py", packages):
                    yield Import(module, path.relative_to(root), node.lineno, target)


def violations(root: Path, layers: Mapping[str, int] = LAYERS,
               forbidden: tuple[str, ...] = NOT_PRODUCT) -> list[str]:
    """Imports that go up or sideways between the product packages, and
    imports of what is not product; empty when the layering holds."""
    found = []
    for imp in imports(root, layers):
        source = imp.module.split(".")[0]
        top = imp.target.split(".")[0]
        if top in forbidden:
            found.append(f"{imp}: product code must not import {top}")
        elif top in layers and top != source and layers[top] >= layers[source]:
            how = "a peer" if layers[top] == layers[source] else "a higher layer"
            found.append(f"{imp}: {top} is {how} of {source}")
    return found


def package_cycles(root: Path, layers: Mapping[str, int] = LAYERS) -> list[list[str]]:
    """The cycles among the product packages (each as the packages on it)."""
    graph: dict[str, set[str]] = {package: set() for package in layers}
    for imp in imports(root, layers):
        source, top = imp.module.split(".")[0], imp.target.split(".")[0]
        if top in layers and top != source:
            graph[source].add(top)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


# -- the product -----------------------------------------------------------------

def test_every_product_package_is_placed_in_a_layer() -> None:
    shipped = {path.parent.name for path in ROOT.glob("*/*.py")} - set(NOT_PRODUCT)
    assert shipped == set(LAYERS), "place each new package in LAYERS and docs/architecture.md"


def test_imports_go_down_the_layers_only() -> None:
    assert violations(ROOT) == []


def test_no_package_cycle() -> None:
    assert package_cycles(ROOT) == []


def test_the_graph_sees_the_product_imports() -> None:
    """The reader finds real edges (a broken reader would pass the two tests above)."""
    edges = {(i.module.split(".")[0], i.target.split(".")[0]) for i in imports(ROOT, LAYERS)}
    assert {("store", "kernel"), ("crawler", "store"), ("enrichment", "outbound"),
            ("reports", "store"), ("hostwatch", "reports"), ("hostwatch", "lab")} <= edges


# -- the checker, on made-up trees ---------------------------------------------------

def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


SMALL = {"low": 0, "mid": 1, "peer": 1, "top": 2}


@pytest.mark.parametrize(("files", "expected"), [
    ({"low/__init__.py": "", "low/a.py": "import mid.b\n", "mid/__init__.py": "",
      "mid/b.py": ""}, "low/a.py:1: low.a imports mid.b: mid is a higher layer of low"),
    ({"mid/__init__.py": "", "mid/a.py": "def f():\n    from peer import x\n",
      "peer/__init__.py": ""}, "mid/a.py:2: mid.a imports peer: peer is a peer of mid"),
    ({"top/__init__.py": "", "top/a.py": "from tests.net import lab\n"},
     "top/a.py:1: top.a imports tests.net: product code must not import tests"),
    ({"low/__init__.py": "", "low/a.py": "import importlib\nimportlib.import_module('top')\n"},
     "low/a.py:2: low.a imports top: top is a higher layer of low"),
    ({"low/__init__.py": "", "low/a.py": "M = __import__('mid')\n"
      "log = logging.getLogger('top.log')\n"},
     "low/a.py:1: low.a imports mid: mid is a higher layer of low"),
    ({"mid/__init__.py": "", "mid/s.py": "S = {'top.pipelines.Store': 300}\n"},
     "mid/s.py:1: mid.s imports top.pipelines.Store: top is a higher layer of mid"),
    ({"low/__init__.py": "", "low/a.py": "from typing import TYPE_CHECKING\n"
      "if TYPE_CHECKING:\n    from top.b import X\n", "top/__init__.py": ""},
     "low/a.py:3: low.a imports top.b: top is a higher layer of low"),
])
def test_upward_sideways_and_test_imports_are_found(tmp_path: Path, files: dict[str, str],
                                                     expected: str) -> None:
    root = _tree(tmp_path, files)
    assert violations(root, SMALL) == [expected]


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"low/__init__.py": "", "low/sub/__init__.py": "",
                            "low/sub/a.py": "from ..b import x\nfrom . import c\n",
                            "mid/__init__.py": "from . import b\nfrom .b import c\n"})
    assert [i.target for i in imports(root, {"low": 0})] == ["low.b", "low.sub"]
    assert [i.target for i in imports(root, {"mid": 1})] == ["mid", "mid.b"]


def test_downward_imports_pass(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"top/__init__.py": "import mid\nfrom low import a\n",
                            "mid/__init__.py": "import low.a\n", "low/__init__.py": "",
                            "low/a.py": "import os\nimport low\n"})
    assert violations(root, SMALL) == []
    assert package_cycles(root, SMALL) == []


def test_a_package_cycle_is_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"low/__init__.py": "import mid\n", "mid/__init__.py": "import top\n",
                            "top/__init__.py": "import low\n", "peer/__init__.py": ""})
    assert package_cycles(root, SMALL) == [["low", "mid", "top", "low"]]
    assert len(violations(root, SMALL)) == 2  # low -> mid and mid -> top go up


def test_the_product_ships_without_tests() -> None:
    """What the wheel installs (pyproject's package list): every layer, never `tests`."""
    import tomllib

    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found = config["tool"]["setuptools"]["packages"]["find"]
    shipped = find_packages(str(ROOT), include=found["include"], exclude=found.get("exclude", ()))
    assert {name.split(".")[0] for name in shipped} == set(LAYERS)
    assert "lab" in shipped and not any(name.split(".")[0] in NOT_PRODUCT for name in shipped)

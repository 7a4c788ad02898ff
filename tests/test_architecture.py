"""The shape the README's "How it fits together" promises, checked on the source: imports go down the
declared layers only, no import cycle in trackli/, the Atlassian package is transport only, and only
trackli/ui/ imports Streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "trackli"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _runtime_nodes(tree: ast.AST):
    """Every node but those under `if TYPE_CHECKING:` (an annotation's import is not an edge at run time)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def imports_of(name: str) -> set[str]:
    """Every trackli module `name` imports at run time, at the top or inside a function."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m in MODULES and m != name}


def graph() -> dict[str, set[str]]:
    edges = {name: imports_of(name) for name in MODULES}
    # Importing a submodule runs its package's __init__ first: that is not an edge of the package's own.
    return {name: {m for m in deps if not name.startswith(m + ".")} for name, deps in edges.items()}


# Top to bottom. A module may import its own layer and the layers below it, never one above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("ui", ("trackli.ui",)),
    ("cli", ("trackli.cli", "trackli.__main__")),
    ("scheduling", ("trackli.worker", "trackli.scheduler", "trackli.embedded", "trackli.background", "trackli.diagnostics")),
    ("domain", ("trackli.sync", "trackli.completion", "trackli.rules", "trackli.snooze", "trackli.queue",
                "trackli.board", "trackli.board_view", "trackli.projects", "trackli.positions", "trackli.people")),
    ("connections", ("trackli.connections",)),
    ("records", ("trackli.outbox", "trackli.plan", "trackli.names", "trackli.feed", "trackli.users",
                 "trackli.presence", "trackli.matching")),
    ("atlassian", ("trackli.atlassian", "trackli.simulator")),
    ("base", ("trackli.db", "trackli.models", "trackli.config", "trackli.errors", "trackli.text", "trackli.context",
              "trackli.changes", "trackli.audit", "trackli.crypto", "trackli.memory", "trackli.batches", "trackli.fields", "trackli.backoff", "trackli.clock")),
]


def layer_of(name: str) -> int:
    """The index in LAYERS (0 = top) of the longest prefix naming `name`'s room."""
    best, found = -1, None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    assert found is not None, f"{name} is in no declared layer: add it to LAYERS (and to the README)"
    return found


def test_every_import_goes_down_the_declared_layers():
    upward = []
    for name, deps in graph().items():
        if name in ("trackli", "trackli.migrations") or name.startswith("trackli.migrations."):
            continue
        for dep in deps:
            if dep == "trackli":
                continue
            if layer_of(dep) < layer_of(name):  # a smaller index is a higher layer
                upward.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {dep} ({LAYERS[layer_of(dep)][0]})")
    assert upward == []


def test_the_simulator_stands_alone():
    for name in (m for m in MODULES if m.startswith("trackli.simulator")):
        assert {m for m in imports_of(name) if not m.startswith("trackli.simulator")} == set(), name


def test_no_import_cycle_in_trackli():
    edges, state, cycles = graph(), {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_atlassian_package_is_transport_only():
    for name in (m for m in MODULES if m.startswith("trackli.atlassian")):
        outside = {m for m in imports_of(name) if not m.startswith("trackli.atlassian")}
        assert outside <= {"trackli.errors", "trackli.config", "trackli.text", "trackli.batches", "trackli.backoff"}, name


@pytest.mark.parametrize("name", sorted(m for m in MODULES if not m.startswith("trackli.ui")))
def test_only_the_ui_package_imports_streamlit(name):
    tree = ast.parse(MODULES[name].read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in imported if m == "streamlit" or m.startswith("streamlit.")}, name


def test_pages_and_the_ui_package_reach_atlassian_only_through_trackli_connections():
    root = PACKAGE.parent
    files = [root / "app.py", root / "home.py", *sorted((root / "pages").glob("*.py")), *sorted((PACKAGE / "ui").glob("*.py"))]
    for path in files:
        tree = ast.parse(path.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        imported |= {f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
                     for a in n.names}
        assert not {m for m in imported if m.startswith("trackli.atlassian")}, path.name

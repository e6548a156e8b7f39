"""The package's import graph is a DAG: no module of ``lunary_integrations`` imports itself
back, directly or through others.

Every import statement counts, at module level and inside functions (a lazy import only
delays a cycle), relative or absolute. Imports under ``if TYPE_CHECKING:`` are left out:
they never run. ``from pkg import name`` is an edge to ``pkg.name`` when that is a module,
else to ``pkg``; importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, so those
are edges too, except the importer's own enclosing packages (they are already importing).
"""

from __future__ import annotations

import ast
from pathlib import Path

import lunary_integrations

ROOT = Path(lunary_integrations.__file__).parent
PACKAGE = "lunary_integrations"


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` / ``if typing.TYPE_CHECKING:``."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        test = node.test
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
        if name == "TYPE_CHECKING":
            for child in node.body:
                skipped.update(id(sub) for sub in ast.walk(child))
    return skipped


def _imported(name: str, modules: dict[str, Path]) -> set[str]:
    """The internal modules whose import ``name`` triggers (see the module docstring)."""
    tree = ast.parse(modules[name].read_text(encoding="utf-8"))
    skipped = _type_checking_only(tree)
    package = name if _is_package(name, modules) else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                targets.add(sub if sub in modules else source)
    edges: set[str] = set()
    own_packages = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
    for target in targets:
        if target != PACKAGE and not target.startswith(PACKAGE + "."):
            continue
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            step = ".".join(parts[:i])
            if step in modules and step not in own_packages:
                edges.add(step)
        if target in modules and target != name:
            edges.add(target)  # ``from .. import x``: the importer's own package, named
    return edges


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(name, modules) for name in modules}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None for a DAG."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_graph_sees_function_level_relative_and_absolute_imports() -> None:
    graph = import_graph()
    # a function-level import (the Runs API client is imported on first use)
    assert "lunary_integrations.runs" in graph["lunary_integrations"]
    # relative ``from . import x`` resolves to the submodule x
    assert "lunary_integrations.config" in graph["lunary_integrations.testing"]
    # importing a submodule runs its package's __init__ too
    assert "lunary_integrations.ingest" in graph["lunary_integrations.tracer"]


def test_the_cycle_finder_reports_the_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None

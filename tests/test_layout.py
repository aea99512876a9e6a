"""The package's import graph has no cycle, and only the entry points (cli, tuning) import `run`.

Imports inside functions count too: a lazy import hides a cycle from Python, not from a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import embcompare

PACKAGE_DIR = Path(embcompare.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """Package modules that `path` imports anywhere in its body; `from a import b` counts as an
    import of the submodule a.b when there is one, else of a."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, name, is_package)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in known else base)
    return {module for module in found if module in known and module != name}


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    anchor = name.split(".")
    anchor = anchor if is_package else anchor[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    known = set(modules)
    return {name: imported_modules(path, name, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path [a, b, ..., a], or None: depth-first search with three colours."""
    unvisited, on_path, done = 0, 1, 2
    colour = dict.fromkeys(graph, unvisited)
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = on_path
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if colour.get(target, unvisited) == on_path:
                return path[path.index(target) :] + [target]
            if colour.get(target, unvisited) == unvisited and (cycle := visit(target)):
                return cycle
        colour[node] = done
        path.pop()
        return None

    for start in sorted(graph):
        if colour[start] == unvisited and (cycle := visit(start)):
            return cycle
    return None


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, None),  # a diamond is no cycle
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"b"}}, ["b", "b"]),
        ({"x": set(), "a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
    ],
)
def test_cycle_finder_on_small_graphs(graph, expected):
    assert find_cycle(graph) == expected


def test_import_graph_sees_lazy_and_relative_imports(tmp_path):
    (tmp_path / "pkg").mkdir()
    source = tmp_path / "pkg" / "a.py"
    source.write_text("def f():\n    from pkg import b\n    from .c import x\n    import pkg.d\n")
    known = {"pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d"}
    assert imported_modules(source, "pkg.a", known) == {"pkg.b", "pkg.c", "pkg.d"}


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "embcompare.run" in graph and "embcompare.io" in graph["embcompare.run"]
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_only_the_cli_imports_run():
    importers = sorted(
        name for name, targets in import_graph().items() if "embcompare.run" in targets
    )
    assert importers == ["embcompare.cli", "embcompare.tuning"]


def test_folders_show_the_pipeline():
    stages = {p.name for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").is_file()}
    assert stages == {"data", "vectors", "models", "training", "analysis", "reporting"}

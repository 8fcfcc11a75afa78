"""No import cycles between publisher modules, counting every import that runs (module level or in a function)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "publisher"


def module_names(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package by dotted name; a package's ``__init__`` is a module of its own."""
    found: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree`` except those under ``if TYPE_CHECKING:`` (they never run)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for branch in node.orelse:   # the else branch of `if TYPE_CHECKING:` does run
                visit(branch)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _resolve_relative(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the publisher modules it imports anywhere in its code."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = (_resolve_relative(name, path.name == "__init__.py", node) if node.level
                          else node.module or "")
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    # `from publisher.x import y` imports the module publisher.x.y when there is one
                    targets.append(submodule if submodule in modules else source)
            for target in targets:
                # `import publisher.a.b` runs publisher.a.b (its packages too, but those are parents, not cycles)
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.split(".")[0] == "publisher":
                    graph[name].add(target)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: every group of two or more modules that import each other, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def a_cycle(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """One concrete import path around ``group`` (a -> b -> ... -> a), for a readable failure."""
    members = set(group)
    start = group[0]
    paths: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:   # breadth first: the shortest way back to start
        node = queue.pop(0)
        for target in sorted(graph[node] & members):
            if target == start:
                return [*paths[node], start]
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    return group


def test_the_graph_sees_imports_inside_functions_and_skips_type_checking(tmp_path: Path) -> None:
    package = tmp_path / "publisher"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "sub" / "__init__.py").write_text("from publisher.sub import leaf\n", encoding="utf-8")
    (package / "sub" / "leaf.py").write_text("def f():\n    from publisher import top\n", encoding="utf-8")
    (package / "top.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from publisher.sub.leaf import f\n"
        "from . import other\n", encoding="utf-8")
    (package / "other.py").write_text("import publisher.sub.leaf\nfrom publisher.top import x\n", encoding="utf-8")
    graph = import_graph(module_names(package))
    assert graph["publisher.sub"] == {"publisher.sub.leaf"}
    assert graph["publisher.sub.leaf"] == {"publisher.top"}
    assert graph["publisher.top"] == {"publisher.other"}   # the TYPE_CHECKING import does not count
    assert graph["publisher.other"] == {"publisher.sub.leaf", "publisher.top"}
    assert strongly_connected(graph) == [["publisher.other", "publisher.sub.leaf", "publisher.top"]]


def test_no_import_cycles_between_publisher_modules() -> None:
    graph = import_graph(module_names())
    cycles = [" -> ".join(a_cycle(graph, group)) for group in strongly_connected(graph)]
    for cycle in cycles:
        print("import cycle:", cycle)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)

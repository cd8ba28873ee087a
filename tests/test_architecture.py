"""Dependencies point one way: checked over the shipped package's import statements (AST).

- ``frontdesk.state`` imports nothing of the agents, the workflows or the CLI;
- ``frontdesk.agents`` imports only the workflow definition, ``frontdesk.state.models`` (data
  types), ``frontdesk.errors`` and ``frontdesk.telemetry``;
- nothing but the CLI (and ``python -m frontdesk``) imports the CLI;
- no two modules import each other, directly or round a longer loop.

Every import counts, also those inside functions or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {
    "frontdesk": ROOT / "frontdesk",
    "frontdesk.agents": ROOT / "agents",
    "frontdesk.workflows": ROOT / "workflows",
    "frontdesk.state": ROOT / "state",
}
CLI = "frontdesk.workflows.cli"
AGENTS_MAY_IMPORT = (
    "frontdesk.agents",
    "frontdesk.workflows.definition",
    "frontdesk.state.models",
    "frontdesk.errors",
    "frontdesk.telemetry",  # a leaf like errors: it imports nothing of Frontdesk
)


def shipped_modules() -> dict[str, Path]:
    """Every module of the installed package, by dotted name (``pkg/__init__.py`` is ``pkg``)."""
    modules: dict[str, Path] = {}
    for package, folder in PACKAGE_DIRS.items():
        recurse = package != "frontdesk"  # frontdesk/ holds only its own modules
        for path in sorted(folder.rglob("*.py") if recurse else folder.glob("*.py")):
            parts = [*package.split("."), *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The frontdesk modules (or packages) that ``path`` imports."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import module` depends on the module; `from pkg import name`, on pkg
            names = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in modules
                else node.module
                for alias in node.names
            ]
        else:
            continue
        yield from (name for name in names if name.split(".")[0] == "frontdesk")


def import_graph() -> dict[str, set[str]]:
    modules = shipped_modules()
    return {name: set(imports_of(path, modules)) for name, path in modules.items()}


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def forbidden_imports(graph: dict[str, set[str]]) -> list[str]:
    found: list[str] = []
    for module, imported in sorted(graph.items()):
        for target in sorted(imported):
            if within(module, "frontdesk.state") and any(
                within(target, above) for above in ("frontdesk.agents", "frontdesk.workflows")
            ):
                found.append(f"{module} imports {target}: state depends on nothing above it")
            if within(module, "frontdesk.agents") and not any(
                within(target, allowed) for allowed in AGENTS_MAY_IMPORT
            ):
                found.append(f"{module} imports {target}: agents use only the definition")
            if within(target, CLI) and not within(module, CLI) and module != "frontdesk.__main__":
                found.append(f"{module} imports {target}: only the CLI imports the CLI")
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_check_sees_the_whole_package() -> None:
    graph = import_graph()
    assert {"frontdesk.state.models", "frontdesk.agents.flow_agent", CLI} <= set(graph)
    assert "frontdesk.workflows.definition" in graph["frontdesk.agents.flow_agent"]


def test_dependencies_point_one_way() -> None:
    assert forbidden_imports(import_graph()) == []


def test_no_module_imports_itself_round_a_loop() -> None:
    assert import_cycles(import_graph()) == []


def test_the_checks_catch_what_they_forbid() -> None:
    """The rules themselves, on a made-up graph that breaks each of them once."""
    graph = {
        "frontdesk.state.store": {"frontdesk.workflows.runtime"},
        "frontdesk.agents.handoff": {"frontdesk.workflows.runtime", "frontdesk.state.models"},
        "frontdesk.workflows.runtime": {"frontdesk.workflows.cli"},
        "frontdesk.workflows.cli": {"frontdesk.workflows.runtime"},
    }
    assert forbidden_imports(graph) == [
        "frontdesk.agents.handoff imports frontdesk.workflows.runtime: "
        "agents use only the definition",
        "frontdesk.state.store imports frontdesk.workflows.runtime: "
        "state depends on nothing above it",
        "frontdesk.workflows.runtime imports frontdesk.workflows.cli: only the CLI imports the CLI",
    ]
    assert import_cycles(graph) == [["frontdesk.workflows.cli", "frontdesk.workflows.runtime"]]


def test_telemetry_is_a_leaf_that_every_layer_may_call() -> None:
    assert import_graph()["frontdesk.telemetry"] == set()

"""Layers point one way: the core imports no sub-app, and only the NVML layer imports
pynvml. Read from the source, so a new import anywhere is caught."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "gpu_monitor"
# A sub-app is a package below gpu_monitor/ with an apps.py of its own.
SUB_APPS = sorted(p.parent for p in PACKAGE.glob("*/apps.py"))


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def core_modules() -> list[Path]:
    return [
        path
        for path in PACKAGE.rglob("*.py")
        if not any(path.is_relative_to(sub_app) for sub_app in SUB_APPS)
    ]


def test_there_is_a_sub_app_to_keep_out() -> None:
    assert PACKAGE / "history" in SUB_APPS


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_core_imports_no_sub_app(path: Path) -> None:
    sub_apps = {f"gpu_monitor.{sub_app.name}" for sub_app in SUB_APPS}
    wrong = {
        name
        for name in imports(path)
        if any(name == s or name.startswith(f"{s}.") for s in sub_apps)
    }
    assert not wrong, f"{path.name} imports {wrong}"


def test_only_the_nvml_layer_imports_pynvml() -> None:
    importers = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "pynvml" in imports(path)
    }
    assert importers and all(name.startswith("manager/") for name in importers)


# -- the import graph of gpu_monitor -----------------------------------------------------
# Every import of a gpu_monitor module by another, at module level or inside a function
# (a deferred import is still a dependency), and ``import_module("...")`` or
# ``import_string("...")`` of a literal; ``if TYPE_CHECKING:`` imports are left out (never
# run). A module's views, pages and recorder are its app's own: another app (history,
# fleet, usage, or the core: every module outside a sub-app) builds on the public floor
# (``gpu_monitor.stored``, ``params``, ``api``, ...), never on them.
PRIVATE = ("views", "pages", "recorder")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def known(name: str) -> str | None:
    """The gpu_monitor module ``name`` is, or lies in (a class path): None outside."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imported(module: str) -> set[str]:
    """The gpu_monitor modules ``module`` imports."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # ``from package import module`` imports the module; a name in it, the package.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
            in ("import_module", "import_string")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        for name in names:
            target = known(name)
            if target is not None and target != module:
                found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


GRAPH = {module: imported(module) for module in MODULES}


def app_of(module: str) -> str:
    """The app a module belongs to: its sub-app's package, or the core."""
    for sub_app in SUB_APPS:
        name = f"gpu_monitor.{sub_app.name}"
        if module == name or module.startswith(f"{name}."):
            return name
    return "gpu_monitor"


def private_imports(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for each module ``a`` importing another app's views, pages or recorder."""
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if target.rpartition(".")[2] in PRIVATE and app_of(target) != app_of(module)
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected components of more than
    one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(found)


def test_the_graph_sees_every_kind_of_import() -> None:
    # A deferred import, a ``from package import module`` and an import_module literal.
    assert "gpu_monitor.metrics" in GRAPH["gpu_monitor.views"]
    assert "gpu_monitor.host" in GRAPH["gpu_monitor.fleet.views"]
    assert "gpu_monitor.manager" not in GRAPH["gpu_monitor.manager.gpu_manager"]
    assert "gpu_monitor.views" in GRAPH["gpu_monitor.checks"]


def test_the_checks_can_fail() -> None:
    graph = {
        "gpu_monitor.fleet.views": {"gpu_monitor.history.views", "gpu_monitor.fleet.schema"},
        "gpu_monitor.fleet.schema": {"gpu_monitor.fleet.views"},
        "gpu_monitor.usage.pages": {"gpu_monitor.usage.views"},
        "gpu_monitor.usage.views": {"gpu_monitor.history.recorder"},
    }
    assert private_imports(graph) == [
        "gpu_monitor.fleet.views -> gpu_monitor.history.views",
        "gpu_monitor.usage.views -> gpu_monitor.history.recorder",
    ]
    assert circles(graph) == [["gpu_monitor.fleet.schema", "gpu_monitor.fleet.views"]]


def test_no_module_imports_another_apps_views_pages_or_recorder() -> None:
    assert private_imports(GRAPH) == []


def test_no_import_circles() -> None:
    assert circles(GRAPH) == []

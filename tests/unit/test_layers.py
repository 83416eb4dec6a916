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

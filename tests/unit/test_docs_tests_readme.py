"""tests/README.md's table from each module of gpu_monitor to its tests stays whole: every
module with code is listed once, nothing else is, and every test file it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "tests" / "README.md"
ROW = re.compile(r"^\| `(gpu_monitor/[\w/]+\.py)` \| (.+) \|$", re.M)


def has_code(path: Path) -> bool:
    """More than a docstring (a package's ``__init__.py`` often has only that)."""
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def modules() -> list[str]:
    return sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "gpu_monitor").rglob("*.py")
        if "migrations" not in path.parts and has_code(path)
    )


def rows() -> list[tuple[str, str]]:
    return ROW.findall(README.read_text())


def test_every_module_with_code_is_listed_once() -> None:
    listed = [module for module, _tests in rows()]

    assert sorted(listed) == modules()
    assert len(listed) == len(set(listed))


def test_every_test_file_the_table_names_exists() -> None:
    named = [name for _module, tests in rows() for name in re.findall(r"`([\w/]+\.py)`", tests)]

    assert named
    assert [name for name in named if not (ROOT / "tests" / name).is_file()] == []


def test_the_table_is_read() -> None:
    assert len(rows()) >= 60
    assert "gpu_monitor/serializers.py" in dict(rows())
    assert "gpu_monitor/contrib/__init__.py" not in modules()  # a docstring only
    assert "gpu_monitor/manager/__init__.py" in modules()

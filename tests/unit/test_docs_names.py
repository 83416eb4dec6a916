"""Names the docs give must exist: every logger they name is one the code logs to (or a
parent of such loggers), and docs/development.md describes every folder of tests/."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import ModuleType

import pytest
from django.test import Client, override_settings

from gpu_monitor import api

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "gpu_monitor"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NAME = r"(gpu_monitor(?:\.\w+)*)"
LOGGER_NAMES = [
    re.compile(rf"`{NAME}`\s+logger\b"),  # the `gpu_monitor.api` logger
    re.compile(rf"\blogger\s+`{NAME}`"),  # (logger `gpu_monitor.manager.session`)
    re.compile(rf"\bloggers\s+under\s+`{NAME}`"),
    re.compile(rf"getLogger\(\"{NAME}\"\)"),
    re.compile(rf"\"{NAME}\":\s*\{{\s*\"(?:level|handlers|propagate)\""),  # LOGGING's keys
]
LOG_LINE = re.compile(rf"^(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) {NAME} ", re.M)  # a record's
OWN_LOGGER = "logging.getLogger(__name__)"


def named_loggers(page: Path) -> set[str]:
    text = page.read_text()
    return {name for pattern in LOGGER_NAMES for name in pattern.findall(text)}


def logs_there(name: str) -> bool:
    """Whether the module ``name`` logs to its own logger, or (a package) one of its
    modules does: a logger name the docs may give."""
    path = PACKAGE.parent.joinpath(*name.split("."))
    if path.with_suffix(".py").is_file():
        return OWN_LOGGER in path.with_suffix(".py").read_text()
    return path.is_dir() and any(OWN_LOGGER in p.read_text() for p in path.rglob("*.py"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_logger_the_docs_name_is_logged_to(page: Path) -> None:
    assert [name for name in sorted(named_loggers(page)) if not logs_there(name)] == []
    # A log line shows the name of the module's logger that wrote it, not a parent's.
    for name in LOG_LINE.findall(page.read_text()):
        module = PACKAGE.parent.joinpath(*name.split(".")).with_suffix(".py")
        assert module.is_file() and logs_there(name), name


def test_the_logger_names_are_found() -> None:
    found = set().union(*map(named_loggers, PAGES))

    assert {"gpu_monitor", "gpu_monitor.api", "gpu_monitor.manager.session"} <= found
    assert LOG_LINE.findall((ROOT / "docs" / "api.md").read_text())
    assert not logs_there("gpu_monitor.views")  # a module without a logger of its own
    assert not logs_there("gpu_monitor.no_such_module")


def test_the_misconfiguration_is_logged_by_the_logger_settings_md_names(
    fake_nvml: ModuleType,
    client: Client,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = (ROOT / "docs" / "settings.md").read_text()
    (name,) = re.findall(rf"The `{NAME}` logger says it at ERROR", text)
    monkeypatch.setattr(api, "_logged_misconfiguration", None)

    with override_settings(GPU_MONITOR=["a list"]), caplog.at_level(logging.DEBUG):
        assert client.get("/api/gpu/devices").status_code == 503

    said = [(r.name, r.levelno) for r in caplog.records if "misconfigured" in r.getMessage()]
    assert said == [(name, logging.ERROR)]


def test_every_tests_folder_is_described_in_development_md() -> None:
    folders = {
        f"tests/{path.name}"
        for path in (ROOT / "tests").iterdir()
        if path.is_dir() and not path.name.startswith(("_", "."))
    }
    text = (ROOT / "docs" / "development.md").read_text()
    described = set(re.findall(r"^  - `(tests/\w+)`: ", text, re.M))

    assert {"tests/unit", "tests/fleet", "tests/usage", "tests/prometheus"} <= folders
    assert described == folders

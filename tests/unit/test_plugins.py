"""gpu_monitor.plugins: the one contract between the core and its sub-apps, read in one
place, its declarations checked at start-up (gpu_monitor.E005), and who may open a page."""

from __future__ import annotations

import io
import sys
from importlib import import_module
from types import ModuleType
from typing import Any

import pytest
from django.apps import AppConfig, apps
from django.contrib.auth.models import AnonymousUser, User
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import RequestFactory, override_settings
from rest_framework.request import Request

from gpu_monitor import plugins
from gpu_monitor.checks import check_sub_apps

ADMINS_ONLY = ["rest_framework.permissions.IsAdminUser"]
SIGNED_IN = ["rest_framework.permissions.IsAuthenticated"]


def names(found: list[tuple[AppConfig, plugins.SubApp]]) -> list[str]:
    return [config.name for config, _ in found]


def test_the_installed_sub_apps_in_installed_apps_order() -> None:
    assert names(plugins.sub_apps()) == [
        "gpu_monitor.history",
        "gpu_monitor.fleet",
        "gpu_monitor.usage",
        "gpu_monitor.notify",
    ]


def test_each_extension_point_is_read_from_the_declarations() -> None:
    from gpu_monitor.fleet.metrics import FleetCollector
    from gpu_monitor.fleet.writer import write_host_state
    from gpu_monitor.history.metrics import XidCollector
    from gpu_monitor.notify.run import prune_notices
    from gpu_monitor.usage.metrics import IdleHeldCollector
    from gpu_monitor.usage.writer import prune_usage, write_usage

    assert [(p.label, p.url_name, p.permissions) for p in plugins.pages()] == [
        ("Fleet", "fleet", "PERMISSION_CLASSES"),
        ("Usage", "usage", "PROCESS_PERMISSION_CLASSES"),
    ]
    assert [panel.template for panel in plugins.panels()] == ["gpu_monitor/history/_panel.html"]
    assert [(name, type(make())) for name, make in plugins.collectors()] == [
        ("history", XidCollector),
        ("fleet", FleetCollector),
        ("usage", IdleHeldCollector),
    ]
    assert plugins.tick_writers() == [(write_host_state, False), (write_usage, True)]
    assert plugins.maintenance_tasks() == [prune_usage, prune_notices]
    names = {getattr(p, "name", None) for p in plugins.urlpatterns()}
    assert {"history", "events", "hosts", "fleet", "usage"} <= names


def test_without_sub_apps_every_extension_point_is_empty() -> None:
    core_only = [app for app in apps.get_app_configs() if not app.name.startswith("gpu_monitor.")]
    with override_settings(INSTALLED_APPS=[app.name for app in core_only]):
        assert plugins.sub_apps() == []
        assert plugins.urlpatterns() == []
        assert plugins.pages() == plugins.panels() == []
        assert plugins.collectors() == plugins.tick_writers() == []
        assert plugins.maintenance_tasks() == []
        # The shipped sub-apps that are not installed: only history answers in its place.
        [absent] = plugins.not_installed()
    assert absent.paths == ("history", "events")
    assert absent.url_name == "history"
    assert "add 'gpu_monitor.history' to INSTALLED_APPS" in absent.detail


def test_with_every_sub_app_installed_none_is_absent() -> None:
    assert plugins.not_installed() == []


def test_an_app_without_a_declaration_is_no_sub_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(type(apps.get_app_config("gpu_monitor_usage")), "gpu_monitor")

    assert names(plugins.sub_apps()) == [
        "gpu_monitor.history",
        "gpu_monitor.fleet",
        "gpu_monitor.notify",
    ]
    assert plugins.problems() == []


def test_the_real_declarations_have_no_problem() -> None:
    assert plugins.problems() == []
    assert check_sub_apps() == []


def declare(monkeypatch: pytest.MonkeyPatch, declared: Any, app: str = "gpu_monitor_fleet") -> None:
    monkeypatch.setattr(apps.get_app_config(app), "gpu_monitor", declared)


@pytest.mark.parametrize(
    ("declared", "field", "problem"),
    [
        (
            plugins.SubApp(collector="gpu_monitor.fleet.metrics.Nope"),
            "collector",
            "'gpu_monitor.fleet.metrics.Nope' does not import",
        ),
        (plugins.SubApp(urls="nowhere.urls"), "urls", "'nowhere.urls' does not import"),
        (plugins.SubApp(tick_writer="nowhere"), "tick_writer", "'nowhere' does not import"),
        (plugins.SubApp(maintenance="os.nope"), "maintenance", "'os.nope' does not import"),
        (
            plugins.SubApp(panel=plugins.Panel("t.html", context="nowhere.context")),
            "panel.context",
            "'nowhere.context' does not import",
        ),
        (plugins.SubApp(page=("Fleet", "fleet")), "page", "is a tuple, not a Page"),  # type: ignore[arg-type]
        (plugins.SubApp(collector=42), "collector", "is a int, not a str"),  # type: ignore[arg-type]
        (
            plugins.SubApp(tick_writer_processes="yes"),  # type: ignore[arg-type]
            "tick_writer_processes",
            "is a str, not a bool",
        ),
        (
            plugins.SubApp(page=plugins.Page("Fleet", "fleet", permissions="NOPE")),  # type: ignore[arg-type]
            "page.permissions",
            "is 'NOPE', not one of ('PERMISSION_CLASSES', 'PROCESS_PERMISSION_CLASSES')",
        ),
        ("gpu_monitor.fleet.urls", "gpu_monitor", "is a str, not a SubApp"),
        (
            plugins.SubApp(page=plugins.Page("Fleet", None)),  # type: ignore[arg-type]
            "page.url_name",
            "is a NoneType, not a str",
        ),
        (
            plugins.SubApp(panel=plugins.Panel("t.html", context=len)),  # type: ignore[arg-type]
            "panel.context",
            "is a builtin_function_or_method, not a str",
        ),
    ],
)
def test_e005_names_the_app_and_the_field(
    monkeypatch: pytest.MonkeyPatch, declared: Any, field: str, problem: str
) -> None:
    declare(monkeypatch, declared)

    [(config, found_field, found_problem)] = plugins.problems()
    [error] = check_sub_apps()

    assert (config.name, found_field) == ("gpu_monitor.fleet", field)
    assert found_problem.startswith(problem)
    assert error.id == "gpu_monitor.E005"
    assert error.msg.startswith(f"gpu_monitor.fleet: gpu_monitor.{field} {problem}")
    assert (
        error.hint is not None and "FleetConfig" in error.hint and "docs/sub-apps.md" in error.hint
    )


def test_e005_fails_manage_py_check(fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    declare(monkeypatch, plugins.SubApp(collector="nowhere.Nope"))

    with pytest.raises(SystemCheckError, match=r"gpu_monitor\.E005"):
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())


def test_a_panel_gives_its_context(monkeypatch: pytest.MonkeyPatch) -> None:
    panel = plugins.Panel("t.html", context="tests.unit.test_plugins.panel_context")

    assert panel.get_context("a request") == {"seen": "a request"}
    assert plugins.Panel("t.html").get_context("a request") == {}


def panel_context(request: Any) -> dict[str, Any]:
    return {"seen": request}


# Page.may_open: the permission classes the page's view applies, failing closed.


def request_of(user: Any) -> Request:
    request = Request(RequestFactory().get("/api/gpu/dashboard"))
    request.user = user
    return request


FLEET = plugins.Page("Fleet", "fleet")
USAGE = plugins.Page(
    "Usage", "usage", permissions="PROCESS_PERMISSION_CLASSES", self_service="USAGE_SELF_SERVICE"
)


@pytest.fixture
def admin() -> User:
    return User(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def member() -> User:
    return User(username="ada")


def test_pages_under_the_default_settings(admin: User, member: User) -> None:
    """PERMISSION_CLASSES: DRF's AllowAny; PROCESS_PERMISSION_CLASSES: admins only."""
    anonymous = AnonymousUser()

    assert [FLEET.may_open(request_of(u)) for u in (admin, member, anonymous)] == [True] * 3
    assert [USAGE.may_open(request_of(u)) for u in (admin, member, anonymous)] == [
        True,
        False,
        False,
    ]


def test_process_pages_need_both_permission_settings(admin: User, member: User) -> None:
    with override_settings(
        GPU_MONITOR={"PERMISSION_CLASSES": ADMINS_ONLY, "PROCESS_PERMISSION_CLASSES": SIGNED_IN}
    ):
        assert USAGE.may_open(request_of(admin))
        assert not USAGE.may_open(request_of(member))  # PERMISSION_CLASSES refuse
        assert not FLEET.may_open(request_of(member))


def test_self_service_opens_the_page_to_a_signed_in_user(member: User) -> None:
    with override_settings(GPU_MONITOR={"USAGE_SELF_SERVICE": True}):
        assert USAGE.may_open(request_of(member))
        assert not USAGE.may_open(request_of(AnonymousUser()))
        assert not plugins.Page("U", "usage", "PROCESS_PERMISSION_CLASSES").may_open(
            request_of(member)
        )
    with override_settings(
        GPU_MONITOR={"USAGE_SELF_SERVICE": True, "PERMISSION_CLASSES": ADMINS_ONLY}
    ):
        assert not USAGE.may_open(request_of(member))  # self-service skips only the process ones


def test_a_class_that_raises_may_not_open(admin: User) -> None:
    with override_settings(GPU_MONITOR={"PERMISSION_CLASSES": ["tests.unit.test_plugins.Broken"]}):
        assert not FLEET.may_open(request_of(admin))
    with override_settings(
        GPU_MONITOR={"PROCESS_PERMISSION_CLASSES": ["tests.unit.test_plugins.Broken"]}
    ):
        assert FLEET.may_open(request_of(admin))
        assert not USAGE.may_open(request_of(admin))


def test_a_rejected_setting_opens_nothing(admin: User) -> None:
    with override_settings(GPU_MONITOR={"PERMISSION_CLASSES": ["nowhere.Nope"]}):
        assert not FLEET.may_open(request_of(admin))


class Broken:
    def has_permission(self, request: Any, view: Any) -> bool:
        raise RuntimeError("the directory service is down")


def test_without_prometheus_client_the_collectors_are_no_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # gpu-monitor without the prometheus extra: no metrics endpoint (501), and the
    # sub-apps' collectors, which import prometheus_client, are never run.
    for name in list(sys.modules):
        if name.split(".")[0] == "prometheus_client":
            monkeypatch.setitem(sys.modules, name, None)
        elif name.startswith("gpu_monitor.") and name.endswith(".metrics"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError):
        import_module("gpu_monitor.history.metrics")

    assert plugins.problems() == []
    declare(monkeypatch, plugins.SubApp(collector=42))  # type: ignore[arg-type]
    assert [(field, text) for _, field, text in plugins.problems()] == [
        ("collector", "is a int, not a str")
    ]

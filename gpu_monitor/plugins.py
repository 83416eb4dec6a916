"""The one contract between the core and its sub-apps, as NetBox's ``PluginConfig``.

A sub-app declares what it adds in one attribute of its ``AppConfig``::

    class FleetConfig(AppConfig):
        name = "gpu_monitor.fleet"
        gpu_monitor = plugins.SubApp(
            urls="gpu_monitor.fleet.urls",
            page=plugins.Page("Fleet", "fleet"),
            collector="gpu_monitor.fleet.metrics.FleetCollector",
            tick_writer="gpu_monitor.fleet.writer.write_host_state",
        )

The core reads the declarations here and only here (``sub_apps()`` and the helpers
below, in ``INSTALLED_APPS`` order), and imports none of the sub-apps by name: every
field is a dotted path, imported when it is used. The system check
``gpu_monitor.E005`` (``problems()``) says at start-up which app's which field does not
import or is of the wrong type. docs/sub-apps.md describes every field.
"""

from __future__ import annotations

import functools
import importlib.util
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, fields
from importlib import import_module
from typing import TYPE_CHECKING, Any, Literal

from django.apps import AppConfig, apps
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from django.urls import URLPattern, URLResolver
    from rest_framework.request import Request

PermissionKey = Literal["PERMISSION_CLASSES", "PROCESS_PERMISSION_CLASSES"]
PERMISSION_KEYS: tuple[PermissionKey, ...] = ("PERMISSION_CLASSES", "PROCESS_PERMISSION_CLASSES")


@dataclass(frozen=True)
class Page:
    """A page in the pages' nav: its label, its URL name (without the namespace), and
    who may open it: ``permissions`` names the ``GPU_MONITOR`` permission classes that
    gate it (``PROCESS_PERMISSION_CLASSES``: ``PERMISSION_CLASSES`` and those, as for the
    process endpoints). ``self_service``: the name of a ``GPU_MONITOR`` boolean that, when
    true, lets any signed-in user open the page too (the usage page shows them their own
    row)."""

    label: str
    url_name: str
    permissions: PermissionKey = "PERMISSION_CLASSES"
    self_service: str | None = None

    def permission_keys(self) -> tuple[PermissionKey, ...]:
        if self.permissions == "PERMISSION_CLASSES":
            return ("PERMISSION_CLASSES",)
        return PERMISSION_KEYS

    def may_open(self, request: Request) -> bool:
        """Whether the viewer of ``request`` may open the page, by the same permission
        classes its view applies. Fails closed: a class that refuses, or that raises
        anything (a broken class), or a ``GPU_MONITOR`` the checks reject, is a no."""
        # Imported here: the sub-apps' apps modules import this one while Django loads
        # the apps, before DRF's views may be.
        from rest_framework.views import APIView

        from gpu_monitor.api import instances
        from gpu_monitor.conf import conf

        if conf.problems():
            return False
        view = APIView()
        try:
            for key in self.permission_keys():
                if all(p.has_permission(request, view) for p in instances(key)):
                    continue
                if key == "PROCESS_PERMISSION_CLASSES" and self._self_served(request):
                    continue
                return False
        except Exception:  # a refusal (APIException) or a broken class: not in the nav
            return False
        return True

    def _self_served(self, request: Request) -> bool:
        from gpu_monitor.conf import conf

        user = getattr(request, "user", None)
        return bool(
            self.self_service
            and conf.get(self.self_service)
            and getattr(user, "is_authenticated", False)
        )


@dataclass(frozen=True)
class Panel:
    """A panel of the dashboard: ``template`` (included twice, with ``part="page"`` in the
    page's header and ``part="card"`` in each GPU's card, both given ``panel``),
    ``script`` (a static path, loaded after the page script; it follows the page through
    the ``gpu-monitor:data`` event) and ``context``, the dotted path of a callable
    ``(request) -> dict`` whose answer the template and script read."""

    template: str
    script: str | None = None
    context: str | None = None

    def get_context(self, request: Any) -> dict[str, Any]:
        """The panel's context for ``request`` (empty when it declares none)."""
        if self.context is None:
            return {}
        context: dict[str, Any] = import_string(self.context)(request)
        return context


@dataclass(frozen=True)
class NotInstalled:
    """Paths a shipped sub-app keeps answering while it is not installed: a JSON 404
    with ``detail`` (how to install it), under the URL name ``url_name``."""

    paths: tuple[str, ...]
    detail: str
    url_name: str | None = None


@dataclass(frozen=True)
class SubApp:
    """What a sub-app adds to the core; every field is optional. Dotted paths:

    - ``urls``: a module whose ``urlpatterns`` the core's ``urls.py`` includes;
    - ``collector``: a prometheus_client ``Collector`` class that takes no argument,
      registered in each scrape's registry after the GPUs' (it fails alone);
    - ``tick_writer``: a function the recorder calls at every tick with its
      ``TickContext``; ``tick_writer_processes``: it needs the processes read;
    - ``maintenance``: a function ``gpu_history_maintain`` calls with its cutoff.

    ``page`` and ``panel`` are declared in place (``Page``, ``Panel``);
    ``not_installed``, on a sub-app shipped in this package, the paths the core answers
    while it is not installed.
    """

    urls: str | None = None
    page: Page | None = None
    panel: Panel | None = None
    collector: str | None = None
    tick_writer: str | None = None
    tick_writer_processes: bool = False
    maintenance: str | None = None
    not_installed: NotInstalled | None = None


DOTTED_FIELDS = ("urls", "collector", "tick_writer", "maintenance")


def sub_apps() -> list[tuple[AppConfig, SubApp]]:
    """Every installed app that declares ``gpu_monitor = SubApp(...)``, in
    ``INSTALLED_APPS`` order."""
    found = []
    for config in apps.get_app_configs():
        declared = getattr(config, "gpu_monitor", None)
        if isinstance(declared, SubApp):
            found.append((config, declared))
    return found


def short_name(config: AppConfig) -> str:
    """The name a sub-app goes by in logs and metric labels: ``fleet`` for
    ``gpu_monitor.fleet``."""
    return config.name.rpartition(".")[2]


def urlpatterns() -> list[URLPattern | URLResolver]:
    """The URL patterns of every sub-app that declares ``urls``."""
    found: list[URLPattern | URLResolver] = []
    for _config, sub_app in sub_apps():
        if sub_app.urls:
            found += import_module(sub_app.urls).urlpatterns
    return found


def pages() -> list[Page]:
    """The pages of the sub-apps, in the nav's order (after the dashboard)."""
    return [sub_app.page for _config, sub_app in sub_apps() if sub_app.page]


def panels() -> list[Panel]:
    """The dashboard panels of the sub-apps."""
    return [sub_app.panel for _config, sub_app in sub_apps() if sub_app.panel]


def collectors() -> list[tuple[str, Callable[[], Any]]]:
    """``(name, make)`` of every sub-app that declares ``collector``: ``make()`` imports
    the class and returns a new collector (so a class that does not import fails in the
    scrape, alone, as one that raises); the name (``fleet``) labels its series of how
    the scrape went."""
    return [
        (short_name(config), functools.partial(_make, sub_app.collector))
        for config, sub_app in sub_apps()
        if sub_app.collector
    ]


def _make(path: str) -> Any:
    return import_string(path)()


def tick_writers() -> list[tuple[Callable[..., Any], bool]]:
    """``(writer, needs_processes)`` of every sub-app that declares ``tick_writer``."""
    return [
        (import_string(sub_app.tick_writer), sub_app.tick_writer_processes)
        for _config, sub_app in sub_apps()
        if sub_app.tick_writer
    ]


def maintenance_tasks() -> list[Callable[..., Any]]:
    """The maintenance function of every sub-app that declares ``maintenance``."""
    return [
        import_string(sub_app.maintenance) for _config, sub_app in sub_apps() if sub_app.maintenance
    ]


def not_installed() -> list[NotInstalled]:
    """What the sub-apps shipped in this package and absent from ``INSTALLED_APPS``
    answer in their place. Read from their ``apps`` modules, which import nothing but
    Django and this module, so that the core names none of them."""
    package = import_module(__package__ or "gpu_monitor")
    found = []
    for module in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
        if not module.ispkg or apps.is_installed(module.name):
            continue
        if importlib.util.find_spec(f"{module.name}.apps") is None:
            continue  # a package without an apps module (manager/): not a sub-app
        config_module = import_module(f"{module.name}.apps")
        for value in vars(config_module).values():
            declared = getattr(value, "gpu_monitor", None)
            if (
                isinstance(value, type)
                and issubclass(value, AppConfig)
                and getattr(value, "name", None) == module.name
                and isinstance(declared, SubApp)
                and declared.not_installed
            ):
                found.append(declared.not_installed)
    return found


def problems() -> list[tuple[AppConfig, str, str]]:
    """``(app, field, what is wrong)`` for every declaration that cannot work: a field of
    the wrong type, or a dotted path that does not import."""
    found: list[tuple[AppConfig, str, str]] = []
    for config in apps.get_app_configs():
        declared = getattr(config, "gpu_monitor", None)
        if declared is None:
            continue
        if not isinstance(declared, SubApp):
            found.append((config, "gpu_monitor", f"is a {type(declared).__name__}, not a SubApp"))
            continue
        found += [(config, name, text) for name, text in _field_problems(declared)]
    return found


def _field_problems(declared: SubApp) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    kinds: dict[str, type | tuple[type, ...]] = {
        "page": Page,
        "panel": Panel,
        "tick_writer_processes": bool,
        "not_installed": NotInstalled,
    }
    for field in fields(declared):
        value = getattr(declared, field.name)
        if value is None:
            continue
        kind = kinds.get(field.name, str)
        if not isinstance(value, kind):
            wanted = kind.__name__ if isinstance(kind, type) else kind
            found.append((field.name, f"is a {type(value).__name__}, not a {wanted}"))
            continue
        if field.name == "collector" and not metrics_installed():
            continue  # no metrics at all (the view answers 501): nothing to collect
        if field.name in DOTTED_FIELDS and isinstance(value, str):
            found += _import_problem(field.name, value)
    for name, value in _parts(declared):
        if not isinstance(value, str):
            found.append((name, f"is a {type(value).__name__}, not a str"))
    if isinstance(declared.page, Page) and declared.page.permissions not in PERMISSION_KEYS:
        found.append(
            ("page.permissions", f"is {declared.page.permissions!r}, not one of {PERMISSION_KEYS}")
        )
    context = declared.panel.context if isinstance(declared.panel, Panel) else None
    if isinstance(context, str):
        found += _import_problem("panel.context", context)
    return found


def metrics_installed() -> bool:
    """Whether ``prometheus_client`` (``gpu-monitor[prometheus]``) is installed: without
    it there is no metrics endpoint, and a collector, which imports it, is never run."""
    return importlib.util.find_spec("prometheus_client") is not None


def _parts(declared: SubApp) -> list[tuple[str, object]]:
    """The text fields of the declaration's page and panel, the optional ones when set."""
    parts: list[tuple[str, object]] = []
    if isinstance(declared.page, Page):
        page = declared.page
        parts += [("page.label", page.label), ("page.url_name", page.url_name)]
        parts += [("page.self_service", page.self_service)] if page.self_service else []
    if isinstance(declared.panel, Panel):
        panel = declared.panel
        parts.append(("panel.template", panel.template))
        parts += [("panel.script", panel.script)] if panel.script is not None else []
        parts += [("panel.context", panel.context)] if panel.context is not None else []
    return parts


def _import_problem(name: str, path: str) -> list[tuple[str, str]]:
    try:
        if name == "urls":
            import_module(path)
        else:
            import_string(path)
    except ImportError as exc:
        return [(name, f"{path!r} does not import: {exc}")]
    return []

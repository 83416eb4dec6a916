"""The django-health-check plugin, against the real django-health-check package."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import ModuleType
from typing import Any

import pytest
from django.db import OperationalError, connection, connections
from django.db.models import QuerySet
from django.test import RequestFactory
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView

from gpu_monitor import rules
from gpu_monitor.contrib.health_check import DatabaseHealthCheck, GPUHealthCheck
from gpu_monitor.fleet.models import HostState


def run(check: GPUHealthCheck) -> str | None:
    result = asyncio.run(check.get_result())
    return None if result.error is None else str(result.error)


def test_healthy_with_gpus(fake_nvml: ModuleType) -> None:
    assert run(GPUHealthCheck()) is None


def test_unhealthy_without_nvml(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED

    assert run(GPUHealthCheck()) == "Unavailable: NVML is not available: Driver Not Loaded"


def test_unhealthy_with_a_lost_gpu(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")

    assert run(GPUHealthCheck()) == "Unavailable: GPU 1: GPU is lost"


def test_minimum_gpu_count(fake_nvml: ModuleType) -> None:
    assert run(GPUHealthCheck(min_gpu_count=2)) is None
    assert run(GPUHealthCheck(min_gpu_count=3)) == (
        "Unavailable: 2 GPU(s) found, at least 3 expected"
    )


def test_maximum_temperature(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[1].temperature = 91

    assert run(GPUHealthCheck(max_temperature_c=91)) is None
    assert run(GPUHealthCheck(max_temperature_c=90)) == ("Unavailable: GPU 1 at 91 C (limit 90 C)")


@pytest.mark.parametrize(("scenario", "status"), [("healthy", 200), ("lost", 500)])
def test_through_health_check_view(fake_nvml: ModuleType, scenario: str, status: int) -> None:
    fake_nvml.configure(gpus=2, scenario=scenario)
    view = HealthCheckView.as_view(
        checks=[("gpu_monitor.contrib.health_check.GPUHealthCheck", {"min_gpu_count": 2})]
    )

    response = asyncio.run(view(RequestFactory().get("/health/?format=json")))

    assert response.status_code == status
    body = json.loads(response.content)
    ((label, result),) = body.items()
    assert label.startswith("GPUHealthCheck(min_gpu_count=2")
    assert (result == "OK") is (status == 200)


def test_repeated_failure_logged_once_by_gpu_monitor(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    """django-health-check logs every failing probe; our own logger says it once."""
    fake_nvml.configure(gpus=2, scenario="lost")
    caplog.set_level(logging.DEBUG, logger="gpu_monitor")
    for _ in range(3):
        assert run(GPUHealthCheck()) == "Unavailable: GPU 1: GPU is lost"

    ours = [r for r in caplog.records if r.name.startswith("gpu_monitor")]
    loud = [r for r in ours if r.levelno >= logging.WARNING]
    assert [r.levelno for r in loud] == [logging.ERROR]
    assert "GPU is lost" in loud[0].getMessage()
    assert sum("GPU is lost" in r.getMessage() for r in ours) == 3  # then at DEBUG


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ecc_uncorrected_volatile": 2}, "GPU 1: 2 uncorrected ECC error(s)"),
        (
            {"remapped_rows": (0, 1, 1, 0)},
            "GPU 1: a row remap is pending (reset the GPU to apply it)",
        ),
        ({"remapped_rows": (0, 0, 0, 1)}, "GPU 1: a row remap has failed"),
        ({"retired_pages_pending": 1, "errors": {}}, "GPU 1: retired pages are pending"),
        ({"clocks_event_reasons": 0x8}, "GPU 1: hardware slowdown (hw_slowdown)"),
        (
            {"clocks_event_reasons": 0x40 | 0x80 | 0x4},
            "GPU 1: hardware slowdown (hw_thermal_slowdown, hw_power_brake_slowdown)",
        ),
    ],
)
def test_failing_hardware_is_unhealthy(
    fake_nvml: ModuleType, change: dict[str, object], reason: str
) -> None:
    for name, value in change.items():
        setattr(fake_nvml.STATE.gpus[1], name, value)

    assert run(GPUHealthCheck()) == f"Unavailable: {reason}"


@pytest.mark.parametrize(
    ("change", "option"),
    [
        ({"ecc_uncorrected_volatile": 2}, "uncorrected_ecc"),
        ({"remapped_rows": (0, 1, 1, 1)}, "remap_pending"),
        ({"retired_pages_pending": 1, "errors": {}}, "retired_pages_pending"),
        ({"clocks_event_reasons": 0x8}, "hardware_slowdown"),
    ],
)
def test_each_condition_can_be_turned_off(
    fake_nvml: ModuleType, change: dict[str, object], option: str
) -> None:
    for name, value in change.items():
        setattr(fake_nvml.STATE.gpus[0], name, value)

    assert run(GPUHealthCheck()) is not None
    assert run(GPUHealthCheck(**{option: False})) is None  # type: ignore[arg-type]


def test_harmless_signals_stay_healthy(fake_nvml: ModuleType) -> None:
    gpu = fake_nvml.STATE.gpus[0]
    gpu.ecc_corrected_volatile = gpu.ecc_uncorrected_aggregate = 5  # corrected; old errors
    gpu.remapped_rows = (3, 1, 0, 0)  # remaps done, none pending
    gpu.clocks_event_reasons = 0x1 | 0x4 | 0x20  # idle, software power cap and thermal

    assert run(GPUHealthCheck()) is None


def test_every_problem_is_named(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[0].ecc_uncorrected_volatile = 1
    fake_nvml.STATE.gpus[1].clocks_event_reasons = 0x40

    assert run(GPUHealthCheck()) == (
        "Unavailable: GPU 0: 1 uncorrected ECC error(s); "
        "GPU 1: hardware slowdown (hw_thermal_slowdown)"
    )


def test_uncorrectable_ecc_makes_health_endpoint_unhealthy(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[0].ecc_uncorrected_volatile = 1
    view = HealthCheckView.as_view(checks=["gpu_monitor.contrib.health_check.GPUHealthCheck"])

    response = asyncio.run(view(RequestFactory().get("/health/?format=json")))

    assert response.status_code == 500
    assert "GPU 0: 1 uncorrected ECC error(s)" in response.content.decode()


def test_conditions_come_from_the_shared_rules(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One definition (gpu_monitor.rules), which the dashboard's badges use too: a change
    to the vocabulary there changes what the health check says."""
    fake_nvml.STATE.gpus[0].clocks_event_reasons = 0x4  # sw_power_cap: normal operation
    assert run(GPUHealthCheck()) is None

    monkeypatch.setattr(rules, "HARDWARE_SLOWDOWNS", (*rules.HARDWARE_SLOWDOWNS, "sw_power_cap"))

    assert run(GPUHealthCheck()) == "Unavailable: GPU 0: hardware slowdown (sw_power_cap)"
    assert run(GPUHealthCheck(hardware_slowdown=False)) is None


def test_every_rule_kind_is_turned_off_by_an_argument() -> None:
    for kind in rules.PROBLEM_KINDS:
        assert getattr(GPUHealthCheck(), rules.CHECK_OF[kind]) is True


# -- the central site's check: its database, no NVML --------------------------------

DATABASE_CHECK = "gpu_monitor.contrib.health_check.DatabaseHealthCheck"


class ClosingWorker(ThreadPoolExecutor):
    """The view's worker thread, which closes its own database connections when a check
    is done. Django never closes a connection to an in-memory SQLite (the test database):
    the worker's would be left to the garbage collector, and Python 3.13 warns then, in
    whichever later test that happens."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                for alias in connections:
                    raw = connections[alias].connection
                    if raw is not None:
                        raw.close()
                        connections[alias].connection = None

        return super().submit(run)


@pytest.mark.django_db(transaction=True)
def test_the_database_check_is_healthy_without_nvml(fake_nvml: ModuleType) -> None:
    """The central site: no NVML, where GPUHealthCheck always fails; its tables answer."""
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND
    view = HealthCheckView.as_view(
        checks=[DATABASE_CHECK, "gpu_monitor.contrib.health_check.GPUHealthCheck"],
        get_executor=lambda: ClosingWorker(max_workers=1),
    )

    body = json.loads(asyncio.run(view(RequestFactory().get("/health/?format=json"))).content)

    database, gpu = body.values()
    assert database == "OK"
    assert gpu.startswith("Unavailable: NVML is not available")


def test_the_database_check_reads_every_sub_apps_tables(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    exists = QuerySet.exists

    def counted(self: QuerySet[Any]) -> bool:
        read.append(self.model._meta.db_table)
        return exists(self)

    monkeypatch.setattr(QuerySet, "exists", counted)
    DatabaseHealthCheck().run()
    all_read = sorted(read)
    read.clear()
    DatabaseHealthCheck(app_labels=["gpu_monitor_fleet"]).run()

    assert {"gpu_monitor_fleet_hoststate", "gpu_monitor_history_sample"} <= set(all_read)
    assert {"gpu_monitor_history_event", "gpu_monitor_usage_usage"} <= set(all_read)
    assert "gpu_monitor_fleet_hoststate" in read
    assert not [table for table in read if "history" in table or "usage" in table]


@pytest.mark.django_db(transaction=True)
def test_the_database_check_says_run_migrate_for_a_missing_table() -> None:
    with connection.schema_editor() as editor:
        editor.delete_model(HostState)
    try:
        with pytest.raises(ServiceUnavailable) as raised:
            DatabaseHealthCheck(app_labels=["gpu_monitor_fleet"]).run()
    finally:
        with connection.schema_editor() as editor:
            editor.create_model(HostState)

    error = "ProgrammingError" if connection.vendor == "postgresql" else "OperationalError"
    assert str(raised.value.message) == (
        "gpu_monitor_fleet_hoststate: The GPU fleet tables are missing or out of date "
        f"({error}): run manage.py migrate."
    )


def test_the_database_check_fails_while_the_database_does_not_answer(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def away(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection to server failed: Connection refused")

    with monkeypatch.context() as patch, pytest.raises(ServiceUnavailable) as raised:
        patch.setattr(connection, "cursor", away)
        DatabaseHealthCheck().run()

    assert "database did not answer (OperationalError)" in str(raised.value.message)
    assert "Connection refused" not in str(raised.value.message)  # the server log's


def test_the_database_check_without_a_sub_app_says_so(db: None) -> None:
    with pytest.raises(ServiceUnavailable) as raised:
        DatabaseHealthCheck(app_labels=["no_such_app"]).run()

    assert "No gpu_monitor sub-app with tables is installed" in str(raised.value.message)


# -- a machine that may have no GPU (nvml_required=False; the example project) --------


def test_without_nvml_a_check_that_does_not_require_it_passes_and_says_no_gpu(
    fake_nvml: ModuleType,
) -> None:
    fake_nvml.configure(gpus=1, scenario="no_nvml")
    check = GPUHealthCheck(nvml_required=False)

    assert run(check) is None
    assert repr(check) == (
        "GPUHealthCheck(min_gpu_count=1, max_temperature_c=None, uncorrected_ecc=True, "
        "remap_pending=True, retired_pages_pending=True, hardware_slowdown=True) "
        "no GPU: NVML Shared Library Not Found"
    )
    assert check.pretty_status() == "no GPU: NVML Shared Library Not Found"
    assert check.labels == {"check": "GPUHealthCheck", **GPUHealthCheck().labels}


@pytest.mark.parametrize(
    ("scenario", "gpus", "minimum", "error"),
    [
        ("lost", 2, 1, "Unavailable: GPU 1: GPU is lost"),
        ("healthy", 1, 2, "Unavailable: 1 GPU(s) found, at least 2 expected"),
    ],
)
def test_a_real_fault_fails_a_check_that_does_not_require_nvml(
    fake_nvml: ModuleType, scenario: str, gpus: int, minimum: int, error: str
) -> None:
    fake_nvml.configure(gpus=gpus, scenario=scenario)
    check = GPUHealthCheck(min_gpu_count=minimum, nvml_required=False)

    assert run(check) == error
    assert "no GPU" not in repr(check)


def test_the_default_still_fails_without_nvml_and_keeps_its_name(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=1, scenario="no_nvml")
    check = GPUHealthCheck()

    assert run(check) == "Unavailable: NVML is not available: NVML Shared Library Not Found"
    assert repr(check) == (
        "GPUHealthCheck(min_gpu_count=1, max_temperature_c=None, uncorrected_ecc=True, "
        "remap_pending=True, retired_pages_pending=True, hardware_slowdown=True)"
    )


@pytest.fixture
def example_urls() -> Iterator[None]:
    """The example project's URLs, health/ included (tests.settings has no HEALTH)."""
    import importlib

    from django.test import override_settings
    from django.urls import clear_url_caches

    with override_settings(HEALTH=True, ROOT_URLCONF="example_project.urls"):
        importlib.reload(importlib.import_module("example_project.urls"))
        clear_url_caches()
        yield
    clear_url_caches()


def test_the_examples_health_is_a_200_without_a_gpu_and_logs_no_error(
    fake_nvml: ModuleType,
    example_urls: None,
    client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A central site or a laptop: django-health-check's 500 was logged as "Internal
    Server Error" by Django on every probe."""
    fake_nvml.configure(gpus=1, scenario="no_nvml")
    caplog.set_level(logging.INFO)

    response = client.get("/health/?format=json")

    assert response.status_code == 200
    ((label, result),) = json.loads(response.content).items()
    assert label.endswith(") no GPU: NVML Shared Library Not Found")
    assert result == "OK"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_the_examples_health_fails_for_a_lost_gpu(
    fake_nvml: ModuleType, example_urls: None, client: Any
) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")

    response = client.get("/health/?format=json")

    assert response.status_code == 500
    assert json.loads(response.content) == {
        "GPUHealthCheck(min_gpu_count=1, max_temperature_c=None, uncorrected_ecc=True, "
        "remap_pending=True, retired_pages_pending=True, hardware_slowdown=True)": (
            "Unavailable: GPU 1: GPU is lost"
        )
    }

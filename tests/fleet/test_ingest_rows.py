"""A pushed tick writes the rows the direct recorder writes for the same snapshot; a
pushed process's owner is never read from this machine's /proc; the host token opens
no other endpoint."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction
from django.db.models import Model
from django.forms.models import model_to_dict
from django.test import Client, override_settings

from gpu_monitor import host as host_details
from gpu_monitor.fleet.models import HostState
from gpu_monitor.history import store
from gpu_monitor.history.models import Event, Sample
from gpu_monitor.history.recorded import Recorded
from gpu_monitor.history.sampler import Sampler
from gpu_monitor.manager import GPUManager
from gpu_monitor.usage import writer as usage_writer
from gpu_monitor.usage.models import Hold, Usage
from tests.fleet.ingest_helpers import HOST, body, post, sampler, token_for

pytestmark = pytest.mark.django_db

TABLES: tuple[type[Model], ...] = (Sample, Event, HostState, Usage, Hold)


@pytest.fixture(autouse=True)
def no_throttle_history() -> None:
    cache.clear()


def rows() -> dict[str, list[dict[str, Any]]]:
    found = {}
    for model in TABLES:
        values = [
            {k: v for k, v in model_to_dict(row).items() if k != "id"}
            for row in model.objects.order_by(*[f.name for f in model._meta.concrete_fields][1:])
        ]
        found[model.__name__] = values
    return found


def test_a_pushed_tick_writes_the_rows_of_the_direct_writer(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=3, scenario="load")
    direct = Sampler(GPUManager(), host=HOST, interval=10, processes=False)
    recorded = Recorded()
    for epoch in (1000, 1010):
        with transaction.atomic():
            _events, recorded = store.write_tick(HOST, direct.snapshot(epoch), recorded, "default")
    written = rows()
    assert written["Usage"] and written["Hold"] and written["Sample"]
    for model in TABLES:
        model.objects.all().delete()

    read = sampler()
    response = post(body([read.snapshot(1000), read.snapshot(1010)]), token_for())

    assert response.json()["written"] == 2
    assert rows() == written


def test_a_pushed_process_owner_is_never_read_from_this_machines_proc(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.configure(gpus=1, scenario="load")
    monkeypatch.setattr(host_details, "CHILD_NAMESPACE", False)
    monkeypatch.setattr(usage_writer, "uid_owner", lambda pid: "someone-here")
    sent = body([sampler().snapshot(1000)])
    for process in sent["ticks"][0]["processes"]["processes"]:
        process["username"] = None  # the node has no psutil
        process["field_errors"] = {"username": host_details.NO_PSUTIL}
    assert sent["ticks"][0]["processes"]["processes"]

    assert post(sent, token_for()).status_code == 200

    assert set(Usage.objects.values_list("user", flat=True)) == {"unknown"}


def test_the_proc_rule_still_reads_a_local_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpu_monitor.types import GPUProcess

    monkeypatch.setattr(host_details, "CHILD_NAMESPACE", False)
    monkeypatch.setattr(usage_writer, "uid_owner", lambda pid: "someone-here")
    fields = {name: None for name in GPUProcess.__dataclass_fields__}
    process = GPUProcess(
        **{**fields, "pid": 42, "field_errors": {"username": host_details.NO_PSUTIL}}
    )

    assert usage_writer.user_of(process) == "someone-here"
    assert usage_writer.user_of(process, local=False) == "unknown"


@pytest.mark.parametrize("path", ["/api/gpu/devices", "/api/gpu/hosts", "/api/gpu/history"])
def test_the_host_token_opens_no_other_endpoint(fake_nvml: ModuleType, path: str) -> None:
    token = token_for()
    locked = {"PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"]}
    with override_settings(GPU_MONITOR=locked):
        response = Client().get(path, HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code in (401, 403)

"""Each way of naming a GPU answers alike for the same GPU, a lost one included; the
catch-all 404 stays under the app; a permission class that fails is closed, not a 500."""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

import pytest
from django.test import Client, override_settings

from gpu_monitor.checks import check_anonymous_access
from gpu_monitor.manager import GPUManager, GPUNotFoundError
from gpu_monitor.types import GPUDevice


def test_lost_gpu_names_every_reading_in_field_errors(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")

    lost = GPUManager().get_devices()[1]

    readings = {
        f.name
        for f in dataclasses.fields(GPUDevice)
        if f.name not in {"index", "name", "is_available", "error_message", "field_errors"}
        and f.name != "mig_devices"
    }
    assert lost.is_available is False
    assert lost.field_errors == dict.fromkeys(readings, "GPU is lost")
    assert all(getattr(lost, name) is None for name in readings)


def test_gpu_lost_after_it_was_read_answers_by_uuid_as_by_index(
    fake_nvml: ModuleType, client: Client
) -> None:
    uuid = fake_nvml.STATE.gpus[1].uuid
    assert client.get(f"/api/gpu/devices/{uuid}").json()["is_available"] is True
    fake_nvml.STATE.gpus[1].handle_error = fake_nvml.NVML_ERROR_GPU_IS_LOST

    by_index = client.get("/api/gpu/devices/1")
    by_uuid = client.get(f"/api/gpu/devices/{uuid}")

    assert by_index.status_code == by_uuid.status_code == 200
    assert by_uuid.json() == by_index.json()
    assert by_uuid.json()["uuid"] == uuid  # the UUID it had when last read
    assert by_uuid.json()["error_message"] == "GPU is lost"
    assert "uuid" not in by_uuid.json()["field_errors"]
    assert by_uuid.json()["field_errors"]["temperature_c"] == "GPU is lost"


def test_mig_uuid_of_a_lost_gpu_answers_its_parent(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="mig")
    manager = GPUManager()
    mig_uuid = manager.get_devices()[0].mig_devices[0].uuid
    assert mig_uuid is not None
    fake_nvml.STATE.gpus[0].handle_error = fake_nvml.NVML_ERROR_GPU_IS_LOST

    device = manager.get_device_by_uuid(mig_uuid)

    assert (device.index, device.is_available) == (0, False)


def test_gpu_lost_before_this_process_read_it_is_a_404_that_says_so(
    fake_nvml: ModuleType, client: Client
) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")
    uuid = fake_nvml.STATE.gpus[1].uuid

    response = client.get(f"/api/gpu/devices/{uuid}")

    assert response.status_code == 404
    assert "is lost" in response.json()["detail"]
    with pytest.raises(GPUNotFoundError, match="never read its index"):
        GPUManager().get_device_by_uuid(uuid)


@override_settings(ROOT_URLCONF="tests.unit.urls_at_root")
def test_app_mounted_at_root_leaves_the_projects_later_urls_alone(
    fake_nvml: ModuleType, client: Client
) -> None:
    assert client.get("/shop/").content == b"the project's own page"
    assert client.get("/devices").status_code == 200
    for path in ("/", "/devices/0/extra", "/status/nope", "/hosts/a/b/c"):
        response = client.get(path)
        assert response.status_code == 404
        assert "Endpoints:" in response.json()["detail"]
    assert client.get("/elsewhere").status_code == 404  # Django's, not the app's
    assert client.get("/elsewhere")["Content-Type"].startswith("text/html")


def test_mounted_under_a_prefix_any_other_path_is_the_apps_json_404(
    fake_nvml: ModuleType, client: Client
) -> None:
    response = client.get("/api/gpu/elsewhere/deeper")

    assert response.status_code == 404
    assert "Endpoints:" in response.json()["detail"]


class RaisesOnAnonymous:
    """A permission class with a bug: it reads an attribute anonymous users lack."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(request.user.team.name)

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        return True


BROKEN = {"PERMISSION_CLASSES": ["tests.unit.test_lookups.RaisesOnAnonymous"]}


@override_settings(DEBUG=False, GPU_MONITOR=BROKEN)
def test_w002_when_a_permission_class_raises_on_an_anonymous_request() -> None:
    messages = check_anonymous_access()

    assert [m.id for m in messages] == ["gpu_monitor.W002"]
    assert "RaisesOnAnonymous raised AttributeError" in messages[0].msg


@override_settings(GPU_MONITOR=BROKEN)
def test_a_permission_class_that_raises_is_a_503_not_a_500(
    fake_nvml: ModuleType, client: Client
) -> None:
    response = client.get("/api/gpu/devices")

    assert response.status_code == 503
    assert "permission class failed (AttributeError)" in response.json()["detail"]

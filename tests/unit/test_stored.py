"""The public floor of the sub-apps (``gpu_monitor.stored``), the time helpers of
``params``, and the problem rules that the health check and the fleet share."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from gpu_monitor import params, rules, stored
from gpu_monitor.types import DriverInfo, GPUDevice, MIGDevice


def request(**query: str) -> Request:
    return Request(APIRequestFactory().get("/", query))


def test_iso_is_utc_with_a_z_to_the_second() -> None:
    assert params.iso(1795852800.9) == "2026-11-28T08:00:00Z"
    assert params.iso(0) == "1970-01-01T00:00:00Z"


def test_moment_is_an_aware_utc_datetime() -> None:
    found = params.moment(1795852800)
    assert found == datetime.datetime(2026, 11, 28, 8, tzinfo=datetime.timezone.utc)
    assert found.utcoffset() == datetime.timedelta(0)


def test_host_parameter_absent_or_empty_is_none() -> None:
    assert stored.host_parameter(request()) is None
    assert stored.host_parameter(request(host="")) is None
    assert stored.host_parameter(request(host="gpu-node-1")) == "gpu-node-1"
    assert stored.host_parameter(request(q="node"), "q") == "node"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x" * 256, "host: longer than 255 characters"),
        ("a\x00b", "host: contains a NUL character"),
    ],
)
def test_host_parameter_refuses_what_no_host_is_named(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        stored.host_parameter(request(host=text))
    assert stored.host_parameter(request(host="x" * stored.MAX_HOST_LENGTH)) is not None


def test_from_stored_keeps_the_fields_of_the_dataclass_only() -> None:
    data = {"driver_version": "580.1", "cuda_driver_version": "13.0", "nvml_version": "13.5"}
    newer = {**data, "from_a_newer_node": 1}
    assert stored.from_stored(DriverInfo, newer) == DriverInfo("580.1", "13.0", "13.5")


def test_from_stored_takes_the_given_fields_over_the_json() -> None:
    data = {"index": 0, "name": "H200", "mig_devices": [{"index": 0}]}
    mig = MIGDevice(uuid="MIG-x", name="1g.18gb", gpu_instance_id=1, compute_instance_id=0)
    device = stored.from_stored(GPUDevice, data, mig_devices=[mig])
    assert device.index == 0 and device.name == "H200" and device.mig_devices == [mig]


def test_a_gpu_that_does_not_answer_is_a_problem_with_its_reason() -> None:
    lost = GPUDevice(index=1, name="", is_available=False, error_message="GPU is lost")
    assert rules.unavailable(lost) == rules.Problem(
        rules.GPU_UNAVAILABLE, "Unavailable", "GPU is lost"
    )
    silent = dataclasses.replace(lost, error_message=None)
    assert rules.unavailable(silent) is not None
    assert rules.unavailable(silent).message == "the GPU does not answer"  # type: ignore[union-attr]
    assert rules.unavailable(GPUDevice(index=0, name="H100")) is None


def test_gpu_problems_are_not_answering_then_failing_hardware() -> None:
    device = GPUDevice(
        index=0,
        name="H100",
        is_available=False,
        error_message="GPU is lost",
        ecc_errors_uncorrected_volatile=2,
    )
    kinds = [problem.kind for problem in rules.gpu_problems(device)]
    assert kinds == [rules.GPU_UNAVAILABLE, rules.UNCORRECTED_ECC]
    healthy = dataclasses.replace(device, is_available=True, error_message=None)
    assert rules.gpu_problems(healthy) == rules.hardware_problems(healthy)

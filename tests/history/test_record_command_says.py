"""What gpu_record says: ``--once`` one line at verbosity 1 and more (the host, its GPUs
and the tick's time), nothing at 0, stderr clean; without NVML the reason once, in the
command's own line, not again as a warning."""

from __future__ import annotations

import io
import logging
import signal
import threading
from types import ModuleType

import pytest
from django.core.management import call_command

from gpu_monitor.history.models import Sample
from gpu_monitor.params import iso

pytestmark = pytest.mark.django_db(transaction=True)


def record(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("gpu_record", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_once_says_what_it_wrote_in_one_line(fake_nvml: ModuleType) -> None:
    out, err = record("--once", "--host", "node-9")

    epoch = Sample.objects.filter(host="node-9").values_list("epoch", flat=True).first()
    assert epoch is not None
    assert (out, err) == (f"Recorded host 'node-9' at {iso(epoch)}: 2 GPU(s).\n", "")


def test_once_counts_a_lost_gpu(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")

    out, _ = record("--once", "--host", "node-9")

    assert out.endswith(": 2 GPU(s), 1 lost.\n")  # as gpu_devices and GET hosts count


def test_once_at_verbosity_0_says_nothing(fake_nvml: ModuleType) -> None:
    assert record("--once", "--host", "node-9", "-v", "0") == ("", "")
    assert Sample.objects.filter(host="node-9").count() == 2


def test_without_nvml_once_says_why_once_and_logs_no_warning(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml.configure(gpus=2, scenario="no_nvml")

    with caplog.at_level(logging.DEBUG, logger="gpu_monitor"):
        out, err = record("--once", "--host", "node-9")

    assert out.endswith(": no GPU (NVML unavailable: NVML Shared Library Not Found).\n")
    assert err == ""
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_without_nvml_the_start_line_says_why(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.configure(gpus=2, scenario="no_nvml")
    started = threading.Event()
    out = io.StringIO()

    class Said(io.StringIO):
        def write(self, text: str) -> int:
            if text.startswith("Recording host"):
                started.set()
            return out.write(text)

    threading.Timer(0.5, lambda: started.wait(5) and signal.raise_signal(signal.SIGTERM)).start()
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor"):
        call_command("gpu_record", "--host", "node-9", stdout=Said(), stderr=io.StringIO())

    assert out.getvalue().startswith(
        "Recording host 'node-9' every 10 s, keeping 604800 s, without GPUs (NVML "
        "unavailable: NVML Shared Library Not Found); SIGTERM or Ctrl-C stops."
    )
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

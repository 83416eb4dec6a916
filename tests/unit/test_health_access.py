"""Who can read health/: the docs' two snippets of "Health checks", run as written.

The first (an open ``health/``, as the example project serves it) answers anonymous
users with the GPUs' state, even while ``GPU_MONITOR`` is misconfigured and the API
answers 503; the second (``staff_member_required``) sends them to the login page.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import path

import tests.urls

README = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
MISCONFIGURED = {"PERMISSION_CLASSES": "rest_framework.permissions.IsAdminUser"}  # not a list


def health_snippets() -> list[str]:
    """The Python blocks of docs/metrics.md's "Health checks" section that define health/."""
    section = README.read_text().split("\n## Health checks\n")[1].split("\n## ")[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    return [block for block in blocks if '"health/"' in block]


def use_snippet(snippet: str, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A URLconf of the API and the admin (as tests/urls.py) plus the snippet's health/."""
    module = ModuleType("readme_health_urls")
    module.__dict__.update(path=path, urlpatterns=list(tests.urls.urlpatterns))
    exec(snippet, module.__dict__)
    if not any(str(p.pattern) == "admin/" for p in module.urlpatterns):
        module.urlpatterns += [path("admin/", admin.site.urls)]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    settings.ROOT_URLCONF = module.__name__


@pytest.fixture
def open_health(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    snippets = [s for s in health_snippets() if "staff_member_required" not in s]
    assert len(snippets) == 1
    use_snippet(snippets[0], settings, monkeypatch)


@pytest.fixture
def protected_health(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    snippets = [s for s in health_snippets() if "staff_member_required(" in s]
    assert len(snippets) == 1
    use_snippet(snippets[0], settings, monkeypatch)


@pytest.mark.usefixtures("open_health")
@pytest.mark.parametrize("scenario", ["healthy", "lost"])
def test_open_health_tells_anonymous_users_the_gpu_state(
    fake_nvml: ModuleType, client: Client, scenario: str
) -> None:
    fake_nvml.configure(gpus=2, scenario=scenario)

    response = client.get("/health/?format=json")

    ((label, result),) = json.loads(response.content).items()
    assert label.startswith("GPUHealthCheck(")
    if scenario == "healthy":
        assert (response.status_code, result) == (200, "OK")
    else:
        assert (response.status_code, result) == (500, "Unavailable: GPU 1: GPU is lost")


@pytest.mark.usefixtures("open_health")
def test_open_health_answers_while_the_api_is_closed_by_a_misconfiguration(
    fake_nvml: ModuleType, client: Client, settings: Any
) -> None:
    fake_nvml.STATE.gpus[1].temperature = 91
    settings.GPU_MONITOR = MISCONFIGURED

    assert client.get("/api/gpu/devices").status_code == 503
    response = client.get("/health/?format=json")
    assert response.status_code == 500
    (result,) = json.loads(response.content).values()
    assert result.startswith("Unavailable: GPU 1 at 91 C (limit")


@pytest.mark.usefixtures("protected_health")
@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_protected_health_sends_others_to_the_login_page(
    fake_nvml: ModuleType, client: Client, db: None, who: str
) -> None:
    if who == "user":
        client.force_login(User.objects.create_user("alice"))

    response = client.get("/health/?format=json")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/health/")
    assert b"GPU" not in response.content


@pytest.mark.usefixtures("protected_health")
def test_protected_health_answers_staff(fake_nvml: ModuleType, client: Client, db: None) -> None:
    client.force_login(User.objects.create_user("ops", is_staff=True))
    fake_nvml.configure(gpus=2, scenario="lost")

    response = client.get("/health/?format=json")

    assert response.status_code == 500
    assert list(json.loads(response.content).values()) == ["Unavailable: GPU 1: GPU is lost"]

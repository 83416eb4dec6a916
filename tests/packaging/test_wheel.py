"""Build the sdist and wheel, install the wheel into a fresh virtualenv outside the
checkout, and run a throwaway project against it: INSTALLED_APPS + include(urls) + one
request + the management command. Catches missing package data, a wheel that carries
tests or the example project, and imports that only work from the source tree."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.packaging

SETTINGS = """
SECRET_KEY = "throwaway"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = [
    "django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "gpu_monitor",
]
ROOT_URLCONF = "urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
"""
URLS = """
from django.urls import include, path
urlpatterns = [path("api/gpu/", include("gpu_monitor.urls"))]
"""
REQUEST = """
import json, django
django.setup()
import gpu_monitor
from django.test import Client
client = Client()
devices = client.get("/api/gpu/devices")
metrics = client.get("/api/gpu/metrics", HTTP_ACCEPT="application/json")
print(json.dumps({"file": gpu_monitor.__file__, "status": devices.status_code,
                  "body": devices.json(), "metrics": metrics.status_code}))
"""


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = run(
        sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, ROOT, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return out


def test_wheel_holds_only_the_app(dist: Path) -> None:
    (wheel,) = dist.glob("gpu_monitor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()

    assert all(n.startswith(("gpu_monitor/", "gpu_monitor-")) for n in names), names
    assert "gpu_monitor/py.typed" in names
    assert "gpu_monitor/management/commands/gpu_devices.py" in names
    assert "gpu_monitor/history/migrations/0001_initial.py" in names
    assert "gpu_monitor/history/management/commands/gpu_record.py" in names
    assert "gpu_monitor/templates/gpu_monitor/error.html" in names
    assert not any(n.startswith(("tests/", "example_project/", "bench/")) for n in names)
    assert len(list(dist.glob("gpu_monitor-*.tar.gz"))) == 1


def test_wheel_requires_only_what_the_app_needs(dist: Path) -> None:
    (wheel,) = dist.glob("gpu_monitor-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        lines = archive.read(metadata).decode().splitlines()

    requires = [
        line.split(":", 1)[1].strip() for line in lines if line.startswith("Requires-Dist:")
    ]
    always = sorted(r.split(">")[0].split("<")[0].lower() for r in requires if "extra ==" not in r)
    assert always == ["django", "djangorestframework", "nvidia-ml-py"]
    extras = {line.split(":", 1)[1].strip() for line in lines if line.startswith("Provides-Extra:")}
    assert {"openapi", "prometheus", "health", "processes"} <= extras


def test_installed_wheel_serves_a_throwaway_project(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("gpu_monitor-*.whl")
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    python = venv / "bin" / "python"
    install = run(python, "-m", "pip", "install", "-q", wheel, cwd=tmp_path)
    assert install.returncode == 0, install.stderr[-2000:]

    project = tmp_path / "project"
    project.mkdir()
    (project / "settings.py").write_text(textwrap.dedent(SETTINGS))
    (project / "urls.py").write_text(textwrap.dedent(URLS))
    env_python = [python, "-c"]
    result = subprocess.run(
        [*env_python, REQUEST],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={"DJANGO_SETTINGS_MODULE": "settings", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["file"].startswith(str(venv)), answer["file"]  # not the source tree
    assert answer["status"] == 200
    assert answer["body"]["count"] == len(answer["body"]["devices"])
    assert answer["metrics"] == 501  # prometheus_client is an extra, not installed here

    command = subprocess.run(
        [python, "-m", "django", "gpu_devices", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            "DJANGO_SETTINGS_MODULE": "settings",
            "PYTHONPATH": str(project),
            "PATH": "/usr/bin:/bin",
        },
    )
    body = json.loads(command.stdout)
    assert command.returncode == (0 if body["count"] else 1), command.stderr
    if not body["count"]:
        assert "No NVIDIA GPU available: " in command.stderr


def test_installed_wheel_records_history(dist: Path, tmp_path: Path) -> None:
    """The sub-app from the wheel: its migrations apply, gpu_record --once writes, and
    the history endpoint answers (an empty series list without a GPU here)."""
    (wheel,) = dist.glob("gpu_monitor-*.whl")
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    python = venv / "bin" / "python"
    assert run(python, "-m", "pip", "install", "-q", wheel, cwd=tmp_path).returncode == 0
    project = tmp_path / "project"
    project.mkdir()
    settings = textwrap.dedent(SETTINGS).replace(
        '"gpu_monitor",', '"gpu_monitor", "gpu_monitor.history",'
    )
    settings += "\nDATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', "
    settings += f"'NAME': {str(tmp_path / 'db.sqlite3')!r}}}}}\n"
    (project / "settings.py").write_text(settings)
    (project / "urls.py").write_text(textwrap.dedent(URLS))
    env = {
        "DJANGO_SETTINGS_MODULE": "settings",
        "PYTHONPATH": str(project),
        "PATH": "/usr/bin:/bin",
    }

    def django(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, "-m", "django", *args],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
        )

    migrate = django("migrate", "--verbosity", "0")
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    recorded = django("gpu_record", "--once", "--host", "packaged")
    assert recorded.returncode == 0, recorded.stderr[-2000:]
    request = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/api/gpu/history', {'host': 'packaged'}, HTTP_HOST='localhost'); "
        "print(json.dumps([r.status_code, r.json()]))"
    )
    answer = subprocess.run(
        [python, "-c", request],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    status, body = json.loads(answer.stdout.strip().splitlines()[-1])
    assert status == 200, answer.stderr[-2000:]
    assert body["host"] == "packaged" and isinstance(body["series"], list)

"""``manage.py gpu_fleet | head -1``: a reader that goes away ends the command quietly
with status 0, as ``gpu_devices`` does, with and without ``--json`` and ``--watch``.

Real processes: ``gpu_fleet`` on an SQLite file of 3,000 hosts (more output than a
pipe holds, so that the command is still writing when ``head`` exits), piped to the
system's ``head -1``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOSTS = 3000
TIMEOUT_S = 60


def manage(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a central site whose database holds HOSTS hosts."""
    folder = tmp_path_factory.mktemp("pipe")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "tests.fleet.pipe_settings",
        "PIPE_DB": str(folder / "fleet.sqlite3"),
    }
    fill = (
        "from gpu_monitor.fleet.models import HostState\n"
        "from gpu_monitor.history.recorder import moment\n"
        "HostState.objects.bulk_create(HostState(host=f'node-{n:04}', epoch=0, "
        f"timestamp=moment(0), interval_seconds=10, devices=[]) for n in range({HOSTS}))"
    )
    for args in (("migrate", "-v0"), ("shell", "-v0", "-c", fill)):
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    return env


@pytest.mark.parametrize(
    ("args", "first"),
    [
        ((), b"0 up, 0 stale, 3000 down\n"),
        (("--json",), b"[\n"),
        (("--watch", "0.05", "--json"), b'[{"host": "node-0000", '),
        (("--watch", "0.05"), b"\n"),  # a blank line between frames in a pipe
    ],
)
def test_a_reader_that_goes_away_ends_gpu_fleet_quietly(
    env: dict[str, str], args: tuple[str, ...], first: bytes
) -> None:
    head_path = shutil.which("head")
    assert head_path, "head (coreutils) is missing"
    with manage(env, "gpu_fleet", *args) as fleet:
        assert fleet.stdout is not None and fleet.stderr is not None
        head = subprocess.Popen([head_path, "-1"], stdin=fleet.stdout, stdout=subprocess.PIPE)
        fleet.stdout.close()  # only head reads it now
        shown, _ = head.communicate(timeout=TIMEOUT_S)
        returncode = fleet.wait(timeout=TIMEOUT_S)
        stderr = fleet.stderr.read().decode()

    assert shown.startswith(first)
    assert head.returncode == 0
    assert (returncode, stderr) == (0, "")

"""``manage.py gpu_fleet | head -1``: a reader that goes away ends the command quietly
with status 0, as ``gpu_devices`` does, with and without ``--json`` and ``--watch``.

Real processes (tests/pipes.py): ``gpu_fleet`` on an SQLite file of 3,000 hosts (more
output than a pipe holds, so that the command is still writing when ``head`` exits),
piped to the system's ``head -1``."""

from __future__ import annotations

import pytest

from tests import pipes

HOSTS = 3000


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a central site whose database holds HOSTS hosts."""
    folder = tmp_path_factory.mktemp("pipe")
    env = pipes.environment(
        DJANGO_SETTINGS_MODULE="tests.fleet.pipe_settings",
        PIPE_DB=str(folder / "fleet.sqlite3"),
    )
    return pipes.filled(
        env,
        "from gpu_monitor.fleet.models import HostState\n"
        "from gpu_monitor.params import moment\n"
        "HostState.objects.bulk_create(HostState(host=f'node-{n:04}', epoch=0, "
        f"timestamp=moment(0), interval_seconds=10, devices=[]) for n in range({HOSTS}))",
    )


ENVELOPE = b'{"count":3000,"next":null,"previous":null,"results":[{"host":"node-0000",'


@pytest.mark.parametrize(
    ("args", "first"),
    [
        ((), b"0 up, 0 stale, 3000 down\n"),
        (("--json",), ENVELOPE),
        (("--watch", "0.05", "--json"), ENVELOPE),
        (("--watch", "0.05"), b"\n"),  # a blank line between frames in a pipe
    ],
)
def test_a_reader_that_goes_away_ends_gpu_fleet_quietly(
    env: dict[str, str], args: tuple[str, ...], first: bytes
) -> None:
    piped = pipes.into_head(env, "gpu_fleet", *args)

    assert piped.shown.startswith(first)
    assert piped.head_returncode == 0
    assert (piped.returncode, piped.stderr) == (0, "")

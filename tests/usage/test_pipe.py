"""``manage.py gpu_usage | head -1``: a reader that goes away ends the command quietly
with status 0, as ``gpu_devices`` and ``gpu_fleet`` do (issue 26 item 17).

Real processes (tests/pipes.py): ``gpu_usage`` on an SQLite file of 3,000 GPUs' usage
and holds (more output than a pipe holds, so that the command is still writing when
``head`` exits), piped to the system's ``head -1``; and the command with a stdout that
raises."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from gpu_monitor.usage.models import Usage
from tests import pipes

GPUS = 3000
NOW = 1_795_855_800  # 2026-11-28T08:50:00Z
WINDOW = ("--since", "2026-11-28", "--until", "2026-11-29")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The example project on an SQLite file holding GPUS GPUs' usage and idle holds."""
    folder = tmp_path_factory.mktemp("pipe")
    env = pipes.environment(
        DJANGO_SETTINGS_MODULE="example_project.settings",
        DJANGO_SQLITE_PATH=str(folder / "usage.sqlite3"),
    )
    return pipes.filled(
        env,
        "import time\n"
        "from gpu_monitor.usage.models import Hold, Usage\n"
        f"Usage.objects.bulk_create(Usage(host=f'node-{{n:04}}', gpu_uuid=f'GPU-{{n}}', "
        f"gpu_index=n % 8, user='alice', period={NOW}, seconds_held=300, "
        f"first_epoch={NOW + 10}, last_epoch={NOW + 300}) for n in range({GPUS}))\n"
        "now = int(time.time())\n"
        "Hold.objects.bulk_create(Hold(host=f'node-{n:04}', gpu_uuid=f'GPU-{n}', "
        "gpu_index=n % 8, user='alice', held_since=now - 7200, idle_since=now - 7200, "
        f"last_epoch=now, interval_seconds=3600) for n in range({GPUS}))",
    )


@pytest.mark.parametrize(
    ("args", "first"),
    [
        ((*WINDOW, "--by", "gpu"), b"GPU usage by gpu, 2026-11-28 00:00 to 2026-11-29 00:00 UTC\n"),
        ((*WINDOW, "--by", "gpu", "--csv"), b"host,gpu_index,gpu_uuid,gpu_hours,"),
        ((*WINDOW, "--by", "gpu", "--json"), b'{"since":"2026-11-28T00:00:00Z",'),
        (("--idle",), b"3000 GPU(s) held with every sample idle for 60 min or more (UTC)\n"),
    ],
)
def test_a_reader_that_goes_away_ends_gpu_usage_quietly(
    env: dict[str, str], args: tuple[str, ...], first: bytes
) -> None:
    piped = pipes.into_head(env, "gpu_usage", *args)

    assert piped.shown.startswith(first)
    assert piped.head_returncode == 0
    assert (piped.returncode, piped.stderr) == (0, "")


class GoneReader(io.StringIO):
    """A stdout whose reader went away after ``lines`` writes."""

    def __init__(self, lines: int) -> None:
        super().__init__()
        self.lines = lines

    def write(self, text: str) -> int:
        if self.lines <= 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.lines -= 1
        return super().write(text)


@pytest.mark.django_db
@pytest.mark.parametrize("lines", [0, 1, 3])
def test_a_broken_pipe_at_any_line_ends_the_command_without_an_error(lines: int) -> None:
    for n in range(5):
        Usage.objects.create(
            host="node-1", gpu_uuid=f"GPU-{n}", gpu_index=n, user="alice", period=NOW,
            seconds_held=300, first_epoch=NOW + 10, last_epoch=NOW + 300,
        )  # fmt: skip
    out = GoneReader(lines)

    call_command("gpu_usage", *WINDOW, "--by", "gpu", stdout=out, no_color=True)

    assert out.getvalue().count("\n") == lines

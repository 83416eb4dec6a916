"""``manage.py <command> | head -1`` in real processes, for the pipe tests of the commands
(tests/fleet/test_gpu_fleet_pipe.py, tests/usage/test_pipe.py): a database filled once
by ``manage.py shell``, then the command piped to the system's ``head -1``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 60


def environment(**variables: str) -> dict[str, str]:
    """This process's environment with the fake pynvml and the project on the path, plus
    ``variables`` (the settings module, its database file)."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
        **variables,
    }


def filled(env: dict[str, str], code: str) -> dict[str, str]:
    """``env`` after ``manage.py migrate`` and ``manage.py shell -c code`` ran in it."""
    for args in (("migrate", "-v0"), ("shell", "-v0", "-c", code)):
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


@dataclass(frozen=True)
class Piped:
    """What ``manage.py <command> | head -1`` gave: the line ``head`` showed, its
    status, and the command's status and stderr."""

    shown: bytes
    head_returncode: int
    returncode: int
    stderr: str


def into_head(env: dict[str, str], *args: str) -> Piped:
    """Run ``manage.py *args | head -1`` in ``env``: the command is still writing when
    ``head`` exits (its output is larger than a pipe holds)."""
    head_path = shutil.which("head")
    assert head_path, "head (coreutils) is missing"
    with subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as command:
        assert command.stdout is not None and command.stderr is not None
        head = subprocess.Popen([head_path, "-1"], stdin=command.stdout, stdout=subprocess.PIPE)
        command.stdout.close()  # only head reads it now
        shown, _ = head.communicate(timeout=TIMEOUT_S)
        returncode = command.wait(timeout=TIMEOUT_S)
        stderr = command.stderr.read().decode()
    return Piped(shown, head.returncode, returncode, stderr)

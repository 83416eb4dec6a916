"""Helpers the benchmark scripts share (run, startup, gpu_check import it from beside them)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def interleaved_wall_times(
    commands: dict[str, list[str]], runs: int, env: dict[str, str] | None = None
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Whole-process wall time of each command, ``runs`` times, in rounds that alternate
    between the commands so that machine noise spreads over all of them.

    A command that exits non-zero is left out of later rounds; the second dict gives the
    end of its stderr.
    """
    times: dict[str, list[float]] = {name: [] for name in commands}
    failures: dict[str, str] = {}
    for _ in range(runs):
        for name, cmd in commands.items():
            if name in failures:
                continue
            start = time.perf_counter()
            result = subprocess.run(
                cmd,
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=60,  # a hung tool fails the benchmark instead of stalling it
            )
            times[name].append(time.perf_counter() - start)
            if result.returncode != 0:
                failures[name] = result.stderr.decode(errors="replace")[-500:]
    return times, failures

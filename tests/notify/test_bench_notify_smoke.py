"""bench/notify.py still runs: 16 GPUs held idle by 4 users, two rounds, its table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_notify_benchmark_prints_its_table() -> None:
    result = subprocess.run(
        [sys.executable, "bench/notify.py", "--gpus=16", "--users=4", "--rounds=2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[:3] == ["## gpu_notify at scale (bench/notify.py)", "", "| measure | SQLite |"]
    cells = [line.strip("| ").split(" | ") for line in lines[4:]]
    rows = {name: value for name, value in cells}
    assert rows["GPUs held idle / users"] == "16 / 4"
    assert rows["first run: e-mails sent (one per user, and the digest)"] == "5"
    assert re.fullmatch(r"[0-9]+\.[0-9]{2}", rows["ratio with / without"])
    assert len(rows) == 7

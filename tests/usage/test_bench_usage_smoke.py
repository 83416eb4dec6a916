"""bench/usage.py still runs: one day on SQLite, two rounds, two ticks each way, its table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_usage_benchmark_prints_its_table() -> None:
    result = subprocess.run(
        [sys.executable, "bench/usage.py", "--quick", "--days=1", "--rounds=2", "--ticks=2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[:3] == ["## Usage at scale (bench/usage.py)", "", "| measure | SQLite |"]
    rows = {line.split(" | ")[0].strip("| *"): line.split(" | ")[1] for line in lines[4:]}
    assert rows["usage rows loaded (1 days x 8 GPUs x 20 users, 2 on a GPU a period)"].startswith(
        "4,608 in "  # 288 periods x 8 GPUs x 2 users
    )
    assert re.fullmatch(
        r"\*\*[0-9]+\.[0-9]{2}\*\* \|", rows["GET usage / its raw SQL: p50 ratio (target <= 1.5)"]
    )
    assert re.fullmatch(
        r"[0-9.]+ / [0-9.]+ \|",
        rows["recorder tick, 8 GPUs x 2 processes, usage writer on: p50 / p99 ms"],
    )
    assert len(rows) == 10

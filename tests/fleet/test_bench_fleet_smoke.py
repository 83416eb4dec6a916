"""bench/fleet.py keeps running: its smoke mode (20 hosts, 2 s of ingest, SQLite files)
goes through every step, including its own checks that GET hosts equals its raw-SQL
floor and that the history is the same with and without the other hosts' data."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_fleet_bench_runs_in_smoke_mode() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fleet.py"), "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    rows = dict(re.findall(r"^\| (.+?) \| (.+?) \|$", result.stdout, re.MULTILINE))
    assert rows["ingest: ticks written in s (ticks/s; samples/s)"].startswith("40 in 2 ")
    late = rows["ingest: ticks committed more than one interval after due; not written"]
    assert late.split(";")[1].strip() == "0"  # every tick written
    assert float(rows["GET hosts?page_size=1000 / floor (target <= 2)"]) > 0
    assert float(rows["history 20 hosts / 1 host: p50 ratio (target <= 1.2)"]) > 0

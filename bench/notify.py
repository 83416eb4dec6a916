"""gpu_notify at scale: one run over many idle-held GPUs, and what ``notified`` costs
``GET usage/idle``, on SQLite.

    .venv/bin/python bench/notify.py                  # 1,000 GPUs held idle by 100 users
    .venv/bin/python bench/notify.py --gpus 80 --users 10 --rounds 3

In a child process on a throwaway SQLite file (the settings of a recorder process,
tests.history.settings_process) with Django's in-memory test e-mail backend: the usage holds of
``--gpus`` GPUs (8 a host) held idle for two hours by ``--users`` users are loaded, then

- the first ``gpu_notify`` run (``notify.run.notify``): one e-mail per user and the
  digest, a row claimed and marked per GPU; the second run, with nothing new (it reads
  the holds and their notices, and sends nothing);
- ``GET usage/idle`` through Django's test client with the notify sub-app installed
  (``notified`` from one more query) and as without it (``usage.report.notices``
  answering None, as it does then: no query, ``notified`` null), in interleaved rounds,
  each first in turn: the ratio is the cost of the field.

The first run is timed once (it changes the database); the second run and the
requests are medians of ``--rounds``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
OPEN: dict[str, list[str]] = {"PROCESS_PERMISSION_CLASSES": [], "PERMISSION_CLASSES": []}


def measure(gpus: int, users: int, rounds: int) -> dict[str, Any]:
    """Runs in the child process (see main)."""
    import django

    django.setup()
    from django.core import mail
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import override_settings, setup_test_environment

    from gpu_monitor.notify.models import Notice
    from gpu_monitor.notify.run import notify
    from gpu_monitor.usage import report
    from gpu_monitor.usage.models import Hold

    setup_test_environment()  # Django's in-memory e-mail backend (mail.outbox)
    call_command("migrate", verbosity=0)
    now = int(time.time())
    Hold.objects.bulk_create(
        Hold(
            host=f"node-{n // 8:04d}", gpu_uuid=f"GPU-{n:08d}", gpu_index=n % 8,
            user=f"user-{n % users:03d}", held_since=now - 3 * 3600,
            idle_since=now - 2 * 3600, last_epoch=now - 5, interval_seconds=10,
            memory_mb=1024,
        )
        for n in range(gpus)
    )  # fmt: skip
    settings = {
        **OPEN,
        "NOTIFY_EMAIL_DOMAIN": "example.org",
        "NOTIFY_IDLE_MINUTES": 60,
    }
    with override_settings(
        GPU_MONITOR=settings,
        ADMINS=[("GPU admins", "gpu-admins@example.org")],
    ):
        began = time.perf_counter()
        first = notify(now=now)
        first_ms = 1000 * (time.perf_counter() - began)
        sent = len(mail.outbox)
        assert Notice.objects.filter(status="sent").count() == gpus, "a notice is missing"
        again: list[float] = []
        for _ in range(rounds):
            began = time.perf_counter()
            result = notify(now=now)
            again.append(1000 * (time.perf_counter() - began))
            assert not result.outcomes, "the second run told someone again"
        client = Client()
        times: dict[str, list[float]] = {"with": [], "without": []}
        for n in range(2 * rounds):
            installed = n % 4 in (0, 3)  # with, without, without, with: each first in turn
            began = time.perf_counter()
            if installed:
                response = client.get("/api/gpu/usage/idle", HTTP_ACCEPT="application/json")
            else:  # as without the app: no notices read, ``notified`` null
                with mock.patch.object(report, "notices", lambda episodes: None):
                    response = client.get("/api/gpu/usage/idle", HTTP_ACCEPT="application/json")
            times["with" if installed else "without"].append(1000 * (time.perf_counter() - began))
            assert response.status_code == 200, response.content[:300]
            assert len(response.json()["gpus"]) == gpus
    return {
        "gpus": gpus,
        "users": users,
        "emails": sent,
        "outcomes": len(first.outcomes),
        "first_ms": first_ms,
        "again_ms": statistics.median(again),
        "idle_with_ms": statistics.median(times["with"]),
        "idle_without_ms": statistics.median(times["without"]),
    }


def table(m: dict[str, Any]) -> str:
    ratio = m["idle_with_ms"] / m["idle_without_ms"]
    rows = [
        ("GPUs held idle / users", f"{m['gpus']:,} / {m['users']:,}"),
        ("first run: e-mails sent (one per user, and the digest)", f"{m['emails']:,}"),
        ("first run (ms)", f"{m['first_ms']:.0f}"),
        ("second run, nothing new (ms, p50)", f"{m['again_ms']:.1f}"),
        ("GET usage/idle with notify (ms, p50)", f"{m['idle_with_ms']:.1f}"),
        ("GET usage/idle without notify (ms, p50)", f"{m['idle_without_ms']:.1f}"),
        ("ratio with / without", f"{ratio:.2f}"),
    ]
    lines = ["## gpu_notify at scale (bench/notify.py)", "", "| measure | SQLite |", "|---|---|"]
    return "\n".join(lines + [f"| {name} | {value} |" for name, value in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", type=int, default=1000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.gpus, args.users, args.rounds)))
        return
    with tempfile.TemporaryDirectory(prefix="gpu-monitor-bench-notify-") as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
            "DJANGO_SETTINGS_MODULE": "tests.history.settings_process",
            "HISTORY_TEST_DB": str(Path(tmp) / "notify.sqlite3"),
        }
        options = [f"--gpus={args.gpus}", f"--users={args.users}", f"--rounds={args.rounds}"]
        result = subprocess.run(
            [sys.executable, __file__, "--measure", *options],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    if result.returncode != 0:
        raise SystemExit(f"the measurement failed:\n{result.stderr[-3000:]}")
    print(table(json.loads(result.stdout.strip().splitlines()[-1])))


if __name__ == "__main__":
    main()

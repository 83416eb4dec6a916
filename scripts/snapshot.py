"""Every answer of the app, one file per request or command, for a refactor to compare.

    .venv/bin/python scripts/snapshot.py OUT_DIR   (then: diff -r BEFORE AFTER)

A restructuring that keeps behaviour keeps these bytes: each API answer (as an admin
and anonymously), the OpenAPI document, the pages, the metrics, and the commands'
stdout and stderr, on the fake pynvml, with three hosts recorded at fixed times into a
throwaway SQLite database and the clock frozen (time-machine) while they are read.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "fakes")]
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

import time_machine  # noqa: E402

START = 1_796_000_000  # 2026-11-30, a fixed second


def main(out: Path) -> None:
    import django
    from django.conf import settings

    db = Path(tempfile.mkdtemp()) / "snapshot.sqlite3"
    settings.DATABASES["default"]["NAME"] = str(db)
    django.setup()

    import pynvml  # the fake: tests/fakes is first on sys.path
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from gpu_monitor import host as host_module
    from gpu_monitor import manager

    out.mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=0)
    User.objects.create_superuser("admin", "admin@example.com", "pw")

    def fresh(scenario: str, gpus: int) -> None:
        pynvml.configure(gpus=gpus, scenario=scenario)
        host_module.forget()
        manager._manager = None

    def command(name: str, *args: str, file: str) -> None:
        stdout, stderr = io.StringIO(), io.StringIO()
        try:
            call_command(name, *args, stdout=stdout, stderr=stderr)
            code = "0"
        except SystemExit as exc:
            code = f"exit {exc.code}"
        except Exception as exc:  # a CommandError: its message is part of the answer
            code = f"{type(exc).__name__}: {exc}"
        (out / f"cmd-{file}.txt").write_text(
            f"{code}\n--- stdout\n{stdout.getvalue()}--- stderr\n{stderr.getvalue()}"
        )

    with time_machine.travel(START, tick=False) as clock:
        # Three hosts, ten ticks each a minute apart, processes recorded.
        for step in range(10):
            for name, scenario, gpus in (
                ("node-a", "load", 2),
                ("node-b", "mig", 1),
                ("node-c", "healthy", 4),
            ):
                fresh(scenario, gpus)
                command(
                    "gpu_record",
                    "--once",
                    "--host",
                    name,
                    "--processes",
                    "--interval",
                    "60",
                    file=f"record-{name}-{step}",
                )
            clock.shift(60)
        fresh("lost", 2)  # a lost GPU: a problem, and events
        command("gpu_record", "--once", "--host", "node-d", "--interval", "60", file="record-lost")
        clock.shift(600)  # node-* are now stale: the states show

        admin, anonymous = Client(), Client()
        admin.force_login(User.objects.get(username="admin"))
        paths = [
            "devices",
            "devices/0",
            "devices/1",
            "devices/9",
            "devices/x",
            "devices/0/processes",
            "processes",
            "driver",
            "status",
            "metrics",
            "dashboard",
            "dashboard?format=json",
            "history",
            "history?window=1h",
            "history?window=24h&host=node-a",
            "history?window=1h&gpu=0&points=5",
            "history?window=1h&host=node-a",
            "hosts/node-d",
            "fleet/node-d",
            "history?window=bad",
            "events",
            "events?page=2",
            "events?host=node-b",
            "hosts",
            "hosts/node-a",
            "hosts/nope",
            "hosts/node-a/processes",
            "hosts/node-b/processes",
            "fleet",
            "fleet/node-a",
            "fleet/node-c",
            "usage",
            "usage?format=json",
            "usage?by=host&format=json",
            "usage?by=gpu&format=json",
            "usage?since=bad&format=json",
            "usage/idle",
            "usage/idle?minutes=1",
            "nothing",
            "devices/0/extra",
        ]
        for scenario, gpus in (("load", 2), ("mig", 1), ("lost", 2), ("no_nvml", 1)):
            fresh(scenario, gpus)
            for who, client in (("admin", admin), ("anon", anonymous)):
                for path in paths:
                    answer = client.get(f"/api/gpu/{path}", HTTP_ACCEPT="application/json")
                    body = answer.content.decode(errors="replace")
                    name = path.replace("/", "_").replace("?", "_Q_").replace("&", "_A_")
                    (out / f"api-{scenario}-{who}-{name}.txt").write_text(
                        f"{answer.status_code} {answer.get('Content-Type')}\n{body}"
                    )
            fresh(scenario, gpus)
            for args in (
                [],
                ["--json"],
                ["--wide"],
                ["-p"],
                ["-p", "--full-command"],
                ["--index", "1"],
                ["--index", "7"],
            ):
                command("gpu_devices", *args, file=f"devices-{scenario}-{'_'.join(args)}")
        for page in ("dashboard", "fleet", "fleet/node-b", "usage"):
            answer = admin.get(f"/api/gpu/{page}", HTTP_ACCEPT="text/html")
            (out / f"page-{page.replace('/', '_')}.html").write_text(answer.content.decode())
        schema = admin.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        (out / "openapi.json").write_text(schema.content.decode())
        for args in ([], ["--json"]):
            command("gpu_fleet", *args, file=f"fleet-{'_'.join(args)}")
        for args in (
            [],
            ["--json"],
            ["--csv"],
            ["--by", "host"],
            ["--by", "gpu"],
            ["--idle"],
            ["--idle", "--json"],
            ["--since", "bad"],
        ):
            command("gpu_usage", *args, file=f"usage-{'_'.join(args)}")
        command("gpu_history_maintain", "--dry-run", "--retention", "5m", file="maintain")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

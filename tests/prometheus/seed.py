"""Migrates an example server's database and records XID events and holds in it, for the
real-Prometheus test: ``python -m tests.prometheus.seed SEED_JSON``, with the server's
environment (``DJANGO_SETTINGS_MODULE``, ``DJANGO_SQLITE_PATH``).

SEED_JSON: ``{"xids": [[gpu, xid, seconds ago], ...], "holds": [[gpu, user, idle
minutes or null], ...]}``, all of this host (the name the collectors read on a node).
"""

from __future__ import annotations

import json
import socket
import sys
import time
from datetime import datetime, timezone


def main(seed: dict[str, list[list[object]]]) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    from gpu_monitor.history.models import Event
    from gpu_monitor.usage.models import Hold

    call_command("migrate", verbosity=0)
    host, now = socket.gethostname(), int(time.time())
    for gpu, xid, ago in seed["xids"]:
        epoch = now - int(str(ago))
        Event.objects.create(
            host=host,
            gpu_uuid=f"GPU-{gpu}",
            gpu_index=gpu,
            epoch=epoch,
            timestamp=datetime.fromtimestamp(epoch, timezone.utc),
            kind=Event.Kind.XID,
            xid=xid,
        )
    for gpu, user, minutes in seed["holds"]:
        Hold.objects.create(
            host=host,
            gpu_uuid=f"GPU-{gpu}",
            gpu_index=gpu,
            user=user,
            held_since=now - 7200,
            idle_since=None if minutes is None else now - int(str(minutes)) * 60,
            last_epoch=now,
            interval_seconds=3600,  # seen at the last tick for the whole test
        )


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))

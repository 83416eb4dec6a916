"""How often each idle episode's holder was told: the usage page's "notified 2x, last
3 h ago". A public function for the usage sub-app, which imports it only while
``gpu_monitor.notify`` is installed."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import router
from django.db.models import Count, Max, Q

from gpu_monitor.notify.models import Notice

Episode = tuple[str, str, str, int]  # host, gpu_uuid, user, idle_since (Unix seconds)


def notified(
    episodes: Iterable[Episode], using: str | None = None
) -> dict[Episode, tuple[int, int]]:
    """``{episode: (steps sent, Unix seconds of the last)}`` for each episode of
    ``episodes`` whose holder was told at least once (a step counts once, whatever the
    channels it went through); an episode never told is absent. One query."""
    wanted = list(episodes)
    if not wanted:
        return {}
    match = Q()
    for host, gpu_uuid, user, idle_since in wanted:
        match |= Q(host=host, gpu_uuid=gpu_uuid, user=user, idle_since=idle_since)
    rows = (
        Notice.objects.using(using or router.db_for_read(Notice))
        .filter(match, status=Notice.Status.SENT)
        .order_by()
        .values("host", "gpu_uuid", "user", "idle_since")
        .annotate(steps=Count("step", distinct=True), last=Max("sent"))
    )
    return {
        (row["host"], row["gpu_uuid"], row["user"], row["idle_since"]): (row["steps"], row["last"])
        for row in rows
    }

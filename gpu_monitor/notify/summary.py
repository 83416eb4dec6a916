"""How often each idle episode's holder was told: the usage page's "notified 2x, last
3 h ago". A public function for the usage sub-app, which imports it only while
``gpu_monitor.notify`` is installed."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import router
from django.db.models import Count, Max

from gpu_monitor.notify.models import Notice

Episode = tuple[str, str, str, int]  # host, gpu_uuid, user, idle_since (Unix seconds)


def notified(
    episodes: Iterable[Episode], using: str | None = None
) -> dict[Episode, tuple[int, int]]:
    """``{episode: (steps sent, Unix seconds of the last)}`` for each episode of
    ``episodes`` whose holder was told at least once (a step counts once, whatever the
    channels it went through); an episode never told is absent. One query, of the
    episodes that began since the oldest asked about (an OR per episode would pass
    SQLite's expression depth limit with a thousand), matched here."""
    wanted = set(episodes)
    if not wanted:
        return {}
    rows = (
        Notice.objects.using(using or router.db_for_read(Notice))
        .filter(idle_since__gte=min(episode[3] for episode in wanted), status=Notice.Status.SENT)
        .order_by()
        .values_list("host", "gpu_uuid", "user", "idle_since")
        .annotate(steps=Count("step", distinct=True), last=Max("sent"))
    )
    found: dict[Episode, tuple[int, int]] = {}
    for host, gpu_uuid, user, idle_since, steps, last in rows:
        if (host, gpu_uuid, user, idle_since) in wanted:
            found[(host, gpu_uuid, user, idle_since)] = (steps, last)
    return found

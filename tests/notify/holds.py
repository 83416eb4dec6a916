"""Usage holds seeded as the recorder leaves them, for the notify run's tests: a GPU held
idle since ``idle_since``, seen at the last tick before ``NOW``."""

from __future__ import annotations

from gpu_monitor.history.models import Sample
from gpu_monitor.params import moment
from gpu_monitor.usage.models import Hold

NOW = 1_795_855_800
HOUR = 3600
UUID = "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772"


def hold(
    user: str = "alice",
    host: str = "node-1",
    gpu: int = 0,
    idle_for: int = 2 * HOUR,
    at: int = NOW,
    memory_mb: int = 1024,
    uuid: str | None = None,
) -> Hold:
    """A hold of ``host``'s GPU ``gpu`` by ``user``, idle for ``idle_for`` seconds at
    ``at`` and seen at ``at`` (a tick of 10 s)."""
    return Hold.objects.create(
        host=host,
        gpu_uuid=uuid or f"{UUID[:-2]}{gpu:02d}",
        gpu_index=gpu,
        user=user,
        held_since=at - idle_for - HOUR,
        idle_since=at - idle_for,
        last_epoch=at,
        interval_seconds=10,
        memory_mb=memory_mb,
    )


def seen(held: Hold, at: int) -> None:
    """The recorder's tick at ``at`` found ``held`` still idle."""
    Hold.objects.filter(pk=held.pk).update(last_epoch=at)


def sample(held: Hold, name: str, at: int = NOW) -> None:
    """A sample of ``held``'s GPU at ``at`` naming its model."""
    Sample.objects.create(
        host=held.host,
        gpu_uuid=held.gpu_uuid,
        gpu_index=held.gpu_index,
        name=name,
        epoch=at,
        timestamp=moment(at),
    )

"""gpu_history_maintain prunes the notices (the notify sub-app's ``maintenance``): those
claimed more than USAGE_RETENTION days ago, except an episode's still held idle."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command

from gpu_monitor.notify.models import Notice
from gpu_monitor.notify.run import prune_notices
from gpu_monitor.usage.models import Hold
from tests.notify.holds import NOW, hold

pytestmark = pytest.mark.django_db
DAY = 86400


def notice(held: Hold, created: int, idle_since: int | None = None) -> Notice:
    return Notice.objects.create(
        host=held.host,
        gpu_uuid=held.gpu_uuid,
        gpu_index=held.gpu_index,
        user=held.user,
        idle_since=held.idle_since if idle_since is None else idle_since,
        step=0,
        channel="email",
        status="sent",
        created=created,
        sent=created,
    )


def test_old_notices_go_those_of_an_episode_still_idle_stay(settings: Any) -> None:
    settings.GPU_MONITOR = {"USAGE_RETENTION": 10}
    held = hold(idle_for=20 * DAY)
    still_idle = notice(held, NOW - 11 * DAY)
    notice(held, NOW - 11 * DAY, idle_since=NOW - 30 * DAY)  # an episode over
    recent = notice(held, NOW - 9 * DAY, idle_since=NOW - 29 * DAY)

    said = prune_notices(NOW, "default")

    assert said == "notify: deleted 1 notice(s) older than 10 day(s)"
    assert sorted(Notice.objects.values_list("pk", flat=True)) == [still_idle.pk, recent.pk]


def test_an_ended_hold_s_old_notices_go(settings: Any) -> None:
    settings.GPU_MONITOR = {"USAGE_RETENTION": 10}
    held = hold(idle_for=20 * DAY)
    notice(held, NOW - 11 * DAY)
    Hold.objects.filter(pk=held.pk).update(ended_epoch=NOW - DAY)

    assert prune_notices(NOW, "default").startswith("notify: deleted 1 notice(s)")
    assert not Notice.objects.exists()


def test_gpu_history_maintain_runs_it() -> None:
    out = io.StringIO()

    call_command("gpu_history_maintain", stdout=out)

    assert "notify: deleted 0 notice(s) older than 400 day(s)" in out.getvalue()

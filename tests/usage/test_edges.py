"""The usage report and the holds at their exact edges (issue 26, items 9, 11, 12): the
end of a window, the default start of a window, a hold's gap, the total's first and last
tick. The expected numbers are worked out by hand in the comments."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from gpu_monitor.params import iso
from gpu_monitor.usage.models import Hold, Usage
from gpu_monitor.usage.report import idle_now, usage_report
from tests.usage.conftest import NOW, Script

pytestmark = pytest.mark.django_db
OPEN = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
DAY = 86400


def row(user: str, period: int, held: int, *, first: int = 10, last: int = 300) -> None:
    Usage.objects.create(
        host="node-1",
        gpu_uuid="GPU-00000000",
        gpu_index=0,
        user=user,
        period=period,
        seconds_held=held,
        first_epoch=period + first,
        last_epoch=period + last,
    )


def hours(since: int, until: int) -> float:
    total: float = usage_report(since=since, until=until, by="user")["total"]["gpu_hours"]
    return total


def test_adjacent_windows_add_up_to_the_whole() -> None:
    # Three periods of 288, 216 and 144 s held (0.08, 0.06 and 0.04 h): [P0, P1) holds
    # P0 only, [P1, P3) the other two; a window ending on a period's start leaves it out.
    p0, p1, p2, p3 = NOW, NOW + 300, NOW + 600, NOW + 900
    row("alice", p0, 288)
    row("alice", p1, 216)
    row("alice", p2, 144)

    assert hours(p0, p1) == 0.08
    assert hours(p1, p3) == 0.1
    assert hours(p0, p3) == 0.18
    assert hours(p0, p1 + 1) == 0.14  # a second into P1: P1 is in


@override_settings(GPU_MONITOR=OPEN)
def test_the_apis_default_since_is_7_days_before_until() -> None:
    until = NOW - 30 * DAY
    row("in", until - 7 * DAY, 60)  # the window's first period
    row("out", until - 7 * DAY - 300, 60)  # the period before it

    body = Client().get("/api/gpu/usage", {"until": iso(until)}).json()

    assert (body["since"], body["until"]) == (iso(until - 7 * DAY), iso(until))
    assert [r["user"] for r in body["rows"]] == ["in"]


def test_gpu_usages_default_since_is_7_days_before_until() -> None:
    # --until 2026-10-29T08:50 (NOW less 30 days): since 2026-10-22T08:50, whatever now is.
    until = NOW - 30 * DAY
    row("in", until - 7 * DAY, 60)
    row("out", until - 7 * DAY - 300, 60)
    out = io.StringIO()

    call_command("gpu_usage", "--until", "2026-10-29T08:50", "--json", stdout=out)

    body = json.loads(out.getvalue())
    assert (body["since"], body["until"]) == ("2026-10-22T08:50:00Z", "2026-10-29T08:50:00Z")
    assert iso(until) == "2026-10-29T08:50:00Z"
    assert [r["user"] for r in body["rows"]] == ["in"]


def test_gpu_usage_with_since_equal_to_until_exits_2_as_the_apis_400() -> None:
    same = "2026-11-28T08:00"
    with pytest.raises(CommandError, match=r"^--since must be before --until") as raised:
        call_command("gpu_usage", "--since", same, "--until", same, stdout=io.StringIO())

    assert raised.value.returncode == 2
    with override_settings(GPU_MONITOR=OPEN):
        response = Client().get("/api/gpu/usage", {"since": same, "until": same})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("since: must be before until")


def test_the_totals_first_and_last_seen_are_over_every_row_not_the_top_ones() -> None:
    # alice has the most hours (the top row), from P1+10 to P1+300; bob was seen first
    # (P0+20) and last (P5+290).
    p0 = NOW
    row("alice", p0 + 300, 300)
    row("bob", p0, 30, first=20, last=50)
    row("bob", p0 + 1500, 30, first=100, last=290)

    body = usage_report(since=p0, until=p0 + 1800, by="user")

    assert [r["user"] for r in body["rows"]] == ["alice", "bob"]
    assert body["rows"][0]["first_seen"] == iso(p0 + 310)
    assert body["total"]["first_seen"] == iso(p0 + 20)
    assert body["total"]["last_seen"] == iso(p0 + 1790)
    assert body["total"]["gpu_hours"] == round(360 / 3600, 3)  # 0.1


def test_a_gap_of_exactly_3_intervals_continues_the_hold_and_one_more_ends_it(
    script: Script,
) -> None:
    script.users[0] = [("alice", 100)]
    script.utilization(0, 50)
    script.tick(3)  # NOW+10, +20, +30: held since NOW (the first tick less its interval)
    script.skip(2)
    script.tick()  # NOW+60: 30 s, 3 intervals, after the last tick

    hold = Hold.objects.get()
    assert (hold.held_since, hold.last_epoch, hold.ended_epoch) == (NOW, NOW + 60, None)

    script.skip(3)
    script.tick()  # NOW+100: 40 s after the last tick, more than 3 intervals: a new hold

    hold = Hold.objects.get()
    assert (hold.held_since, hold.last_epoch) == (NOW + 90, NOW + 100)


@pytest.mark.parametrize(("interval", "listed"), [(10, 30), (60, 180)])
def test_idle_lists_a_hold_last_seen_exactly_3_intervals_ago_and_not_one_second_more(
    interval: int, listed: int
) -> None:
    # The same rule as the writer's gap: a hold is held now while its last tick is at
    # most 3 of its intervals old (30 s for 10 s ticks, 180 s for 60 s ticks).
    at = NOW
    for user, age in (("seen", listed), ("gone", listed + 1)):
        Hold.objects.create(
            host=f"node-{interval}s",
            gpu_uuid=f"GPU-{user}",
            gpu_index=0 if user == "seen" else 1,
            user=user,
            held_since=at - 7200,
            idle_since=at - 7200,
            last_epoch=at - age,
            interval_seconds=interval,
        )

    body = idle_now(minutes=60, now=at)

    assert [g["user"] for g in body["gpus"]] == ["seen"]

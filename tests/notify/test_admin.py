"""The notices' admin page: every notice newest first, filters by status and channel, a
search by user and host; it changes nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from gpu_monitor.notify.models import Notice

pytestmark = pytest.mark.django_db
URL = "/admin/gpu_monitor_notify/notice/"


def notice(user: str, created: int, status: str, channel: str = "email") -> Notice:
    return Notice.objects.create(
        host="node-1",
        gpu_uuid=f"GPU-{user}",
        gpu_index=3,
        user=user,
        idle_since=created - 7200,
        step=1,
        channel=channel,
        address=f"{user}@example.org",
        status=status,
        error="SMTP 550" if status == "failed" else "",
        created=created,
    )


def test_lists_every_notice_newest_first_with_its_columns(admin_client: Client) -> None:
    notice("alice", 1_795_855_800, "sent")
    notice("bob", 1_795_859_400, "failed")

    page = admin_client.get(URL).content.decode()

    assert page.index("bob@example.org") < page.index("alice@example.org")
    for text in ("2026-11-28T09:50:00Z", "SMTP 550", "failed", "node-1", ">3<", ">1<"):
        assert text in page


def test_filters_and_search(admin_client: Client) -> None:
    notice("alice", 1_795_855_800, "sent")
    notice("bob", 1_795_859_400, "failed", channel="webhook")

    failed = admin_client.get(URL, {"status__exact": "failed"}).content.decode()
    email = admin_client.get(URL, {"channel__exact": "email"}).content.decode()
    searched = admin_client.get(URL, {"q": "alice"}).content.decode()

    assert "bob@example.org" in failed and "alice@example.org" not in failed
    assert "alice@example.org" in email and "bob@example.org" not in email
    assert "alice@example.org" in searched and "bob@example.org" not in searched


def test_changes_nothing(admin_client: Client) -> None:
    row = notice("alice", 1_795_855_800, "sent")

    assert admin_client.get(f"{URL}add/").status_code == 403
    assert admin_client.post(f"{URL}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Notice.objects.count() == 1


def test_a_long_error_is_cut_in_the_list_and_whole_on_hover(admin_client: Client) -> None:
    row = notice("bob", 1_795_859_400, "failed")
    row.error = "SMTP 451 " + "x" * 200
    row.save()

    page = admin_client.get(URL).content.decode()

    assert f'title="SMTP 451 {"x" * 200}"' in page
    assert f">SMTP 451 {'x' * 50}…</span>" in page

"""The notify run (``gpu_monitor.notify.run.notify``) over seeded usage holds, with a fixed
``now``: who is told, when again, when never more; what is recorded; the digest."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core import mail
from django.test import override_settings

from gpu_monitor.notify import channels
from gpu_monitor.notify.models import Notice
from gpu_monitor.notify.run import notify
from gpu_monitor.usage.models import Hold
from tests.notify.conftest import Webhook
from tests.notify.holds import HOUR, NOW, hold, sample, seen

pytestmark = pytest.mark.django_db
ALICE = {"NOTIFY_ADDRESSES": {"alice": "alice@example.org"}, "NOTIFY_IDLE_MINUTES": 60}
ADMINS = [("GPU admins", "gpu-admins@example.org")]


@pytest.fixture(autouse=True)
def settings_for_notify(settings: Any) -> None:
    settings.GPU_MONITOR = dict(ALICE)
    settings.ADMINS = ADMINS


def to(address: str) -> list[Any]:
    return [m for m in mail.outbox if m.to == [address]]


def test_a_gpu_idle_for_the_minutes_gives_one_e_mail_listing_host_gpu_and_idle_time() -> None:
    sample(hold(idle_for=2 * HOUR + 5 * 60), "NVIDIA H100 80GB HBM3")

    result = notify(now=NOW)

    (message,) = to("alice@example.org")
    assert "node-1" in message.subject
    assert "host node-1 GPU 0 (NVIDIA H100 80GB HBM3)" in message.body
    assert "(2 h 5 min)" in message.body
    assert "1,024 MiB held" in message.body
    assert [(o.user, o.channel, o.ok) for o in result.outcomes] == [("alice", "email", True)]
    row = Notice.objects.get()
    assert (row.user, row.step, row.channel, row.status, row.sent) == (
        "alice",
        0,
        "email",
        "sent",
        NOW,
    )
    assert row.address == "alice@example.org"


def test_a_gpu_idle_for_less_than_the_minutes_is_not_told() -> None:
    hold(idle_for=59 * 60)

    assert notify(now=NOW).outcomes == []
    assert mail.outbox == []
    assert not Notice.objects.exists()


def test_none_takes_usage_idle_minutes(settings: Any) -> None:
    settings.GPU_MONITOR = {**ALICE, "NOTIFY_IDLE_MINUTES": None, "USAGE_IDLE_MINUTES": 30}
    hold(idle_for=31 * 60)

    assert len(notify(now=NOW).outcomes) == 1


def test_one_message_per_person_lists_all_their_idle_gpus(settings: Any) -> None:
    settings.GPU_MONITOR = {**ALICE, "NOTIFY_EMAIL_DOMAIN": "example.org"}
    hold(gpu=0)
    hold(gpu=1)
    hold(host="node-2", gpu=3)
    hold(user="bob", gpu=2)

    notify(now=NOW)

    (alice,) = to("alice@example.org")
    (bob,) = to("bob@example.org")
    for line in ("host node-1 GPU 0", "host node-1 GPU 1", "host node-2 GPU 3"):
        assert line in alice.body
    assert "host node-1 GPU 2" in bob.body and "GPU 0" not in bob.body
    assert Notice.objects.filter(user="alice").count() == 3


def test_reminders_after_the_repeat_at_most_max_reminders_then_nothing() -> None:
    held = hold()
    repeat = 14400
    sent = []
    for at in (NOW, NOW + 60, NOW + repeat - 1, NOW + repeat, NOW + 2 * repeat, NOW + 3 * repeat):
        seen(held, at)
        mail.outbox.clear()
        notify(now=at)
        sent.append(len(to("alice@example.org")))

    # first notice; nothing within the repeat; reminder 1; reminder 2; no third
    assert sent == [1, 0, 0, 1, 1, 0]
    steps = Notice.objects.order_by("step").values_list("step", "sent")
    assert list(steps) == [(0, NOW), (1, NOW + repeat), (2, NOW + 2 * repeat)]


def test_a_reminder_says_it_is_one() -> None:
    held = hold()
    notify(now=NOW)
    seen(held, NOW + 14400)
    mail.outbox.clear()

    notify(now=NOW + 14400)

    (message,) = mail.outbox[:1]
    assert message.subject.startswith("[GPU monitor] Reminder 1 of 2")


def test_an_episode_that_ends_and_starts_again_is_a_new_one() -> None:
    held = hold()
    notify(now=NOW)
    # busy for a while, then idle again from NOW + 600: a new idle_since
    Hold.objects.filter(pk=held.pk).update(idle_since=NOW + 600, last_epoch=NOW + 600 + HOUR)
    mail.outbox.clear()

    notify(now=NOW + 600 + HOUR)

    assert len(to("alice@example.org")) == 1
    assert sorted(Notice.objects.values_list("idle_since", "step")) == [
        (NOW - 2 * HOUR, 0),
        (NOW + 600, 0),
    ]


def test_a_hold_that_ended_is_not_told() -> None:
    held = hold()
    Hold.objects.filter(pk=held.pk).update(ended_epoch=NOW)

    assert notify(now=NOW).outcomes == []


def test_excluded_and_unknown_users_are_never_told_and_listed_as_excluded(settings: Any) -> None:
    settings.GPU_MONITOR = {**ALICE, "NOTIFY_EXCLUDE": ["root"], "NOTIFY_EMAIL_DOMAIN": "x.org"}
    hold(user="root")
    hold(user="unknown", gpu=1)

    result = notify(now=NOW)

    assert result.outcomes == [] and mail.outbox == []
    assert result.excluded == ["root", "unknown"]
    assert [h.user for h in result.idle] == ["root", "unknown"]


def test_a_user_with_no_address_is_in_the_digest_and_recorded_once() -> None:
    hold(user="bob")

    result = notify(now=NOW)

    (digest,) = mail.outbox
    assert digest.to == ["gpu-admins@example.org"]
    assert "bob" in digest.body and "no address" in digest.body
    assert [(o.user, o.ok, o.address) for o in result.outcomes] == [("bob", False, "")]
    assert result.ok  # nobody to send to is not a failed send
    row = Notice.objects.get()
    assert (row.status, row.error.startswith("no address: ")) == ("no_address", True)
    mail.outbox.clear()
    assert notify(now=NOW + 20).outcomes == [] and mail.outbox == []  # nothing new


def test_the_digest_lists_every_idle_gpu_and_whom_it_told() -> None:
    hold()
    hold(user="bob", gpu=1)

    result = notify(now=NOW)

    (digest,) = to("gpu-admins@example.org")
    assert "alice" in digest.body and "bob" in digest.body
    assert result.digest_to == ["gpu-admins@example.org"]


def test_a_run_with_nothing_new_sends_nothing_not_even_a_digest() -> None:
    held = hold()
    notify(now=NOW)
    seen(held, NOW + 300)
    mail.outbox.clear()

    result = notify(now=NOW + 300)

    assert (result.outcomes, mail.outbox, result.digest_to) == ([], [], [])


def test_no_admins_is_said_not_an_error(settings: Any) -> None:
    settings.ADMINS = []
    hold()

    result = notify(now=NOW)

    assert (result.no_admins, result.ok, len(mail.outbox)) == (True, True, 1)


def test_a_failed_send_is_recorded_retried_by_the_next_run_and_others_still_sent(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.GPU_MONITOR = {**ALICE, "NOTIFY_ADDRESSES": {"alice": "a@x.org", "bob": "b@x.org"}}
    alice = hold()
    hold(user="bob", gpu=1)
    real = channels.send_email

    def refuse_alice(addresses: list[str], message: Any) -> None:
        if addresses == ["a@x.org"]:
            raise channels.SendError("SMTP 550 mailbox unavailable")
        real(addresses, message)

    monkeypatch.setattr(channels, "send_email", refuse_alice)
    result = notify(now=NOW)

    assert [(o.user, o.ok, o.error) for o in result.failed] == [
        ("alice", False, "SMTP 550 mailbox unavailable")
    ]
    assert not result.ok
    assert len(to("b@x.org")) == 1
    assert Notice.objects.get(user="alice").status == "failed"
    monkeypatch.setattr(channels, "send_email", real)
    mail.outbox.clear()
    seen(alice, NOW + 60)

    again = notify(now=NOW + 60)

    assert [(o.user, o.ok) for o in again.outcomes] == [("alice", True)]
    assert Notice.objects.get(user="alice").status == "sent"
    assert len(to("a@x.org")) == 1 and to("b@x.org") == []


def test_a_row_stuck_at_sending_is_never_sent(settings: Any) -> None:
    held = hold()
    Notice.objects.create(
        host="node-1",
        gpu_uuid=held.gpu_uuid,
        gpu_index=0,
        user="alice",
        idle_since=held.idle_since,
        step=0,
        channel="email",
        created=NOW,
    )

    for at in (NOW, NOW + 14400):
        seen(held, at)
        assert notify(now=at).outcomes == []
    assert mail.outbox == []


def test_dry_run_records_and_sends_nothing(settings: Any, webhook: Webhook) -> None:
    settings.GPU_MONITOR = {**ALICE, "NOTIFY_WEBHOOK_URL": webhook.url}
    hold()
    hold(user="bob", gpu=1)

    result = notify(now=NOW, dry_run=True)

    assert [(o.user, o.channel, o.ok) for o in result.outcomes] == [
        ("alice", "email", True),
        ("bob", "email", False),
        ("alice", "webhook", True),
        ("bob", "webhook", True),
    ]
    assert (mail.outbox, webhook.received, Notice.objects.count()) == ([], [], 0)


def test_the_webhook_gets_each_persons_json_and_its_own_rows(
    settings: Any, webhook: Webhook
) -> None:
    settings.GPU_MONITOR = {**ALICE, "NOTIFY_WEBHOOK_URL": webhook.url}
    sample(hold(), "NVIDIA A100")
    hold(user="bob", gpu=1)

    notify(now=NOW)

    bodies = [r.body for r in webhook.received]
    assert [b["user"] for b in bodies] == ["alice", "bob"]
    (gpu,) = bodies[0]["gpus"]
    assert gpu == {
        "host": "node-1",
        "gpu_index": 0,
        "gpu_uuid": gpu["gpu_uuid"],
        "model": "NVIDIA A100",
        "idle_since": "2026-11-28T06:50:00Z",
        "idle_minutes": 120,
        "memory_mb": 1024,
        "step": 0,
        "due": True,
    }
    assert "node-1" in bodies[0]["text"]
    address = f"127.0.0.1:{webhook.url.split(':')[2].split('/')[0]}"
    rows = Notice.objects.filter(channel="webhook").values_list("user", "address", "status")
    assert sorted(rows) == [("alice", address, "sent"), ("bob", address, "sent")]


@pytest.mark.parametrize("fault", ["hang", "500"])
def test_a_broken_webhook_costs_at_most_its_timeout_twice_and_leaves_the_e_mails_sent(
    settings: Any, webhook: Webhook, fault: str
) -> None:
    settings.GPU_MONITOR = {
        **ALICE,
        "NOTIFY_WEBHOOK_URL": webhook.url,
        "NOTIFY_WEBHOOK_TIMEOUT": 0.3,
        "NOTIFY_ADDRESSES": {"alice": "a@x.org", "bob": "b@x.org"},
    }
    if fault == "hang":
        webhook.hang()
    else:
        webhook.answer(500, 500, 500, 500)
    hold()
    hold(user="bob", gpu=1)

    started = time.monotonic()
    result = notify(now=NOW)

    assert time.monotonic() - started < 2 * 0.3 + 0.5
    assert len(to("a@x.org")) == 1 and len(to("b@x.org")) == 1
    assert [(o.user, o.channel) for o in result.failed] == [
        ("alice", "webhook"),
        ("bob", "webhook"),
    ]
    assert len(webhook.received) == 2  # alice's, and its one retry; bob's not tried
    assert Notice.objects.get(channel="webhook").status == "failed"
    assert "not tried" in result.failed[1].error
    assert len(to("gpu-admins@example.org")) == 1


@override_settings(GPU_MONITOR={"NOTIFY_ADDRESSES": {"alice": "alice@example.org"}})
def test_a_django_user_s_e_mail_comes_first(django_user_model: Any) -> None:
    django_user_model.objects.create(username="alice", email="alice@lab.example.org")
    hold()

    notify(now=NOW)

    assert len(to("alice@lab.example.org")) == 1


def test_a_thousand_idle_gpus_in_one_message_and_nothing_new_after() -> None:
    # The run reads the episodes' notices in one query: an OR per episode would pass
    # SQLite's expression depth limit here.
    Hold.objects.bulk_create(
        Hold(
            host=f"node-{n // 8}", gpu_uuid=f"GPU-{n:08d}", gpu_index=n % 8, user="alice",
            held_since=NOW - 3 * HOUR, idle_since=NOW - 2 * HOUR, last_epoch=NOW,
            interval_seconds=10, memory_mb=1024,
        )
        for n in range(1200)
    )  # fmt: skip

    notify(now=NOW)
    again = notify(now=NOW + 60)

    (message,) = to("alice@example.org")
    assert message.body.count("idle since") == 1200
    assert Notice.objects.filter(status="sent").count() == 1200
    assert again.outcomes == []


def test_a_bare_uid_is_never_told(settings: Any) -> None:
    # A container's user with no name here: uid@domain may be someone else's mailbox.
    settings.GPU_MONITOR = {**ALICE, "NOTIFY_EMAIL_DOMAIN": "x.org"}
    hold(user="1001")

    result = notify(now=NOW)

    assert (result.outcomes, mail.outbox, result.excluded) == ([], [], ["1001"])


def test_a_message_lists_the_persons_other_idle_gpus_as_told_before() -> None:
    first = hold(gpu=0)
    notify(now=NOW)
    hold(gpu=1, idle_for=HOUR + 600, at=NOW + 600)
    seen(first, NOW + 600)
    mail.outbox.clear()

    notify(now=NOW + 600)

    (message,) = to("alice@example.org")
    assert "You hold 2 GPUs that have been idle" in message.body
    assert "host node-1 GPU 0, idle since" in message.body
    gpu0 = next(line for line in message.body.splitlines() if "GPU 0," in line)
    gpu1 = next(line for line in message.body.splitlines() if "GPU 1," in line)
    assert gpu0.endswith("(told before)") and not gpu1.endswith("(told before)")
    rows = Notice.objects.filter(user="alice").order_by("gpu_index")
    assert [(row.gpu_index, row.step) for row in rows] == [(0, 0), (1, 0)]  # GPU 0: no new row


def test_the_digest_counts_gpus_not_holders() -> None:
    hold(user="alice", gpu=0)
    hold(user="bob", gpu=0)  # the same GPU

    notify(now=NOW)

    (digest,) = to("gpu-admins@example.org")
    assert "1 idle GPU held by 2 users" in digest.subject
    assert "GPUs held idle at" in digest.body and ": 1\n" in digest.body


def test_a_retry_that_fails_again_sends_no_new_digest_and_keeps_the_first_claim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held = hold()

    def refuse(addresses: list[str], message: Any) -> None:
        if addresses == ["alice@example.org"]:
            raise channels.SendError("SMTP 451 try later")
        mail.outbox.append(message)

    monkeypatch.setattr(channels, "send_email", refuse)
    first = notify(now=NOW)
    seen(held, NOW + 300)
    again = notify(now=NOW + 300)

    assert (first.digest_to, again.digest_to) == (["gpu-admins@example.org"], [])
    assert not again.ok  # still said (stderr, exit 1)
    assert len(mail.outbox) == 1  # the first failure's digest only
    row = Notice.objects.get()
    assert (row.status, row.created, row.error) == ("failed", NOW, "SMTP 451 try later")


def test_a_dry_run_says_whom_the_digest_would_go_to() -> None:
    hold()

    result = notify(now=NOW, dry_run=True)

    assert (result.digest_to, mail.outbox) == (["gpu-admins@example.org"], [])

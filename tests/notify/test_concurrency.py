"""Two gpu_notify runs at once send each notice once: the second claims nothing the first
has claimed (the unique constraint gpu_notify_once), also a failed notice both retry (the
conditional UPDATE). Both runs read the notices, then wait for each other at a barrier
before they claim: no sleeps. On PostgreSQL (marked ``postgres``) they also claim at the
same moment. Runs on SQLite here, and on PostgreSQL under --ds
tests.settings_postgres."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail

from gpu_monitor.notify import run
from gpu_monitor.notify.models import Notice
from gpu_monitor.notify.run import Result
from tests.history.conftest import close_thread_connections
from tests.notify.holds import NOW, hold

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def settings_for_notify(settings: Any) -> None:
    settings.GPU_MONITOR = {"NOTIFY_ADDRESSES": {"alice": "alice@example.org"}}
    settings.ADMINS = []


def in_thread(
    target: Callable[[], Result],
    results: list[Result],
    errors: list[BaseException],
    done: threading.Event,
) -> threading.Thread:
    def body() -> None:
        try:
            results.append(target())
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_thread_connections()
            done.set()

    return threading.Thread(target=body)


def two_runs_at_once(monkeypatch: pytest.MonkeyPatch, serial: bool = True) -> list[Result]:
    """Two runs that have both read the notices (nothing claimed yet), then claim and
    send: each waits for the other at a barrier right after its read; then one goes on
    while the other waits for it to end (SQLite's shared in-memory database refuses a
    write while another connection reads: "database table is locked"); ``serial``
    False: both claim at once (PostgreSQL)."""
    real = run.recorded
    both_read = threading.Barrier(2, timeout=10)
    one_done = threading.Event()
    results: list[Result] = []
    errors: list[BaseException] = []

    def read_then_wait(*args: Any) -> Any:
        found = real(*args)
        if both_read.wait() == 1 and serial:
            assert one_done.wait(10), "the other run did not end"
        return found

    monkeypatch.setattr(run, "recorded", read_then_wait)
    threads = [in_thread(lambda: run.notify(now=NOW), results, errors, one_done) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    return sorted(results, key=lambda result: len(result.outcomes))


def test_two_runs_at_once_send_once(monkeypatch: pytest.MonkeyPatch) -> None:
    hold()

    second, first = two_runs_at_once(monkeypatch)

    assert [m.to for m in mail.outbox] == [["alice@example.org"]]
    assert (len(first.outcomes), second.outcomes) == (1, [])
    assert list(Notice.objects.values_list("status", flat=True)) == ["sent"]


def test_two_runs_retrying_a_failed_notice_at_once_send_it_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held = hold()
    Notice.objects.create(
        host=held.host,
        gpu_uuid=held.gpu_uuid,
        gpu_index=0,
        user="alice",
        idle_since=held.idle_since,
        step=0,
        channel="email",
        address="alice@example.org",
        status="failed",
        error="SMTP 451",
        created=NOW - 300,
    )

    second, first = two_runs_at_once(monkeypatch)

    assert [m.to for m in mail.outbox] == [["alice@example.org"]]
    assert (len(first.outcomes), second.outcomes) == (1, [])
    # sent once; the row keeps the earlier failure's error
    assert list(Notice.objects.values_list("status", "error")) == [("sent", "SMTP 451")]


@pytest.mark.postgres
@pytest.mark.parametrize("failed_before", [False, True])
def test_on_postgresql_two_runs_claiming_at_the_same_moment_send_once(
    monkeypatch: pytest.MonkeyPatch, failed_before: bool
) -> None:
    held = hold()
    if failed_before:
        Notice.objects.create(
            host=held.host,
            gpu_uuid=held.gpu_uuid,
            gpu_index=0,
            user="alice",
            idle_since=held.idle_since,
            step=0,
            channel="email",
            status="failed",
            created=NOW - 300,
        )

    second, first = two_runs_at_once(monkeypatch, serial=False)

    assert [m.to for m in mail.outbox] == [["alice@example.org"]]
    assert (len(first.outcomes), second.outcomes) == (1, [])
    assert list(Notice.objects.values_list("status", flat=True)) == ["sent"]

"""history.store.write_pushed under replays and concurrent requests of one host: each
tick counted written once (SQLite, and PostgreSQL where the host's token rows are
locked so that the second request waits and reads what the first wrote)."""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

import pytest
from django.core.cache import cache

from gpu_monitor.history import store
from gpu_monitor.history.models import Event, Sample
from tests.fleet.ingest_helpers import body, post, ticks, token_for
from tests.history.conftest import close_thread_connections, on_postgres

pytestmark = pytest.mark.django_db(transaction=True)
REQUESTS = 3
HOLD_S = 0.3  # how long a request waits after reading the host's state


@pytest.fixture(autouse=True)
def no_throttle_history() -> None:
    cache.clear()


def test_concurrent_requests_of_one_host_write_each_tick_once(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = token_for()
    sent = body(ticks(1000, 1010))
    read = store.read_recorded

    def slow(host: str, using: str) -> Any:
        found = read(host, using)
        threading.Event().wait(HOLD_S)  # the other requests arrive meanwhile
        return found

    monkeypatch.setattr(store, "read_recorded", slow)
    start = threading.Barrier(REQUESTS)
    answers: list[tuple[int, dict[str, Any]]] = []

    def request() -> None:
        try:
            start.wait(5)
            response = post(sent, token)
            answers.append((response.status_code, response.json()))
        finally:
            close_thread_connections()

    threads = [threading.Thread(target=request) for _ in range(REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(answers) == REQUESTS
    codes = {code for code, _ in answers}
    if on_postgres():
        assert codes == {200}  # serialized by the lock, none refused
    else:
        assert codes <= {200, 503}  # SQLite: a locked table is an outage, retried later
    for code, _ in answers:
        if code == 503:
            answers.append((200, post(sent, token).json()))
    done = [answer for code, answer in answers if code == 200]
    assert sum(answer["written"] for answer in done) == 2
    assert sum(answer["duplicates"] for answer in done) == 2 * (len(done) - 1)
    assert Sample.objects.count() == 2 * len(fake_nvml.STATE.gpus)
    assert Event.objects.count() == 0

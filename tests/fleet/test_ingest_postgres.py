"""POST api/gpu/ingest on a real PostgreSQL: a table locked elsewhere is a 503 with
Retry-After once the statement timeout cancels the write (the request's transaction,
not the connection), and the next request writes."""

from __future__ import annotations

from types import ModuleType

import pytest
from django.core.cache import cache
from django.db import connection

from gpu_monitor.history import store
from gpu_monitor.history.models import Sample
from tests.fleet.ingest_helpers import body, post, ticks, token_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_locked_table_is_a_503_with_retry_after_then_written(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg  # the dev extra's (scripts/test); the tox cells have no PostgreSQL

    cache.clear()
    monkeypatch.setattr(store, "STATEMENT_TIMEOUT_S", 0.5)
    token, sent = token_for(), body(ticks(1000))
    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], dbname=settings["NAME"], user="postgres"
    )
    try:
        other.execute(f'LOCK TABLE "{Sample._meta.db_table}" IN ACCESS EXCLUSIVE MODE')
        locked = post(sent, token)
        other.rollback()
    finally:
        other.close()

    assert locked.status_code == 503
    assert locked.json() == {
        "detail": "The GPU fleet database did not answer (OperationalError); see the server log."
    }
    assert 5 <= int(locked["Retry-After"]) <= 15
    again = post(sent, token)
    assert again.status_code == 200
    assert again.json()["written"] == 1
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("0",)  # SET LOCAL: nothing left on the connection

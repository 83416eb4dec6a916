"""What a session may not carry through PgBouncer in transaction mode (marked
``postgres``): a statement past its timeout is cancelled and the session goes on, for
the recorder (its ``SET LOCAL``) and for the central site (its role's default, as
docs/fleet.md gives it; the ``options`` startup parameter is refused by pgbouncer);
Django sends no ``SET TIME ZONE`` under a role whose TimeZone is UTC; and
``gpu_history_maintain``'s DDL works through the pooler."""

from __future__ import annotations

import io
import re
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client

from gpu_monitor.history import partitions
from gpu_monitor.history.management.commands import gpu_history_maintain
from gpu_monitor.history.models import Sample
from tests.history.test_partitions_postgres import NOW, partitions_kept  # noqa: F401 (fixture)
from tests.history.test_recorder_process import wait_for
from tests.history.test_recorder_reconnect_postgres import Running, make
from tests.pgbouncer.conftest import (
    SITE_ROLE,
    SITE_TIMEOUT_MS,
    Bouncer,
    direct,
    server_connections,
    server_defaults,
    through,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
DID_NOT_ANSWER = "The GPU fleet database did not answer (OperationalError); see the server log."
CANCELLED = re.compile(r"\[(\d+)\] ERROR:  canceling statement due to statement timeout")


def execute(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """``sql`` on a connection of its own, straight to the cluster, as its superuser."""
    with direct() as admin:
        cursor = admin.execute(sql, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


class Locked:
    """``table`` locked (ACCESS EXCLUSIVE) by a transaction of its own, straight to the
    cluster, until ``release()``."""

    def __init__(self, table: str) -> None:
        self.holder = direct(autocommit=False)
        try:
            self.holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # type: ignore[arg-type]
        except BaseException:
            self.holder.close()
            raise

    def release(self) -> None:
        if not self.holder.closed:
            self.holder.rollback()
            self.holder.close()


@pytest.fixture
def site_role(bouncer: Bouncer) -> str:
    """The central site's role (made with the bouncer: SITE_ROLE, with the defaults
    docs/fleet.md gives, here a 1 s statement_timeout), read-only on the tables."""
    execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {SITE_ROLE}")
    return SITE_ROLE


def cluster_log() -> Path:
    return Path(settings.CLUSTER.directory, "log")


def test_a_recorder_statement_past_its_timeout_is_cancelled_and_the_tick_written_later(
    bouncer: Bouncer, fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder's INSERT waits on a lock held elsewhere: its SET LOCAL
    statement_timeout cancels the statement (an outage: the tick stays buffered), the
    server connection stays in the pool, and the tick is written once the lock is gone."""
    for module in list(sys.modules.values()):  # wherever the recorder's limit is read
        name = getattr(module, "__name__", "")
        if name.startswith("gpu_monitor.history") and hasattr(module, "STATEMENT_TIMEOUT_S"):
            monkeypatch.setattr(module, "STATEMENT_TIMEOUT_S", 0.3)
    logged_from = cluster_log().stat().st_size
    with through(bouncer):
        recorder = make(interval=1)
        lock = Locked(Sample._meta.db_table)
        try:
            with Running(recorder):
                wait_for(lambda: "statement timeout" in (recorder.last_error or ""))
                assert recorder.failure is None and recorder.unwritten() >= 1
                lock.release()
                wait_for(lambda: recorder.unwritten() == 0 and Sample.objects.exists())
                assert recorder.failure is None  # it kept running
        finally:
            lock.release()
    with cluster_log().open(errors="replace") as log:
        log.seek(logged_from)
        cancelled = {int(pid) for pid in CANCELLED.findall(log.read())}

    got = sorted(set(Sample.objects.values_list("epoch", flat=True)))
    assert got == list(range(got[0], got[-1] + 1))  # the tick that waited too, none missing
    assert cancelled, "no statement was cancelled by statement_timeout"
    # The backends whose statement was cancelled are still there: pgbouncer keeps them.
    alive = execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", [list(cancelled)])
    assert {pid for (pid,) in alive} == cancelled
    defaults = server_defaults()
    for _, timeout, _ in server_connections(bouncer, connection.settings_dict["NAME"]):
        assert timeout == defaults["statement_timeout"]  # SET LOCAL: nothing left


def test_the_sites_role_default_cancels_a_query_behind_a_lock_with_a_503(
    bouncer: Bouncer, site_role: str
) -> None:
    """docs/fleet.md: behind pgbouncer the site's statement_timeout is its role's default
    (ALTER ROLE ... SET): a view's query that waits on a lock is cancelled after it and
    answers the 503; the next request, on the same server connection, answers."""
    client = Client()
    with through(bouncer, user=site_role):
        assert client.get("/api/gpu/hosts").status_code == 200
        lock = Locked("gpu_monitor_fleet_hoststate")
        try:
            started = time.monotonic()
            response = client.get("/api/gpu/hosts")
            elapsed = time.monotonic() - started
        finally:
            lock.release()
        backends = execute(
            "SELECT pid, state, query FROM pg_stat_activity WHERE usename = %s", [site_role]
        )
        after = client.get("/api/gpu/hosts")

    print(f"503 after {elapsed:.2f} s behind a lock (the role's statement_timeout 1 s)")
    assert response.status_code == 503
    assert response.json() == {"detail": DID_NOT_ANSWER}
    assert SITE_TIMEOUT_MS / 1000 - 0.1 < elapsed < 4
    assert after.status_code == 200
    # The cancelled query's backend is still connected (idle in pgbouncer's pool).
    assert any("gpu_monitor_fleet_hoststate" in query for _, _, query in backends), backends


def test_the_options_startup_parameter_is_refused_by_pgbouncer(bouncer: Bouncer) -> None:
    """Why docs/fleet.md gives the role's default instead of OPTIONS["options"]."""
    import psycopg

    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter"):
        bouncer.connect(
            connection.settings_dict["NAME"], options="-c statement_timeout=15000"
        ).close()


def test_no_time_zone_is_set_under_a_role_whose_time_zone_is_utc(
    bouncer: Bouncer, site_role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Django sends SET TIME ZONE (a session setting) only when the server's TimeZone is
    not the connection's: under the role docs/fleet.md gives (TimeZone UTC) it sends none;
    under a role without it (this cluster's default, Etc/UTC), one per connection."""
    sent: list[str] = []
    original = type(connection.ops).set_time_zone_sql

    def recorded(self: Any) -> str:
        sent.append("SET TIME ZONE")
        return original(self)

    monkeypatch.setattr(type(connection.ops), "set_time_zone_sql", recorded)
    client = Client()
    with through(bouncer, user=site_role):
        assert client.get("/api/gpu/hosts").status_code == 200
        assert sent == []
    if server_defaults()["TimeZone"] != "UTC":
        with through(bouncer):
            assert client.get("/api/gpu/hosts").status_code == 200
        assert sent == ["SET TIME ZONE"]


def test_gpu_history_maintain_works_through_pgbouncer(
    bouncer: Bouncer,
    partitions_kept: None,  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its DDL (CREATE, ATTACH, DROP with SET LOCAL lock_timeout) runs in transactions:
    the pooler's transaction mode serves it. Its clock is in 2030: the days partitioned
    for the real today are past the retention and dropped (``partitions_kept`` makes
    them again)."""
    monkeypatch.setattr(gpu_history_maintain, "now", lambda: NOW)
    out = io.StringIO()
    with through(bouncer):
        call_command("gpu_history_maintain", "--ahead", "1", stdout=out)
    said = out.getvalue()

    assert "partitions: today and 1 day(s) ahead (2030-03-10 .. 2030-03-11): 2 created" in said
    assert re.search(r"samples: dropped [1-9]\d* partition", said), said  # this run's real days
    days = {partitions.day_name(NOW // 86400 * 86400 + n * 86400) for n in range(2)}
    assert days <= {p.name for p in partitions.partitions("default")}

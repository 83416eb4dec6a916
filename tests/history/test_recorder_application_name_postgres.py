"""The recorder's PostgreSQL connection names itself ``gpu_record <host>`` in
``pg_stat_activity`` (a connection parameter, not a session SET), unless the project's
OPTIONS give an ``application_name`` of their own (marked ``postgres``)."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from django.db import connection

from gpu_monitor.history.buffer import Tick
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.manager import GPUManager

if TYPE_CHECKING:  # the tox cells have no psycopg: they run no PostgreSQL test
    import psycopg

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def seen_while_writing(
    host: str, admin: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str, bool]:
    """What pg_stat_activity says of the writer's backend while it writes a tick, what
    the connection was opened with, and whether a session SET named it."""
    recorder = Recorder(GPUManager(), host=host, interval=10, retention_s=None, buffer_ticks=360)
    found: list[tuple[str, str, bool]] = []
    write_tick = recorder.writer.write_tick

    def inspect(tick: Tick) -> None:
        opened = recorder.writer.db.connection
        pid = opened.info.backend_pid
        row = admin.execute(
            "SELECT application_name FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()
        parameter = opened.info.get_parameters().get("application_name", "")
        # A name set by SET is the session's: RESET would take it back to the default.
        with opened.cursor() as cursor:
            cursor.execute("SELECT reset_val FROM pg_settings WHERE name = 'application_name'")
            reset = cursor.fetchone()[0]
        found.append((row[0], parameter, reset != row[0]))
        write_tick(tick)

    monkeypatch.setattr(recorder.writer, "write_tick", inspect)
    recorder.run(once=True)
    assert recorder.unwritten() == 0
    return found[0]


def test_the_writer_connection_is_named_after_the_host_in_pg_stat_activity(
    fake_nvml: ModuleType, admin: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, parameter, by_set = seen_while_writing("node-7", admin, monkeypatch)

    assert (name, parameter, by_set) == ("gpu_record node-7", "gpu_record node-7", False)
    ours = connection.settings_dict["OPTIONS"]
    assert "application_name" not in ours  # the project's other connections: untouched


def test_the_project_own_application_name_wins(
    fake_nvml: ModuleType, admin: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {**connection.settings_dict["OPTIONS"], "application_name": "site-recorder"}
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)

    name, _, _ = seen_while_writing("node-7", admin, monkeypatch)

    assert name == "site-recorder"

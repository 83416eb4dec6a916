"""The central site while its PostgreSQL stops answering (marked ``postgres``): with the
connection options docs/fleet.md gives and example_project sets, a request answers the
documented 503 within the bound instead of holding its worker (30 s and more before)."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from example_project.settings import POSTGRES_OPTIONS

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
DID_NOT_ANSWER = "The GPU fleet database did not answer (OperationalError); see the server log."


def server_processes() -> list[int]:
    """The test cluster's postmaster and every process it started."""
    data = Path(settings.CLUSTER.data)
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    found = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            found.append(int(stat.parent.name))
    return found


@contextlib.contextmanager
def frozen_server() -> Iterator[None]:
    """The whole server stopped with SIGSTOP: it accepts connections (the kernel does)
    and answers nothing, as a hung or swapped-out server does."""
    frozen = server_processes()
    try:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):  # a backend that ended since
                os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def others_gone() -> None:
    """Wait until no other session is left on the test database: the connect that timed
    out, which the thawed server accepts late (its client socket freed by a collection),
    must not outlive the test (the database could not be dropped at the end)."""
    gc.collect()
    connection.close()
    deadline = time.monotonic() + 30
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), string_agg(concat_ws(' ', pid, state, wait_event), '; ')"
                " FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            (others, what) = cursor.fetchone()
        if others == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert others == 0, what


def site_options(monkeypatch: pytest.MonkeyPatch, **more: Any) -> None:
    """The example's OPTIONS on the test database's connection, from its next connect."""
    options = {**connection.settings_dict["OPTIONS"], **POSTGRES_OPTIONS, **more}
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
    connection.close()


def test_a_frozen_server_is_a_503_within_connect_timeout(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    site_options(monkeypatch)
    bound = POSTGRES_OPTIONS["connect_timeout"]
    assert isinstance(bound, int)
    with frozen_server():
        started = time.monotonic()
        response = client.get("/api/gpu/fleet/", HTTP_ACCEPT="application/json")
        elapsed = time.monotonic() - started
    others_gone()

    print(f"503 after {elapsed:.2f} s with the server frozen (connect_timeout {bound} s)")
    assert response.status_code == 503
    assert response.json() == {"detail": DID_NOT_ANSWER}
    assert bound - 0.5 < elapsed < bound + 3


def test_a_query_that_waits_on_a_lock_is_a_503_at_statement_timeout(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    assert "-c statement_timeout=" in str(POSTGRES_OPTIONS["options"])
    site_options(monkeypatch, options="-c statement_timeout=1000")  # the test's: 1 s
    params = connection.get_connection_params()
    holder = psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"})
    try:
        holder.execute("LOCK TABLE gpu_monitor_fleet_hoststate IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        response = client.get("/api/gpu/fleet/", HTTP_ACCEPT="application/json")
        elapsed = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()

    print(f"503 after {elapsed:.2f} s behind a lock (statement_timeout 1 s)")
    assert response.status_code == 503
    assert response.json() == {"detail": DID_NOT_ANSWER}
    assert 0.9 < elapsed < 4
    assert client.get("/api/gpu/fleet/", HTTP_ACCEPT="application/json").status_code == 200


def test_a_signed_in_user_gets_a_503_for_the_live_gpus_within_the_bound(
    fake_nvml: ModuleType, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Database-backed sessions: a signed-in user's request reads the session first. The
    live GPUs need no database, but who is asking does: a 503 within connect_timeout,
    never a 500 (the error page needs no database either)."""
    client.force_login(User.objects.create_user("alice", password="pw-alice-123"))
    site_options(monkeypatch)
    with frozen_server():
        started = time.monotonic()
        devices = client.get("/api/gpu/devices", HTTP_ACCEPT="application/json")
        page = client.get("/api/gpu/dashboard/", HTTP_ACCEPT="text/html")
        elapsed = time.monotonic() - started
    others_gone()

    print(f"two 503s after {elapsed:.2f} s with the server frozen")
    assert devices.status_code == 503 and page.status_code == 503
    assert devices.json() == {
        "detail": "Cannot tell who is signed in: the database did not answer "
        "(OperationalError); see the server log."
    }
    assert "Cannot tell who is signed in" in page.content.decode()
    bound = POSTGRES_OPTIONS["connect_timeout"]
    assert isinstance(bound, int)
    assert elapsed < 2 * (bound + 3)  # two requests, each one connect

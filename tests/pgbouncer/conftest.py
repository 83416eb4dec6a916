"""PgBouncer fixtures: Debian's ``pgbouncer`` in transaction mode (a pool of 5 server
connections) in front of the test run's throwaway PostgreSQL cluster, started for this
folder and stopped at its end. Every test here is marked ``postgres``: run with
``--ds tests.settings_postgres`` (as scripts/test does); on SQLite they are deselected.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.db import connection

from tests.history.conftest import (  # noqa: F401 (postgres tests; recorder threads)
    close_recorder_thread_connections,
    no_recorder_left_running,
    pytest_collection_modifyitems,
)

if TYPE_CHECKING:  # the tox cells have no psycopg: they run no PostgreSQL test
    import psycopg

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"  # Debian: /usr/sbin
POOL_SIZE = 5
PORT = 6439  # of the Unix socket in the bouncer's own directory: no port is taken
SITE_ROLE = "gpu_site"  # the central site's role, with the defaults docs/fleet.md gives it
SITE_TIMEOUT_MS = 1000  # its statement_timeout here (the docs: 15 s)
STARTS_WITHIN_S = 30.0


@dataclass
class Bouncer:
    """A running pgbouncer: its directory (Unix socket, ini, log) and port."""

    directory: str
    process: subprocess.Popen[bytes]
    port: int = PORT

    @property
    def log(self) -> str:
        return Path(self.directory, "pgbouncer.log").read_text(errors="replace")

    def logged_since(self, offset: int) -> str:
        """What pgbouncer logged after the first ``offset`` bytes of its log."""
        with Path(self.directory, "pgbouncer.log").open(errors="replace") as log:
            log.seek(offset)
            return log.read()

    def log_size(self) -> int:
        return Path(self.directory, "pgbouncer.log").stat().st_size

    def connect(
        self, dbname: str, user: str = "postgres", **options: Any
    ) -> psycopg.Connection[Any]:
        """A connection of its own through pgbouncer (in autocommit unless ``options``
        say otherwise)."""
        import psycopg

        options = {"autocommit": True, "connect_timeout": 5, **options}
        return psycopg.connect(
            host=self.directory, port=self.port, dbname=dbname, user=user, **options
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: pgbouncer ends at once
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


def ini(directory: str) -> str:
    """pgbouncer.ini: every database of the run's cluster (the ``*`` entry), pooled per
    user+database in transaction mode; trust, for the users of ``userlist.txt``."""
    cluster = settings.CLUSTER
    return f"""\
[databases]
* = host={cluster.directory} port={cluster.port}

[pgbouncer]
listen_addr =
listen_port = {PORT}
unix_socket_dir = {directory}
auth_type = trust
auth_file = {directory}/userlist.txt
pool_mode = transaction
default_pool_size = {POOL_SIZE}
max_client_conn = 200
logfile = {directory}/pgbouncer.log
pidfile =
log_connections = 0
log_disconnections = 0
"""


def start(
    config: Callable[[str], str],
    users: dict[str, str],
    port: int = PORT,
    database: str = "postgres",
) -> Bouncer:
    """Start pgbouncer with the ini ``config(directory)`` and the ``users`` (name:
    password) of its auth_file, as ``postgres`` when root (it refuses to run as root),
    and wait until it takes a connection to ``database`` (as the first user)."""
    directory = tempfile.mkdtemp(prefix="gpu-monitor-pgbouncer-")
    Path(directory, "pgbouncer.ini").write_text(config(directory))
    Path(directory, "userlist.txt").write_text(
        "".join(f'"{name}" "{password}"\n' for name, password in users.items())
    )
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
        as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
    process = subprocess.Popen(
        [PGBOUNCER, os.path.join(directory, "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **as_user,
    )
    user, password = next(iter(users.items()))
    bouncer = Bouncer(directory, process, port)
    deadline = time.monotonic() + STARTS_WITHIN_S
    while True:
        try:
            bouncer.connect(database, user, password=password or None).close()
            return bouncer
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                log = Path(directory, "pgbouncer.log")
                said = log.read_text(errors="replace") if log.exists() else ""
                bouncer.stop()
                raise RuntimeError(f"pgbouncer did not start: {said[-2000:]}") from None
            time.sleep(0.1)


def sessions_left(dbname: str) -> int:
    """The test database's sessions, this process's own Django connection closed."""
    import psycopg

    connection.close()
    params = connection.get_connection_params()
    params = {k: v for k, v in params.items() if k not in ("cursor_factory", "dbname")}
    with psycopg.connect(**params, dbname="postgres", autocommit=True) as direct:
        row = direct.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [dbname]
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture(scope="session")
def bouncer(django_db_setup: None, django_db_blocker: Any) -> Iterator[Bouncer]:
    """pgbouncer in front of the run's cluster, for the whole folder, and the site's role
    (SITE_ROLE). Stopped before the test database is dropped, and waited for: its server
    connections end a moment after it (a database with sessions left cannot be dropped,
    and a role dropped under a pooled connection breaks it)."""
    if not os.path.exists(PGBOUNCER):
        pytest.fail("pgbouncer not found: install PgBouncer (apt-get install pgbouncer)")
    running = start(ini, {"postgres": "", SITE_ROLE: ""})
    with direct() as admin:
        admin.execute(f"CREATE ROLE {SITE_ROLE} LOGIN")
        admin.execute(f"ALTER ROLE {SITE_ROLE} SET statement_timeout = {SITE_TIMEOUT_MS}")
        admin.execute(f"ALTER ROLE {SITE_ROLE} SET TimeZone = 'UTC'")
    yield running
    running.stop()
    deadline = time.monotonic() + STARTS_WITHIN_S
    with django_db_blocker.unblock():
        dbname = connection.settings_dict["NAME"]
        while sessions_left(dbname) and time.monotonic() < deadline:
            time.sleep(0.05)
        with direct() as admin:
            admin.execute(f"DROP OWNED BY {SITE_ROLE}")
            admin.execute(f"DROP ROLE {SITE_ROLE}")


@contextlib.contextmanager
def through(bouncer: Bouncer, user: str | None = None) -> Iterator[None]:
    """This process's connections to the test database (every thread's, from their next
    connect) go through pgbouncer, as ``user`` if given; direct again after."""
    saved = {key: connection.settings_dict[key] for key in ("HOST", "PORT", "USER")}
    connection.close()
    connection.settings_dict.update(HOST=bouncer.directory, PORT=str(bouncer.port))
    if user is not None:
        connection.settings_dict["USER"] = user
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def direct(**options: Any) -> psycopg.Connection[Any]:
    """A connection of its own straight to the cluster's test database, as its superuser
    (in autocommit unless ``options`` say otherwise), wherever Django connects now."""
    import psycopg

    cluster = settings.CLUSTER
    options = {"autocommit": True, **options}
    return psycopg.connect(
        host=cluster.directory,
        port=cluster.port,
        dbname=settings.DATABASES["default"]["NAME"],
        user="postgres",
        **options,
    )


def server_defaults() -> dict[str, str]:
    """statement_timeout and TimeZone as a new session of the server gets them."""
    with direct() as admin:
        rows = admin.execute(
            "SELECT name, reset_val FROM pg_settings"
            " WHERE name IN ('statement_timeout', 'TimeZone')"
        ).fetchall()
    return {name: value for name, value in rows}


def server_connections(bouncer: Bouncer, dbname: str) -> list[tuple[Any, ...]]:
    """Through pgbouncer, one transaction held open per server connection of the pool
    (POOL_SIZE at once: each gets a server connection of its own): its backend's pid,
    statement_timeout and TimeZone."""
    held = [bouncer.connect(dbname, autocommit=False) for _ in range(POOL_SIZE)]
    try:
        return [
            tuple(
                c.execute(
                    "SELECT pg_backend_pid(), current_setting('statement_timeout'), "
                    "current_setting('TimeZone')"
                ).fetchone()
                or ()
            )
            for c in held
        ]
    finally:
        for c in held:
            c.rollback()
            c.close()

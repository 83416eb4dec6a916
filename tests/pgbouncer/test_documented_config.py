"""The PgBouncer configuration docs/fleet.md gives for 10,000 nodes (marked
``postgres``): Debian's pgbouncer takes it as written (every key known, the pool in
transaction mode), with only the addresses, the files and TLS made local."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.pgbouncer.conftest import PORT, start

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
FLEET = Path(__file__).resolve().parents[2] / "docs" / "fleet.md"
LOCAL = {  # key: the value here (the docs' own are the deployment's paths and addresses)
    "listen_addr": "",
    "client_tls_sslmode": "disable",
    "client_tls_key_file": None,  # None: left out (no certificate here)
    "client_tls_cert_file": None,
}


def documented() -> str:
    """The ```ini block of docs/fleet.md that is /etc/pgbouncer/pgbouncer.ini."""
    blocks = re.findall(r"```ini\n(.*?)```", FLEET.read_text(), re.S)
    return next(block for block in blocks if "/etc/pgbouncer/pgbouncer.ini" in block)


def made_local(text: str, directory: str) -> str:
    cluster = settings.CLUSTER
    lines = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        if key in ("gpu", "auth_file"):
            continue
        if key in LOCAL:
            if LOCAL[key] is not None:
                lines.append(f"{key} = {LOCAL[key]}")
            continue
        lines.append(re.sub(r"^listen_port = \d+", f"listen_port = {PORT + 1}", line))
    text = "\n".join(lines).replace(
        "[databases]",
        f"[databases]\ngpu = host={cluster.directory} port={cluster.port} "
        f"dbname={connection.settings_dict['NAME']}",
    )
    return text.replace(
        "[pgbouncer]",
        f"[pgbouncer]\nunix_socket_dir = {directory}\nauth_file = {directory}/userlist.txt\n"
        f"logfile = {directory}/pgbouncer.log\npidfile =",
    )


def test_pgbouncer_takes_the_documented_configuration() -> None:
    text = documented()
    for key in ("pool_mode = transaction", "max_client_conn", "default_pool_size"):
        assert key in text
    assert re.search(r"^ignore_startup_parameters", text, re.M) is None
    bouncer = start(
        lambda directory: made_local(text, directory),
        {"postgres": "not-secret"},  # trust on the cluster: the password is for pgbouncer
        port=PORT + 1,
        database="gpu",
    )
    try:
        with bouncer.connect("gpu", password="not-secret") as node:
            assert node.execute("SELECT current_database()").fetchone() == (
                connection.settings_dict["NAME"],
            )
        log = bouncer.log
    finally:
        bouncer.stop()

    print(next(line for line in log.splitlines() if "max_client_conn" in line))
    assert "max_client_conn: 11000" in log, log
    assert "ERROR" not in log and "FATAL" not in log, log

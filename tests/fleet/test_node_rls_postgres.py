"""A node's role reads and writes only its own host's rows: PostgreSQL row-level security
(gpu_monitor.history.node_roles, the migrations fleet 0002, history 0006, usage 0003).

Two node roles, A mapped to host-a and B to host-b, are made with the SQL of
docs/deployment.md's "A node's database role" as it is written there (the roles, the
grants, the mapping), so that the docs are tested. Each test tries, under A, the other
host's rows in one table. The rows are written by the test's own connection, the
cluster's superuser, which row-level security does not limit.

Marked ``postgres``: run in scripts/test's PostgreSQL pass (``--ds
tests.settings_postgres``), deselected on SQLite.
"""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor

from gpu_monitor.fleet.models import HostState, HostToken, NodeRole
from gpu_monitor.history import node_roles, partitions
from gpu_monitor.history.models import Event, Rollup, Sample
from gpu_monitor.params import moment
from gpu_monitor.usage.models import Hold, Usage

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = ROOT / "docs" / "deployment.md"
DOCUMENTED_ROLE, DOCUMENTED_HOST = "gpu_node", "node-a"
A, B = "rls_node_a", "rls_node_b"
HOSTS = {A: "host-a", B: "host-b"}
CENTRAL = "rls_central"  # a central site's role that does not own the tables
DAY = partitions.DAY
NOW = 1_937_822_400 + 3600  # 2031-05-29T13:00:00Z: a day no other test has a partition for
TODAY = NOW // DAY * DAY
LATER = TODAY + 90 * DAY  # no partition for that day: DEFAULT
SECRET = "train.py --api-key=s3cr3t"
ONE_SECOND = ("--interval", "1", "--retention", "off")


def section() -> str:
    return DEPLOYMENT.read_text().split("## A node's database role", 1)[1]


def sql_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", section(), re.S)


def statements(block: str) -> list[str]:
    """The block's statements, comments left out (a DO block is one statement)."""
    if "DO $$" in block:
        return [block]
    text = "\n".join(line.split("--", 1)[0] for line in block.splitlines())
    return [s.strip() for s in text.split(";") if s.strip()]


def documented(containing: str) -> str:
    return next(block for block in sql_blocks() if containing in block)


def superuser(sql: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def nodes() -> Iterator[dict[str, str]]:
    """Roles A and B made, granted and mapped as docs/deployment.md says; the group role
    once. Dropped afterwards."""
    made: list[str] = []
    try:
        create = statements(documented("CREATE ROLE gpu_node"))
        group = [s for s in create if node_roles.GROUP in s and DOCUMENTED_ROLE not in s]
        assert group == [f"CREATE ROLE {node_roles.GROUP} NOLOGIN"]
        superuser(group[0])
        made.append(node_roles.GROUP)
        node = [s for s in create if s not in group]
        assert len(node) == 1 and f"IN ROLE {node_roles.GROUP}" in node[0]
        grants = documented("DO $$")
        mapping = statements(documented("INSERT INTO gpu_monitor_node_role"))
        for role, host in HOSTS.items():
            superuser(node[0].replace(DOCUMENTED_ROLE, role))
            made.insert(0, role)
            superuser(grants.replace(DOCUMENTED_ROLE, role))
            for statement in mapping:
                superuser(
                    statement.replace(f"'{DOCUMENTED_ROLE}'", f"'{role}'").replace(
                        f"'{DOCUMENTED_HOST}'", f"'{host}'"
                    )
                )
        yield HOSTS
    finally:
        for alias in connections:
            connections[alias].close()
        for role in made:
            superuser(f"DROP OWNED BY {role}")
            superuser(f"DROP ROLE {role}")


@pytest.fixture
def rows() -> Iterator[None]:
    """A row of each host in every table a node writes; samples in a day partition and
    in DEFAULT. B's host state holds a process list with a secret on its command line."""
    partitions.create_day("default", TODAY)
    for host in HOSTS.values():
        uuid = f"GPU-{host}"
        for epoch in (NOW, LATER):
            Sample.objects.create(
                host=host, gpu_uuid=uuid, gpu_index=0, epoch=epoch, timestamp=moment(epoch)
            )
        Rollup.objects.create(host=host, gpu_uuid=uuid, gpu_index=0, epoch=TODAY)
        Event.objects.create(
            host=host, gpu_uuid=uuid, gpu_index=0, epoch=NOW, timestamp=moment(NOW), kind="xid"
        )
        HostState.objects.create(
            host=host,
            epoch=NOW,
            timestamp=moment(NOW),
            interval_seconds=10,
            devices=[],
            processes={"processes": [{"pid": 7, "command_line": SECRET}]},
            problems=[{"gpu_index": 0, "kind": "xid", "message": "XID 79"}],
            problem_count=1,
        )
        Usage.objects.create(
            host=host,
            gpu_uuid=uuid,
            gpu_index=0,
            user="alice",
            period=TODAY,
            seconds_held=300,
            first_epoch=TODAY,
            last_epoch=TODAY + 290,
        )
        Hold.objects.create(
            host=host,
            gpu_uuid=uuid,
            gpu_index=0,
            user="alice",
            held_since=TODAY,
            last_epoch=NOW,
            interval_seconds=10,
        )
    yield
    superuser(f'DROP TABLE "{partitions.day_name(TODAY)}"')


class As:
    """A connection of its own, in autocommit, logged in as ``role``."""

    def __init__(self, role: str) -> None:
        import psycopg  # the dev extra's (scripts/test); the tox cells have no PostgreSQL

        settings = connection.settings_dict
        self.connection = psycopg.connect(
            host=settings["HOST"],
            port=settings["PORT"],
            dbname=settings["NAME"],
            user=role,
            autocommit=True,
        )

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.connection.execute(sql, params).fetchall()

    def count(self, sql: str, params: list[Any] | None = None) -> int:
        """How many rows ``sql`` (an UPDATE, an INSERT) changed."""
        return self.connection.execute(sql, params).rowcount

    def refused(self, sql: str, params: list[Any] | None = None) -> str:
        """The error of ``sql``, which must be refused by row-level security."""
        import psycopg.errors

        with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
            self.connection.execute(sql, params)
        return str(refused.value)

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def as_a(nodes: dict[str, str], rows: None) -> Iterator[As]:
    node = As(A)
    yield node
    node.close()


def hosts_in(table: str) -> list[str]:
    """The hosts of ``table``'s rows as the superuser sees them, sorted."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT host FROM "{table}" ORDER BY host')
        return [row[0] for row in cursor.fetchall()]


def columns(table: str) -> list[str]:
    """The table's columns but its id."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = %s AND column_name <> 'id' ORDER BY ordinal_position",
            [table],
        )
        return [row[0] for row in cursor.fetchall()]


SAMPLE = (
    f'INSERT INTO "{Sample._meta.db_table}" (host, gpu_uuid, gpu_index, name, epoch, timestamp) '
    "VALUES (%s, 'GPU-new', 0, 'H100', %s, now()) RETURNING id"
)


def refused_by_policy(table: str) -> str:
    return f'new row violates row-level security policy "{node_roles.OWN_HOST}" for table "{table}"'


def copy_of_a(table: str) -> str:
    """INSERT a copy of host-a's rows of ``table`` under the host of its one parameter."""
    names = columns(table)
    chosen = ", ".join("%s" if name == "host" else f'"{name}"' for name in names)
    into = ", ".join(f'"{name}"' for name in names)
    return f'INSERT INTO "{table}" ({into}) SELECT {chosen} FROM "{table}" WHERE host = \'host-a\''


# -- the tables and the docs' SQL ----------------------------------------------------


def test_the_tables_with_policies_are_every_table_a_node_writes_with_a_host() -> None:
    with_host = {
        model._meta.db_table
        for model in apps.get_models()
        if any(field.name == "host" for field in model._meta.get_fields())
    }
    # The tables the docs' grants give a node INSERT and UPDATE on.
    names = re.search(r"c\.relname ~ '(.*?)'", documented("DO $$"))
    assert names is not None
    granted = {table for table in with_host if re.search(names[1], table)}

    assert set(node_roles.TABLES) == granted - {NodeRole._meta.db_table}
    assert NodeRole._meta.db_table == node_roles.MAPPING
    assert not re.search(names[1], node_roles.MAPPING)
    # The central site's own tables with a host: no node is granted them (notify's; the
    # host tokens of the nodes that push: a node must not give itself one).
    assert with_host - granted - {node_roles.MAPPING} == {
        "gpu_monitor_notify_notice",
        HostToken._meta.db_table,
    }
    assert not re.search(names[1], HostToken._meta.db_table)


def test_every_table_a_node_writes_has_row_level_security_enabled_not_forced() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "array(SELECT p.polname FROM pg_policy p WHERE p.polrelid = c.oid ORDER BY 1) "
            "FROM pg_class c WHERE c.relname = ANY(%s) ORDER BY 1",
            [list(node_roles.TABLES)],
        )
        found = cursor.fetchall()

    policies = sorted([node_roles.ANY, node_roles.OWN_HOST])
    assert found == [(table, True, False, policies) for table in sorted(node_roles.TABLES)]


# -- the recorder under a node's role ------------------------------------------------


def record(role: str, host: str) -> None:
    user = connection.settings_dict["USER"]
    connection.settings_dict["USER"] = role  # the recorder's writer thread connects anew
    try:
        call_command(
            "gpu_record",
            "--once",
            "--retention",
            "off",
            "--processes",
            "--host",
            host,
            stdout=io.StringIO(),
        )
    finally:
        connection.settings_dict["USER"] = user


def test_gpu_record_under_a_nodes_role_records_its_host(
    fake_nvml: ModuleType, nodes: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Every statement of a tick: samples, host state, usage rows and holds upserted
    (twice: the second run, in the same five-minute period, updates them), events."""
    for gpu in fake_nvml.STATE.gpus:
        gpu.processes = [fake_nvml.FakeProcess(os.getpid(), 1024 * 1048576)]

    record(A, "host-a")
    record(A, "host-a")

    assert set(Sample.objects.values_list("host", flat=True)) == {"host-a"}
    assert Sample.objects.values("gpu_uuid").distinct().count() == 2  # the fake's two GPUs
    state = HostState.objects.get()
    assert state.host == "host-a"
    assert state.processes is not None and state.processes["processes"]
    assert set(Usage.objects.values_list("host", flat=True)) == {"host-a"}
    assert Hold.objects.count() == 2  # one user on each GPU, its hold updated
    assert Usage.objects.values("gpu_uuid", "user").distinct().count() == 2
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_gpu_record_under_a_nodes_role_with_another_hosts_name_is_refused_and_says_so(
    fake_nvml: ModuleType, nodes: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(CommandError) as failed:
        record(A, "host-b")

    assert "new row violates row-level security policy" in str(failed.value)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(
        m.startswith("The database refused the recorder's rows (new row violates row-level")
        for m in said
    ), said
    # The tick is one transaction: nothing of it was written.
    assert not Sample.objects.exists()
    assert not HostState.objects.exists()


def test_a_running_recorder_with_another_hosts_name_exits_1_saying_why(
    nodes: dict[str, str], tmp_path: Path
) -> None:
    """Not --once: what systemd runs. It stops at its first tick, with the reason on
    stderr (the journal), and exits 1 (Restart=on-failure starts it again)."""
    settings = connection.settings_dict
    database = [settings["HOST"], str(settings["PORT"]), settings["NAME"], A]
    done = subprocess.run(
        [sys.executable, "manage.py", "gpu_record", "--host", "host-b", *ONE_SECOND],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
            "DJANGO_SETTINGS_MODULE": "tests.fleet.procs_settings",
            "PROCS_DB": ":".join(database),
            "FAKE_NVML_GPUS": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1, done.stderr
    refused = f"{refused_by_policy(Sample._meta.db_table)})"
    assert f"The database refused the recorder's rows ({refused}" in done.stderr
    assert "may write only the host it is mapped to in the node roles" in done.stderr
    assert "Traceback" not in done.stderr
    assert not Sample.objects.exists()


# -- another host's rows, table by table ---------------------------------------------


@pytest.mark.parametrize("table", node_roles.TABLES)
def test_a_node_reads_only_its_hosts_rows(as_a: As, table: str) -> None:
    seen = as_a.rows(f'SELECT host FROM "{table}"')

    assert {host for (host,) in seen} == {"host-a"}
    assert len(seen) == hosts_in(table).count("host-a")  # all of its own


@pytest.mark.parametrize("table", node_roles.TABLES)
def test_a_node_updates_none_of_another_hosts_rows(as_a: As, table: str) -> None:
    before = hosts_in(table)

    assert as_a.count(f"UPDATE \"{table}\" SET host = 'host-x' WHERE host = 'host-b'") == 0
    assert as_a.count(f"UPDATE \"{table}\" SET host = host WHERE host = 'host-a'") >= 1
    assert hosts_in(table) == before


@pytest.mark.parametrize("table", node_roles.TABLES)
def test_a_node_may_not_insert_a_row_of_another_host(as_a: As, table: str) -> None:
    before = hosts_in(table)

    said = as_a.refused(copy_of_a(table), ["host-b"])

    assert refused_by_policy(table) in said
    assert hosts_in(table) == before


@pytest.mark.parametrize("table", node_roles.TABLES)
def test_a_node_may_not_move_its_rows_to_another_host(as_a: As, table: str) -> None:
    before = hosts_in(table)

    said = as_a.refused(f"UPDATE \"{table}\" SET host = 'host-c' WHERE host = 'host-a'")

    assert refused_by_policy(table) in said
    assert hosts_in(table) == before


def test_a_node_cannot_zero_another_users_usage_nor_clear_another_hosts_problems(
    as_a: As,
) -> None:
    """The issue's two: the page showed negative active hours, and B's problems went."""
    usage, state = Usage._meta.db_table, HostState._meta.db_table

    zeroed = as_a.count(f'UPDATE "{usage}" SET seconds_held = 0 WHERE host = %s', ["host-b"])
    cleared = as_a.count(
        f"UPDATE \"{state}\" SET problems = '[]', problem_count = 0 WHERE host = %s", ["host-b"]
    )

    assert (zeroed, cleared) == (0, 0)
    assert Usage.objects.get(host="host-b").seconds_held == 300
    b = HostState.objects.get(host="host-b")
    assert (b.problem_count, len(b.problems)) == (1, 1)
    # Its own it may: the same statements change host-a's rows.
    assert as_a.count(f'UPDATE "{usage}" SET seconds_held = 0 WHERE host = %s', ["host-a"]) == 1


def test_another_nodes_process_list_is_invisible(as_a: As) -> None:
    state = HostState._meta.db_table

    b = as_a.rows(f'SELECT processes FROM "{state}" WHERE host = %s', ["host-b"])
    secrets = as_a.rows(f"SELECT host FROM \"{state}\" WHERE processes::text LIKE '%%api-key%%'")

    assert b == []
    assert secrets == [("host-a",)]  # its own command line, not B's


def test_samples_go_through_the_parent_into_day_and_default_partitions_for_its_host_only(
    as_a: As,
) -> None:
    table = Sample._meta.db_table
    day, default = partitions.day_name(TODAY), partitions.default_name()

    own = {epoch: as_a.rows(SAMPLE, ["host-a", epoch])[0][0] for epoch in (NOW + 10, LATER + 10)}
    for epoch in (NOW + 20, LATER + 20):
        said = as_a.refused(SAMPLE, ["host-b", epoch])
        assert "row-level security" in said
    # B's rows, in either partition, are not there for A.
    assert as_a.rows(f"SELECT count(*) FROM \"{table}\" WHERE host = 'host-b'") == [(0,)]

    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT epoch, host, tableoid::regclass::text FROM "{table}" '
            "WHERE gpu_uuid = 'GPU-new' ORDER BY epoch"
        )
        landed = cursor.fetchall()
    assert [(e, h, p.strip('"')) for e, h, p in landed] == [
        (NOW + 10, "host-a", day),
        (LATER + 10, "host-a", default),
    ]
    assert len(own) == 2


# -- roles that are not a mapped node ------------------------------------------------


def test_a_member_of_the_group_without_a_mapping_sees_and_writes_nothing(
    nodes: dict[str, str], rows: None
) -> None:
    NodeRole.objects.filter(role=B).delete()
    node = As(B)
    try:
        for table in node_roles.TABLES:
            assert node.rows(f'SELECT host FROM "{table}"') == []
        said = node.refused(SAMPLE, ["host-b", NOW + 30])
    finally:
        node.close()

    assert "row-level security" in said


def test_a_mapped_role_that_is_not_in_the_group_is_limited_too(
    nodes: dict[str, str], rows: None
) -> None:
    superuser(f"REVOKE {node_roles.GROUP} FROM {B}")
    node = As(B)
    try:
        seen = {
            table: {host for (host,) in node.rows(f'SELECT host FROM "{table}"')}
            for table in node_roles.TABLES
        }
        changed = node.count(f'UPDATE "{Hold._meta.db_table}" SET memory_mb = 1 WHERE true')
    finally:
        node.close()

    assert seen == {table: {"host-b"} for table in node_roles.TABLES}
    assert changed == 1


def test_a_central_sites_role_that_does_not_own_the_tables_reads_every_host(
    nodes: dict[str, str], rows: None
) -> None:
    superuser(f"CREATE ROLE {CENTRAL} LOGIN")
    try:
        for table in node_roles.TABLES:
            superuser(f'GRANT SELECT ON "{table}" TO {CENTRAL}')
        central = As(CENTRAL)
        try:
            seen = {
                table: sorted(host for (host,) in central.rows(f'SELECT host FROM "{table}"'))
                for table in node_roles.TABLES
            }
        finally:
            central.close()
    finally:
        superuser(f"DROP OWNED BY {CENTRAL}")
        superuser(f"DROP ROLE {CENTRAL}")

    assert seen == {table: hosts_in(table) for table in node_roles.TABLES}
    assert all({"host-a", "host-b"} <= set(hosts) for hosts in seen.values())


# -- the migrations ------------------------------------------------------------------


def policies() -> dict[str, int]:
    """How many policies each table a node writes has."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, count(p.oid) FROM pg_class c "
            "LEFT JOIN pg_policy p ON p.polrelid = c.oid WHERE c.relname = ANY(%s) "
            "GROUP BY c.relname",
            [list(node_roles.TABLES)],
        )
        return dict(cursor.fetchall())


BACK = {
    # The fleet's 0002 alone: the mapping goes, and with it every table's policies.
    "fleet": [("gpu_monitor_fleet", "0001_initial")],
    # History's 0006 and usage's 0003: their tables' policies; the host states keep theirs.
    "history and usage": [
        ("gpu_monitor_history", "0005_idle_held_kinds"),
        ("gpu_monitor_usage", "0002_hold_ended_epoch"),
    ],
}


@pytest.mark.parametrize("back", BACK)
def test_the_migrations_back_remove_the_policies_and_forth_put_them_back(back: str) -> None:
    """Either way round: the fleet's 0002 applied after the others, or before."""
    every = dict.fromkeys(node_roles.TABLES, 2)
    left = dict.fromkeys(node_roles.TABLES, 0)
    if back != "fleet":
        left.update(dict.fromkeys(node_roles.FLEET_TABLES, 2))
    assert policies() == every
    executor = MigrationExecutor(connection)
    executor.migrate(BACK[back])
    try:
        assert policies() == left
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert policies() == every


def test_a_node_can_neither_make_nor_revive_a_host_token(as_a: As) -> None:
    superuser(
        f'INSERT INTO "{HostToken._meta.db_table}" (host, key, digest, created, revoked) '
        "VALUES ('host-b', 'revoked1', 'digest-of-b', now(), now())"
    )
    table = HostToken._meta.db_table

    made = as_a.refused(
        f'INSERT INTO "{table}" (host, key, digest, created) '
        "VALUES ('host-b', 'mine1234', 'digest-of-mine', now())"
    )
    revived = as_a.refused(f'UPDATE "{table}" SET revoked = NULL')

    assert f"permission denied for table {table}" in made
    assert f"permission denied for table {table}" in revived

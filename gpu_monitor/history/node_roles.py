"""PostgreSQL row-level security: a node's role reads and writes only its own host's rows.

Each table a node writes (``TABLES``) gets row-level security (ENABLE, not FORCE: the
tables' owner, who runs ``migrate`` and ``gpu_history_maintain``, is not limited) and two
policies for every command:

- ``gpu_monitor_any``, permissive, to PUBLIC: every role with the table's privileges
  sees and writes every row (a central site's role that does not own the tables reads
  every host, as before);
- ``gpu_monitor_node_host``, restrictive, to PUBLIC: a role listed in the node roles'
  table (``NodeRole``), or a member of the group role ``GROUP``, sees, inserts and
  updates only the rows whose host is the one mapped to it; a member with no mapping
  sees nothing and may write nothing. Other roles pass.

The policies' subqueries are bound to the tables when the policy is created, so a node
cannot shadow the mapping with a temporary table of that name; they run as the querying
role, which is why the migration grants SELECT on the mapping to PUBLIC. A missing group
role is no error: the policies ask ``pg_roles`` for it at each statement.

The mapping is gpu_monitor.fleet's ``NodeRole``; this module is history's so that the
migrations that call ``install`` and ``remove`` (fleet 0002, history 0006, usage 0003)
import it the way their sub-apps already point, at history. Each does nothing but on
PostgreSQL with the mapping table there, and each may run again (a table already done
is redone), so that they may run in any order.
"""

from __future__ import annotations

from django.db.backends.base.schema import BaseDatabaseSchemaEditor

GROUP = "gpu_monitor_node"
MAPPING = "gpu_monitor_node_role"  # NodeRole._meta.db_table
HISTORY_TABLES = (
    "gpu_monitor_history_sample",  # partitioned by day: the policies are the parent's
    "gpu_monitor_history_rollup",
    "gpu_monitor_history_event",
)
FLEET_TABLES = ("gpu_monitor_fleet_hoststate",)
USAGE_TABLES = ("gpu_monitor_usage_usage", "gpu_monitor_usage_hold")
TABLES = HISTORY_TABLES + FLEET_TABLES + USAGE_TABLES
ANY = "gpu_monitor_any"
OWN_HOST = "gpu_monitor_node_host"


def own_host(quote: str) -> str:
    """The restrictive policy's condition; ``quote`` is the quoted mapping table."""
    role = "current_user::text"
    return (
        f"host = (SELECT m.host FROM {quote} m WHERE m.role = {role}) "
        f"OR (NOT EXISTS (SELECT FROM {quote} m WHERE m.role = {role}) "
        "AND NOT EXISTS (SELECT FROM pg_catalog.pg_roles g "
        f"WHERE g.rolname = '{GROUP}' AND pg_catalog.pg_has_role(g.oid, 'MEMBER')))"
    )


def exists(schema_editor: BaseDatabaseSchemaEditor, table: str) -> bool:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [schema_editor.quote_name(table)])
        return bool(cursor.fetchone()[0])


def install(schema_editor: BaseDatabaseSchemaEditor, tables: tuple[str, ...] = TABLES) -> None:
    """Row-level security and the two policies on each of ``tables`` that exists, once
    the mapping table exists (without gpu_monitor.fleet there is none: nothing to do)."""
    if schema_editor.connection.vendor != "postgresql" or not exists(schema_editor, MAPPING):
        return
    q = schema_editor.quote_name
    schema_editor.execute(f"GRANT SELECT ON TABLE {q(MAPPING)} TO PUBLIC")
    condition = own_host(q(MAPPING))
    for table in tables:
        if not exists(schema_editor, table):
            continue  # its sub-app is not installed, or not migrated yet: its migration
        remove(schema_editor, (table,))
        schema_editor.execute(f"ALTER TABLE {q(table)} ENABLE ROW LEVEL SECURITY")
        schema_editor.execute(
            f"CREATE POLICY {q(ANY)} ON {q(table)} AS PERMISSIVE FOR ALL TO PUBLIC "
            "USING (true) WITH CHECK (true)"
        )
        schema_editor.execute(
            f"CREATE POLICY {q(OWN_HOST)} ON {q(table)} AS RESTRICTIVE FOR ALL TO PUBLIC "
            f"USING ({condition}) WITH CHECK ({condition})"
        )


def remove(schema_editor: BaseDatabaseSchemaEditor, tables: tuple[str, ...] = TABLES) -> None:
    """No row-level security, no policies, on each of ``tables`` that exists."""
    if schema_editor.connection.vendor != "postgresql":
        return
    q = schema_editor.quote_name
    for table in tables:
        if exists(schema_editor, table):
            schema_editor.execute(f"DROP POLICY IF EXISTS {q(OWN_HOST)} ON {q(table)}")
            schema_editor.execute(f"DROP POLICY IF EXISTS {q(ANY)} ON {q(table)}")
            schema_editor.execute(f"ALTER TABLE {q(table)} DISABLE ROW LEVEL SECURITY")

"""On PostgreSQL with gpu_monitor.fleet's node roles' table, row-level security on the
history tables: a node's role reads and writes only its host's samples (the policies
on the partitioned table hold for every day partition), rollups and events
(gpu_monitor.history.node_roles). Without that table (fleet not installed, or migrated
later: its 0002 does these tables then), and on SQLite, nothing."""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from gpu_monitor.history import node_roles


def install(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    node_roles.install(schema_editor, node_roles.HISTORY_TABLES)


def remove(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    node_roles.remove(schema_editor, node_roles.HISTORY_TABLES)


class Migration(migrations.Migration):
    dependencies = [("gpu_monitor_history", "0005_idle_held_kinds")]

    operations = [migrations.RunPython(install, remove)]

"""On PostgreSQL with gpu_monitor.fleet's node roles' table, row-level security on the
usage tables: a node's role reads and writes only its host's usage rows and holds
(gpu_monitor.history.node_roles). Without that table (fleet not installed, or migrated
later: its 0002 does these tables then), and on SQLite, nothing."""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from gpu_monitor.history import node_roles


def install(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    node_roles.install(schema_editor, node_roles.USAGE_TABLES)


def remove(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    node_roles.remove(schema_editor, node_roles.USAGE_TABLES)


class Migration(migrations.Migration):
    dependencies = [("gpu_monitor_usage", "0002_hold_ended_epoch")]

    operations = [migrations.RunPython(install, remove)]

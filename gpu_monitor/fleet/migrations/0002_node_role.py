"""The node roles' table (which host each node's PostgreSQL role may write) and, on
PostgreSQL, row-level security on every table a node writes that exists by now: the
fleet's host states, and the history's and usage's tables if they were migrated first
(gpu_monitor.history.node_roles). Those migrated after this get theirs from history's
0006 and usage's 0003, which do nothing without this table: no sub-app's migrations
depend on another's. Elsewhere (SQLite, ...) only the table."""

from __future__ import annotations

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from gpu_monitor.history import node_roles


def install(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    node_roles.install(schema_editor)


def remove(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    node_roles.remove(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("gpu_monitor_fleet", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="NodeRole",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "role",
                    models.CharField(
                        help_text="The node's PostgreSQL role (login name).",
                        max_length=63,
                        unique=True,
                    ),
                ),
                (
                    "host",
                    models.CharField(
                        help_text="The host it records: its gpu_record --host.", max_length=255
                    ),
                ),
            ],
            options={"db_table": "gpu_monitor_node_role", "ordering": ("role",)},
        ),
        migrations.RunPython(install, remove),
    ]

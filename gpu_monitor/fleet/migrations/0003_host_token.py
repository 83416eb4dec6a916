"""The nodes' tokens for POST api/gpu/ingest (stored hashed), in a table outside the
node roles' granted pattern."""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gpu_monitor_fleet", "0002_node_role"),
    ]

    operations = [
        migrations.CreateModel(
            name="HostToken",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("host", models.CharField(db_index=True, max_length=255)),
                ("key", models.CharField(max_length=16, unique=True)),
                ("digest", models.CharField(max_length=64, unique=True)),
                ("created", models.DateTimeField()),
                ("last_used", models.DateTimeField(null=True)),
                ("revoked", models.DateTimeField(null=True)),
            ],
            options={
                "db_table": "gpu_monitor_host_token",
                "ordering": ("host", "created", "id"),
            },
        ),
    ]

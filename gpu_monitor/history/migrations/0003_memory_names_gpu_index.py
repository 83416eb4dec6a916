"""One name per thing: the memory columns are named as the API names them
(``used_memory_mb``, ``total_memory_mb``); an index for one GPU by its index."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("gpu_monitor_history", "0002_event_once_admin_indexes")]

    operations = [
        migrations.RenameField("sample", "memory_used_mb", "used_memory_mb"),
        migrations.RenameField("sample", "memory_total_mb", "total_memory_mb"),
        migrations.RenameField("rollup", "memory_used_max", "used_memory_max"),
        migrations.RenameField("rollup", "memory_total_max", "total_memory_max"),
        migrations.AddIndex(
            model_name="sample",
            index=models.Index(
                fields=["host", "gpu_index", "epoch"], name="gpu_history_sample_gpu"
            ),
        ),
    ]

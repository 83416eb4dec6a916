"""Which upkeep the sub-apps add to ``gpu_history_maintain``.

Retention and partition upkeep run from one place (the maintenance command on the
central site, or a cron job), never from the nodes: a node's database role cannot
delete. A sub-app with tables of its own (usage rows, say) declares a task in its
``plugins.SubApp`` (``maintenance``); the command runs the history tables' upkeep, then
each task.
"""

from __future__ import annotations

from collections.abc import Callable

from gpu_monitor import plugins

# ``task(now, using)``: ``now`` is the Unix time the run started, ``using`` the database
# alias; it returns one line that says what it did (printed by the command).
MaintenanceTask = Callable[[int, str], str]


def registered() -> tuple[MaintenanceTask, ...]:
    """The declared tasks, in ``INSTALLED_APPS`` order."""
    return tuple(plugins.maintenance_tasks())

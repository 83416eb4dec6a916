"""The registry through which sub-apps add their upkeep to ``gpu_history_maintain``.

Retention and partition upkeep run from one place (the maintenance command on the
central site, or a cron job), never from the nodes: a node's database role cannot
delete. A sub-app with tables of its own (usage rows, say) registers a task in its
``AppConfig.ready()``; the command runs the history tables' upkeep, then each task.
"""

from __future__ import annotations

from collections.abc import Callable

# ``task(now, using)``: ``now`` is the Unix time the run started, ``using`` the database
# alias; it returns one line that says what it did (printed by the command).
MaintenanceTask = Callable[[int, str], str]

_tasks: list[MaintenanceTask] = []


def register(task: MaintenanceTask) -> None:
    """Add ``task`` (once: ``ready()`` may run more than once)."""
    if task not in _tasks:
        _tasks.append(task)


def registered() -> tuple[MaintenanceTask, ...]:
    """The tasks, in the order they registered."""
    return tuple(_tasks)

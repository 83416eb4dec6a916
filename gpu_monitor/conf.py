"""The ``GPU_MONITOR`` settings dict, read live on every access, and its validation.

Like django-cors-headers: no cache and no signal, so ``override_settings`` takes effect
on the next request. ``problems()`` is the one judge of the setting: the system checks
report what it finds (``gpu_monitor.checks``), and every GPU endpoint answers 503 while
it finds anything (fail closed: a setting meant to lock the API never leaves it open).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

DEFAULTS: dict[str, Any] = {
    "PERMISSION_CLASSES": None,  # None: REST_FRAMEWORK's DEFAULT_PERMISSION_CLASSES
    "AUTHENTICATION_CLASSES": None,  # None: REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES
    "THROTTLE_CLASSES": None,  # None: REST_FRAMEWORK's DEFAULT_THROTTLE_CLASSES
    # Process lists name users and commands: admins only unless the project opens them.
    "PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "PROCESS_COMMAND_LINE": False,  # command lines often hold secrets
    "METRICS_USER_MEMORY": False,  # gpu_monitor_user_memory_used_bytes{user}
    # gpu_record: ticks kept in memory while the database is unreachable (1 h at 10 s).
    "HISTORY_BUFFER_TICKS": 360,
    # gpu_monitor.fleet: a host whose last tick is this many seconds old is "down".
    "FLEET_DOWN_AFTER": 600,
    # gpu_monitor.fleet: gpu_monitor_fleet_* metrics on the central site's /metrics.
    "METRICS_FLEET": False,
    # gpu_monitor.usage: a GPU at or below this utilisation (percent) is idle.
    "USAGE_IDLE_PERCENT": 0,
    # gpu_monitor.usage: minutes of idle samples before a holder gets an idle_held event.
    "USAGE_IDLE_MINUTES": 60,
    # gpu_monitor.usage: days of usage rows that gpu_history_maintain keeps.
    "USAGE_RETENTION": 400,
    # gpu_monitor.usage: a signed-in user who is refused PROCESS_PERMISSION_CLASSES sees
    # their own usage rows (user name equal to request.user.get_username()).
    "USAGE_SELF_SERVICE": False,
    # gpu_monitor.notify: gpu_notify tells each holder of a GPU idle this many minutes
    # (None: USAGE_IDLE_MINUTES), reminds every NOTIFY_REPEAT seconds while it stays idle,
    # at most NOTIFY_MAX_REMINDERS times.
    "NOTIFY_IDLE_MINUTES": None,
    "NOTIFY_REPEAT": 14400,
    "NOTIFY_MAX_REMINDERS": 2,
    # gpu_monitor.notify: whom to tell: the Django user of that name with an e-mail
    # address, else NOTIFY_ADDRESSES[user], else user@NOTIFY_EMAIL_DOMAIN; never the
    # users in NOTIFY_EXCLUDE (nor "unknown").
    "NOTIFY_ADDRESSES": {},
    "NOTIFY_EMAIL_DOMAIN": None,
    "NOTIFY_EXCLUDE": [],
    # gpu_monitor.notify: a JSON POST per person (Slack-compatible "text") to this URL.
    "NOTIFY_WEBHOOK_URL": None,
    "NOTIFY_WEBHOOK_TIMEOUT": 5,  # seconds per attempt (one retry)
    # gpu_monitor.notify: the digest's addresses (None: those of Django's ADMINS).
    "NOTIFY_ADMINS": None,
}
# Keys holding a list of dotted paths, and the method an instance of each must have.
CLASS_LIST_KEYS: dict[str, str] = {
    "PERMISSION_CLASSES": "has_permission",
    "AUTHENTICATION_CLASSES": "authenticate",
    "THROTTLE_CLASSES": "allow_request",
    "PROCESS_PERMISSION_CLASSES": "has_permission",
}
BOOLEAN_KEYS = (
    "PROCESS_COMMAND_LINE",
    "METRICS_USER_MEMORY",
    "METRICS_FLEET",
    "USAGE_SELF_SERVICE",
)
# Keys holding a whole number, and the (least, greatest) it may be.
WHOLE_NUMBER_KEYS: dict[str, tuple[int, int | None]] = {
    "HISTORY_BUFFER_TICKS": (1, None),
    "FLEET_DOWN_AFTER": (1, None),
    "USAGE_IDLE_PERCENT": (0, 100),
    "USAGE_IDLE_MINUTES": (1, 10080),
    "USAGE_RETENTION": (1, 36500),
}
KIND = {
    "has_permission": "permission",
    "authenticate": "authentication",
    "allow_request": "throttle",
}


@dataclass(frozen=True)
class Problem:
    """Something wrong with ``GPU_MONITOR``: a system check id, a message, a hint."""

    id: str
    message: str
    hint: str


class Settings:
    """Typed views of ``settings.GPU_MONITOR``; every property reads the setting again."""

    @property
    def raw(self) -> Any:
        return getattr(settings, "GPU_MONITOR", {})

    def get(self, key: str) -> Any:
        raw = self.raw
        if isinstance(raw, dict) and key in raw:
            return raw[key]
        return DEFAULTS[key]

    def class_paths(self, key: str) -> list[str] | None:
        """A key of CLASS_LIST_KEYS: dotted paths, or None for REST_FRAMEWORK's default."""
        value: list[str] | None = self.get(key)
        return value

    def problems(self) -> list[Problem]:
        """Everything wrong with the setting; ``[]`` when it can be used as it is."""
        raw = self.raw
        if not isinstance(raw, dict):
            return [
                Problem(
                    "gpu_monitor.E002",
                    f"GPU_MONITOR must be a dict, not {type(raw).__name__}",
                    "For example: GPU_MONITOR = {'PERMISSION_CLASSES': [...]}.",
                )
            ]
        found: list[Problem] = []
        for key in raw:
            if key not in DEFAULTS:
                close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
                hint = f"Did you mean {close[0]!r}? " if close else ""
                found.append(
                    Problem(
                        "gpu_monitor.E001",
                        f"GPU_MONITOR has an unknown key {key!r}",
                        f"{hint}Known keys: {', '.join(DEFAULTS)}.",
                    )
                )
        for key in BOOLEAN_KEYS:
            if key in raw and not isinstance(raw[key], bool):
                found.append(
                    Problem(
                        "gpu_monitor.E002",
                        f"GPU_MONITOR[{key!r}] must be True or False, "
                        f"not {type(raw[key]).__name__}",
                        f"For example: {key!r}: False.",
                    )
                )
        for key, (least, greatest) in WHOLE_NUMBER_KEYS.items():
            if key not in raw:
                continue
            value = raw[key]
            fits = type(value) is int and value >= least
            fits = fits and (greatest is None or value <= greatest)
            if not fits:
                shown = repr(value) if isinstance(value, (int, float)) else _describe(value)
                bounds = (
                    f"of at least {least}" if greatest is None else f"from {least} to {greatest}"
                )
                found.append(
                    Problem(
                        "gpu_monitor.E002",
                        f"GPU_MONITOR[{key!r}] must be a whole number {bounds}, not {shown}",
                        f"For example: {key!r}: {DEFAULTS[key]}.",
                    )
                )
        for key, method in CLASS_LIST_KEYS.items():
            if key in raw:
                found += _class_list_problems(key, method, raw[key])
        return found


def _class_list_problems(key: str, method: str, value: Any) -> list[Problem]:
    if value is None and DEFAULTS[key] is None:  # None: REST_FRAMEWORK's default
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(p, str) for p in value):
        return [
            Problem(
                "gpu_monitor.E002",
                f"GPU_MONITOR[{key!r}] must be a list of dotted paths, not {_describe(value)}",
                f"For example: {key!r}: ['rest_framework.permissions.IsAuthenticated'].",
            )
        ]
    found: list[Problem] = []
    for path in value:
        try:
            target = import_string(path)
        except ImportError as exc:
            found.append(
                Problem(
                    "gpu_monitor.E003",
                    f"GPU_MONITOR[{key!r}] names {path!r}, which cannot be imported: {exc}",
                    "Check the spelling and that the package is installed.",
                )
            )
            continue
        reason = _not_a(target, method)
        if reason:
            found.append(
                Problem(
                    "gpu_monitor.E004",
                    f"GPU_MONITOR[{key!r}] names {path!r}, which is not a "
                    f"{KIND[method]} class: {reason}",
                    f"Name a class with a {method}() method that takes no constructor "
                    "arguments, like those of rest_framework.",
                )
            )
    return found


def _not_a(target: Any, method: str) -> str | None:
    """Why ``target()`` is not an object with ``method``; None when it is."""
    if not callable(target):
        return f"a {type(target).__name__} cannot be instantiated"
    try:
        instance = target()
    except Exception as exc:  # a class that needs arguments or settings it lacks
        return f"instantiating it failed ({type(exc).__name__}: {exc})"
    if not callable(getattr(instance, method, None)):
        return f"it has no {method}() method"
    return None


def _describe(value: Any) -> str:
    """A value's type, and the items' types of a list: never the value (it may be shown)."""
    if isinstance(value, (list, tuple)):
        kinds = sorted({type(item).__name__ for item in value})
        return f"a {type(value).__name__} of {', '.join(kinds) or 'nothing'}"
    return f"a {type(value).__name__}"


conf = Settings()

"""The ``GPU_MONITOR`` settings dict, read live on every access, and its validation.

Like django-cors-headers: no cache and no signal, so ``override_settings`` takes effect
on the next request. ``problems()`` is the one judge of the setting: the system checks
report what it finds (``gpu_monitor.checks``), and every GPU endpoint answers 503 while
it finds anything (fail closed: a setting meant to lock the API never leaves it open).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
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
    # gpu_monitor.fleet: POST api/gpu/ingest refuses a body (compressed, or once
    # decompressed) of more bytes (413), and more requests of one host token than this
    # rate (429; DRF's "number/period", None: not throttled).
    "INGEST_MAX_BYTES": 8 * 1024 * 1024,
    "INGEST_RATE": "120/min",
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
    "NOTIFY_IDLE_MINUTES": (1, 10080),  # or None: USAGE_IDLE_MINUTES
    "NOTIFY_REPEAT": (60, None),
    "NOTIFY_MAX_REMINDERS": (0, 100),
    "INGEST_MAX_BYTES": (1024, None),
}
# Keys of WHOLE_NUMBER_KEYS that may be None (a default taken from another key), and the
# example their hint gives instead of that None.
NONE_ALLOWED: dict[str, int] = {"NOTIFY_IDLE_MINUTES": 60}
# DRF's rate: requests per second, minute, hour or day (DRF reads the first letter).
RATE = re.compile(r"[1-9][0-9]{0,8}/(s|sec|second|m|min|minute|h|hour|d|day)")
MAX_WEBHOOK_TIMEOUT = 60  # seconds per attempt: gpu_notify waits at most twice this
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
            if key not in raw or (raw[key] is None and key in NONE_ALLOWED):
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
                        f"For example: {key!r}: {NONE_ALLOWED.get(key, DEFAULTS[key])}.",
                    )
                )
        for key, method in CLASS_LIST_KEYS.items():
            if key in raw:
                found += _class_list_problems(key, method, raw[key])
        return found + _notify_problems(raw) + _rate_problems(raw)


def _wrong(key: str, must: str, hint: str) -> Problem:
    return Problem("gpu_monitor.E002", f"GPU_MONITOR[{key!r}] must be {must}", hint)


def _not_addresses(values: list[Any]) -> list[int]:
    """The places in ``values`` of those that are not an e-mail address."""
    wrong = []
    for place, value in enumerate(values):
        try:
            if not isinstance(value, str):
                raise ValidationError("not a str")
            validate_email(value)
        except ValidationError:
            wrong.append(place)
    return wrong


def _notify_problems(raw: dict[str, Any]) -> list[Problem]:
    """The problems of the ``NOTIFY_*`` keys that are not whole numbers. A message (which
    the API's 503 shows) never holds an address or the webhook URL (its path is a Slack
    webhook's secret); a hint (the system check's only) names the entries to fix."""
    found: list[Problem] = []
    timeout = raw.get("NOTIFY_WEBHOOK_TIMEOUT", 5)
    number = isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
    if not (number and 0 < timeout <= MAX_WEBHOOK_TIMEOUT):
        shown = repr(timeout) if number else _describe(timeout)
        found.append(
            _wrong(
                "NOTIFY_WEBHOOK_TIMEOUT",
                f"a number of seconds above 0 and at most {MAX_WEBHOOK_TIMEOUT}, not {shown}",
                "For example: 'NOTIFY_WEBHOOK_TIMEOUT': 5 (seconds per attempt; one retry).",
            )
        )
    addresses = raw.get("NOTIFY_ADDRESSES", {})
    example = "For example: 'NOTIFY_ADDRESSES': {'alice': 'alice@example.org'}."
    if not isinstance(addresses, dict) or not all(isinstance(k, str) for k in addresses):
        found.append(
            _wrong(
                "NOTIFY_ADDRESSES",
                f"a dict of user name to e-mail address, not {_describe(addresses)}",
                example,
            )
        )
    else:
        users = list(addresses)
        wrong = [users[place] for place in _not_addresses(list(addresses.values()))]
        if wrong:
            found.append(
                _wrong(
                    "NOTIFY_ADDRESSES",
                    f"a dict of user name to e-mail address: {len(wrong)} value(s) are not "
                    "an e-mail address",
                    f"Fix the address of {', '.join(map(repr, wrong))}. {example}",
                )
            )
    domain = raw.get("NOTIFY_EMAIL_DOMAIN")
    if domain is not None and (not isinstance(domain, str) or _not_addresses([f"u@{domain}"])):
        found.append(
            _wrong(
                "NOTIFY_EMAIL_DOMAIN",
                "None or a domain name that makes user@domain an e-mail address, not "
                + ("a str that does not" if isinstance(domain, str) else _describe(domain)),
                "For example: 'NOTIFY_EMAIL_DOMAIN': 'example.org' (no @).",
            )
        )
    exclude = raw.get("NOTIFY_EXCLUDE", [])
    if not isinstance(exclude, (list, tuple)) or not all(isinstance(u, str) for u in exclude):
        found.append(
            _wrong(
                "NOTIFY_EXCLUDE",
                f"a list of user names, not {_describe(exclude)}",
                "For example: 'NOTIFY_EXCLUDE': ['root', 'svc-backup'].",
            )
        )
    url = raw.get("NOTIFY_WEBHOOK_URL")
    if url is not None:
        try:
            if not isinstance(url, str):
                raise ValidationError("not a str")
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            found.append(
                _wrong(
                    "NOTIFY_WEBHOOK_URL",
                    "None or an http:// or https:// URL, not "
                    + ("a str that is not one" if isinstance(url, str) else _describe(url)),
                    "For example: 'NOTIFY_WEBHOOK_URL': 'https://hooks.slack.com/services/...'.",
                )
            )
    admins = raw.get("NOTIFY_ADMINS")
    example = "For example: 'NOTIFY_ADMINS': ['gpu-admins@example.org'] (None: ADMINS)."
    if admins is None:
        pass
    elif not isinstance(admins, (list, tuple)) or not all(isinstance(a, str) for a in admins):
        found.append(
            _wrong(
                "NOTIFY_ADMINS",
                f"None or a list of e-mail addresses, not {_describe(admins)}",
                example,
            )
        )
    elif wrong_places := _not_addresses(list(admins)):
        found.append(
            _wrong(
                "NOTIFY_ADMINS",
                f"None or a list of e-mail addresses: {len(wrong_places)} item(s) are not one",
                f"Fix the item(s) at position {', '.join(map(str, wrong_places))}. {example}",
            )
        )
    return found


def _rate_problems(raw: dict[str, Any]) -> list[Problem]:
    """``INGEST_RATE``: None, or DRF's ``number/period`` (``s``, ``m``, ``h`` or ``d``,
    as DRF reads the period's first letter) of at least one request."""
    rate = raw.get("INGEST_RATE")
    if rate is None or (isinstance(rate, str) and RATE.fullmatch(rate)):
        return []
    shown = repr(rate) if isinstance(rate, str) and len(rate) <= 40 else _describe(rate)
    return [
        _wrong(
            "INGEST_RATE",
            f"None or a rate such as '120/min' (requests per s, min, hour or day), not {shown}",
            "For example: 'INGEST_RATE': '120/min' (per host token; None: not throttled).",
        )
    ]


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

"""Whom ``gpu_notify`` tells: a holder's e-mail address, the users it never tells, and the
admins who get the digest."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model

from gpu_monitor.conf import conf

UNKNOWN = "unknown"  # the user of a process nobody could name: never told (nor a uid)


def address(user: str) -> tuple[str | None, str]:
    """``(address, "")`` for ``user``, else ``(None, why)``. In order: the e-mail of the
    active Django user of that username; ``NOTIFY_ADDRESSES[user]`` (an exception to the
    pattern); ``user@NOTIFY_EMAIL_DOMAIN``."""
    found = _django_email(user)
    if found:
        return found, ""
    mapped = (conf.get("NOTIFY_ADDRESSES") or {}).get(user)
    if mapped:
        return str(mapped), ""
    domain = conf.get("NOTIFY_EMAIL_DOMAIN")
    if domain:
        return f"{user}@{domain}", ""
    return None, (
        f"no address: no Django user {user!r} with an e-mail, not in NOTIFY_ADDRESSES, "
        "no NOTIFY_EMAIL_DOMAIN"
    )


def _django_email(user: str) -> str:
    """The e-mail of the active Django user whose username is ``user``; ``""`` if none."""
    model: Any = get_user_model()
    field = model.get_email_field_name()
    match: dict[str, Any] = {model.USERNAME_FIELD: user}
    if any(found.name == "is_active" for found in model._meta.get_fields()):
        match["is_active"] = True  # a custom user model may have no such field
    row = model._default_manager.filter(**match).values_list(field, flat=True).first()
    return str(row or "").strip()


def excluded(user: str) -> bool:
    """Never told: a user the usage could not name (``"unknown"``, a bare uid such as
    ``1001``: ``1001@domain`` may be someone else's mailbox) and the users of
    ``NOTIFY_EXCLUDE``."""
    return (
        not user
        or user == UNKNOWN
        or user.isdecimal()
        or user in (conf.get("NOTIFY_EXCLUDE") or ())
    )


def admins() -> list[str]:
    """Who gets the digest: ``NOTIFY_ADMINS``, else the addresses of Django's ``ADMINS``
    (``(name, address)`` pairs, or plain addresses)."""
    chosen = conf.get("NOTIFY_ADMINS")
    if chosen is not None:
        return [str(entry) for entry in chosen]
    found = []
    for entry in getattr(settings, "ADMINS", ()) or ():
        if isinstance(entry, str):
            found.append(entry)
        else:
            found.append(str(entry[1]))
    return found

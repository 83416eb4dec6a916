"""The nodes' host tokens for ``POST api/gpu/ingest``: made, found, used and revoked.

A token is ``gpumon_`` and 32 random bytes (URL-safe base64); only its SHA-256 is stored
(256 random bits need no slow hash: nothing can be guessed from the digest), with its
first characters after the prefix as the public ``key`` that tells tokens apart in the
lists. A token is shown once, when it is made (``manage.py gpu_host_token create``).
"""

from __future__ import annotations

import datetime
import hashlib
import secrets

from django.db.models import Q
from django.utils import timezone

from gpu_monitor.fleet.models import HostToken

PREFIX = "gpumon_"
KEY_LENGTH = 8
MAX_TOKEN_LENGTH = 100  # a longer Authorization is no token of ours: never hashed
TOUCH_EVERY = datetime.timedelta(seconds=60)  # last_used is this coarse


def digest(token: str) -> str:
    """The hex SHA-256 of ``token``, as stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def create(host: str) -> tuple[HostToken, str]:
    """A new token for ``host`` (its name checked by the caller): the row and the token."""
    token = PREFIX + secrets.token_urlsafe(32)
    row = HostToken.objects.create(
        host=host,
        key=token[len(PREFIX) : len(PREFIX) + KEY_LENGTH],
        digest=digest(token),
        created=timezone.now(),
    )
    return row, token


def find(token: str) -> HostToken | None:
    """The row of ``token``, revoked or not; None for a text that is no token made here."""
    if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        return None
    return HostToken.objects.filter(digest=digest(token)).first()


def touch(row: HostToken) -> None:
    """Set ``row``'s ``last_used`` to now, unless it was set less than TOUCH_EVERY ago (one
    UPDATE a minute per token however often it is used; concurrent requests check again
    in the statement)."""
    now = timezone.now()
    if row.last_used is not None and now - row.last_used < TOUCH_EVERY:
        return
    stale = Q(last_used__isnull=True) | Q(last_used__lte=now - TOUCH_EVERY)
    HostToken.objects.filter(stale, pk=row.pk).update(last_used=now)
    row.last_used = now


def revoke(host: str | None = None, key: str | None = None) -> int:
    """Revoke the tokens of ``host``, or the token whose ``key`` it is, that are not
    revoked yet; how many."""
    rows = HostToken.objects.filter(revoked__isnull=True)
    rows = rows.filter(host=host) if key is None else rows.filter(key=key)
    return rows.update(revoked=timezone.now())

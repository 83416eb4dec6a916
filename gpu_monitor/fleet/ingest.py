"""``POST api/gpu/ingest``: the ticks a node's ``gpu_record --push`` sends, written into
the history through the recorder's own tick writing (``history.store.write_pushed``).

Authenticated by a host token only (``Authorization: Bearer gpumon_...``; no other view
of the API accepts one), which writes its own host only; throttled per host
(``INGEST_RATE``); a body is at most ``INGEST_MAX_BYTES``, compressed and once
decompressed, read no further than that. A database that cannot write is a 503 with a
``Retry-After`` of a few seconds, jittered so that the nodes do not come back at once.
"""

from __future__ import annotations

import json
import logging
import random
import zlib
from collections.abc import Sequence
from typing import Any

from django.db import connections, router
from django.db.models import F
from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import (
    APIException,
    AuthenticationFailed,
    ParseError,
    PermissionDenied,
    UnsupportedMediaType,
)
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle
from rest_framework.views import APIView

from gpu_monitor.api import ServiceUnavailable
from gpu_monitor.conf import conf
from gpu_monitor.fleet import tokens
from gpu_monitor.fleet.models import HostToken
from gpu_monitor.fleet.schema import document_post, ingest_docs
from gpu_monitor.history import store, wire
from gpu_monitor.history.models import Sample
from gpu_monitor.params import iso, shown
from gpu_monitor.stored import StoredAPIView

logger = logging.getLogger(__name__)

RETRY_AFTER_S = (5, 15)  # a 503's Retry-After: seconds, drawn in this range
GZIP = 16 + zlib.MAX_WBITS  # zlib's wbits for a gzip stream (header and trailer)


class TooLarge(APIException):
    status_code = 413
    default_code = "too_large"


class LengthRequired(APIException):
    status_code = 411
    default_code = "length_required"


class HostTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <host token>``: the request's ``auth`` is the token's row
    (``HostToken``), its user anonymous. No header: no credentials (a 401 that asks for
    them); an unknown or revoked token: a 401 that says so."""

    def authenticate(self, request: Request) -> tuple[Any, HostToken] | None:
        words = get_authorization_header(request).split()
        if not words or words[0].lower() != b"bearer":
            return None
        if len(words) != 2:
            raise AuthenticationFailed("Authorization must be 'Bearer' and one host token.")
        try:
            row = tokens.find(words[1].decode("ascii"))
        except UnicodeDecodeError:
            row = None
        if row is None:
            raise AuthenticationFailed("Unknown host token.")
        if row.revoked is not None:
            raise AuthenticationFailed(
                f"This host token ({row.key}) was revoked at {iso(row.revoked.timestamp())}: "
                "create a new one with manage.py gpu_host_token create."
            )
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser(), row

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


class HasHostToken(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, HostToken)


class HostTokenThrottle(SimpleRateThrottle):
    """``INGEST_RATE`` requests per host (all its tokens together); None: no limit."""

    scope = "gpu_monitor_ingest"

    def get_rate(self) -> str | None:
        rate: str | None = conf.get("INGEST_RATE")
        return rate

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if not isinstance(request.auth, HostToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.host}


def read_at_most(request: HttpRequest, size: int) -> bytes:
    """Up to ``size`` bytes of the body (a server's stream may give fewer at a time)."""
    chunks, left = [], size
    while left > 0 and (chunk := request.read(left)):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_body(request: HttpRequest, limit: int) -> bytes:
    """The body, gunzipped when its ``Content-Encoding`` is gzip: 413 as soon as it (or
    what it decompresses to) is over ``limit`` bytes, judged by ``Content-Length`` first,
    then while reading; never more than ``limit + 1`` bytes of either in memory."""
    length = request.META.get("CONTENT_LENGTH") or ""
    if not length.isdigit():
        raise LengthRequired("A body needs a Content-Length (a number of bytes).")
    if int(length) > limit:
        raise TooLarge(f"The body is {length} bytes, over the limit of {limit} (INGEST_MAX_BYTES).")
    raw = read_at_most(request, limit + 1)
    if len(raw) > limit:
        raise TooLarge(f"The body is over the limit of {limit} bytes (INGEST_MAX_BYTES).")
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise UnsupportedMediaType(
            encoding, f"Content-Encoding {shown(encoding)} is not supported: gzip or none."
        )
    stream = zlib.decompressobj(GZIP)
    try:
        body = stream.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise ParseError(f"The body is not valid gzip ({exc}).") from exc
    if len(body) > limit:
        raise TooLarge(
            f"The body decompresses to over the limit of {limit} bytes (INGEST_MAX_BYTES)."
        )
    if not stream.eof or stream.unused_data:
        raise ParseError("The body is not valid gzip (truncated, or data after its end).")
    return body


def lock_host(host: str, using: str) -> None:
    """Lock the host's token rows, first in the transaction: two requests of one host
    write one after the other, the second reading what the first wrote. PostgreSQL: a
    row lock (SELECT ... FOR UPDATE). SQLite, which has no row locks: an UPDATE that
    changes nothing takes the database's write lock now, waiting for another writer
    (the connection's timeout), where a read first would fail the transaction's later
    write at once with "database is locked" (a worker's push against another's)."""
    if router.db_for_write(HostToken) != using:
        return  # the tokens live in another database: its lock would not serialize these
    rows = HostToken.objects.using(using).filter(host=host)
    if connections[using].vendor == "sqlite":
        rows.update(host=F("host"))
        return
    list(rows.select_for_update().order_by("pk").values_list("pk", flat=True))


@document_post("ingest", ingest_docs)
class IngestView(StoredAPIView):
    """Write the ticks a node pushed (``gpu_record --push``): a JSON body of version 1
    (docs/api.md), gzip accepted. Answers how many ticks were written and how many were
    duplicates (written before: a replayed body counts once)."""

    database_what = "GPU fleet"
    database_logger = logger
    renderer_classes = (JSONRenderer,)

    def get_authenticators(self) -> list[BaseAuthentication]:
        if self.configuration_error:
            return []
        return [HostTokenAuthentication()]

    def get_permissions(self) -> Sequence[Any]:
        if self.configuration_error:
            raise ServiceUnavailable(self.configuration_error)
        return [HasHostToken()]

    def get_throttles(self) -> list[BaseThrottle]:
        if self.configuration_error:
            raise ServiceUnavailable(self.configuration_error)
        return [HostTokenThrottle()]

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if response.status_code == 503:
            response["Retry-After"] = str(random.randint(*RETRY_AFTER_S))
        return response

    def post(self, request: Request) -> Response:
        token = request.auth
        assert isinstance(token, HostToken)  # HasHostToken
        if request.content_type.split(";")[0].strip().lower() != "application/json":
            raise UnsupportedMediaType(
                request.content_type, "The body must be JSON (Content-Type: application/json)."
            )
        body = read_body(request._request, conf.get("INGEST_MAX_BYTES"))
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise ParseError(f"The body is not JSON: {exc}") from exc
        try:
            batch = wire.decode(payload)
        except wire.Invalid as exc:
            raise ParseError(str(exc)) from exc
        if batch.host != token.host:
            raise PermissionDenied(
                f"This token writes host {shown(token.host)} only, not {shown(batch.host)}."
            )
        tokens.touch(token)
        using = router.db_for_write(Sample)
        written = store.write_pushed(batch, using, lambda: lock_host(batch.host, using))
        return Response(
            {"host": batch.host, "written": written.written, "duplicates": written.duplicates}
        )

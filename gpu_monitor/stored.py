"""The public floor of the sub-apps that answer from the database (history, fleet, usage
and those to come): the base view whose failed query is a JSON 503 (``StoredAPIView``),
the pagination (``PagePagination``), the host parameter and the name limits, a dataclass
from stored JSON (``from_stored``), and the OpenAPI descriptions of those parameters. A
sub-app builds on this module (and on ``params`` for times), never on another sub-app's
views, pages or recorder."""

from __future__ import annotations

import dataclasses
import logging
import socket
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from django.core.paginator import Paginator
from django.db import DatabaseError, InterfaceError, OperationalError
from django.db.models import Model, QuerySet
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gpu_monitor.api import GPUMonitorAPIView, ServiceUnavailable
from gpu_monitor.database import missing_schema
from gpu_monitor.params import TIME_HELP, TIME_PATTERN, name_text, shown, whole_number

logger = logging.getLogger(__name__)

MAX_HOST_LENGTH = 255  # the host columns' max_length: a longer host name never recorded
T = TypeVar("T")
_FIELD_NAMES: dict[type, frozenset[str]] = {}


def field_names(cls: type) -> frozenset[str]:
    """The fields of a dataclass (kept: read once per class)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    return names


def from_stored(cls: type[T], data: Mapping[str, Any], **given: Any) -> T:
    """The dataclass ``cls`` from a stored JSON object (as the API rendered it): the keys
    it has fields for (a node on a newer version may have stored more), then ``given``
    (the fields whose JSON is not the dataclass: a nested list rebuilt by the caller)."""
    names = field_names(cls)
    return cls(**{**{k: v for k, v in data.items() if k in names}, **given})


def database_unavailable(exc: DatabaseError, what: str) -> ServiceUnavailable:
    """The 503 for a query that failed, saying what happened: ``what`` (``GPU history``)
    tables missing (run migrate), a database that did not answer, or one that refused."""
    name = type(exc).__name__
    if missing_schema(exc):
        return ServiceUnavailable(
            f"The {what} tables are missing or out of date ({name}): run manage.py migrate."
        )
    if isinstance(exc, OperationalError | InterfaceError):
        return ServiceUnavailable(
            f"The {what} database did not answer ({name}); see the server log."
        )
    return ServiceUnavailable(
        f"The {what} database refused the query ({name}); see the server log."
    )


class StoredAPIView(GPUMonitorAPIView):
    """Base of the views that read the database (the sub-apps'): a query that fails is a
    JSON 503 that says what happened, never a 500, logged by the sub-app's own logger.

    ``database_what`` names the data in the 503 and the log (``GPU history``);
    ``database_logger`` is the sub-app's logger. A sub-app sets both.
    """

    database_what = "GPU monitor"
    database_logger = logger

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DatabaseError):
            self.database_logger.error("%s query failed: %s", self.database_what, str(exc))
            exc = database_unavailable(exc, self.database_what)
        return super().handle_exception(exc)


class PagePagination(PageNumberPagination):
    """100 rows a page (``?page=``), 1 to 1000 with ``?page_size=`` (400 otherwise); a
    sub-app's list sets its own ``page_size``. A ``page`` that is not a whole number from
    1, or past the last page, is a 400 naming ``page`` (page 1 of an empty list is an
    empty page)."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request: Request) -> int:
        text = request.query_params.get(self.page_size_query_param)
        if text is None:
            return self.page_size
        size = whole_number(text)
        if size is None or not 1 <= size <= self.max_page_size:
            raise ParseError(
                f"page_size: a whole number from 1 to {self.max_page_size}, not {shown(text)}"
            )
        return size

    def get_page_number(self, request: Request, paginator: Paginator[Any]) -> int:
        """A whole number from 1, as the schema says (DRF also takes "" and "last")."""
        text = request.query_params.get(self.page_query_param)
        if text is None:
            return 1
        number = whole_number(text)
        if number is None or number < 1:
            raise ParseError(f"page: a whole number from 1, not {shown(text)}")
        self.last_page = paginator.num_pages
        return number

    def paginate_queryset(
        self, queryset: Any, request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        """DRF's, with a page past the last a 400 naming ``page`` and the last page."""
        self.last_page = 1
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:
            text = request.query_params.get(self.page_query_param, "")
            raise ParseError(
                f"page: {shown(text)} is past the last page ({self.last_page})"
            ) from exc

    def page_of(self, queryset: QuerySet[Any], request: Request, view: APIView) -> list[Any]:
        """The requested page (DRF's None means "no page size", which never happens
        here: ``get_page_size`` always gives one)."""
        return self.paginate_queryset(queryset, request, view) or []


def name_parameter(request: Request, name: str, limit: int) -> str | None:
    """The query parameter ``name`` (a host or a user name): None when absent or empty;
    a 400 naming it when longer than ``limit`` characters or holding a NUL."""
    text = request.query_params.get(name) or None
    return None if text is None else name_text(name, text, limit)


def host_parameter(request: Request, name: str = "host") -> str | None:
    """A recorded host named by the query parameter ``name`` (``?host=``): None when
    absent or empty; a 400 when longer than ``MAX_HOST_LENGTH`` or holding a NUL."""
    return name_parameter(request, name, MAX_HOST_LENGTH)


def known_host_parameter(
    request: Request, models: Sequence[type[Model]], what: str, name: str = "host"
) -> str | None:
    """``host_parameter``, and a 404 naming the host when no row of ``models`` (a
    sub-app's own tables, each with a ``host`` column) has it: a host never recorded,
    often a typo. A host known but with no rows in a window is the caller's empty answer.
    ``what`` names the data in the 404 (``GPU history``). This server's own host name
    (what ``gpu_record`` records as by default) is always known: its dashboard asks
    for it before the recorder beside it has written a tick."""
    host = host_parameter(request, name)
    if (
        host is not None
        and host != socket.gethostname()
        and not any(m._default_manager.filter(host=host).exists() for m in models)
    ):
        raise NotFound(f"No host {shown(host)} has recorded {what} (gpu_record --host).")
    return host


# -- the OpenAPI descriptions of the parameters ---------------------------------------


def query(name: str, text: str, **schema: Any) -> Any:
    """A string query parameter with the JSON Schema keywords ``schema`` (drf-spectacular
    is imported only when installed)."""
    from drf_spectacular.utils import OpenApiParameter

    return OpenApiParameter(
        name, {"type": "string", **schema}, OpenApiParameter.QUERY, description=text
    )


def time_query(name: str, text: str) -> Any:
    """A time query parameter (``since``, ``until``) as ``params.parse_time`` reads it."""
    return query(name, f"{TIME_HELP}; {text}", pattern=TIME_PATTERN)


def page_queries(what: str, pagination: Any) -> list[Any]:
    """``page`` and ``page_size`` as a paginated list view (``pagination``) takes them."""
    from drf_spectacular.utils import OpenApiParameter

    largest, default = pagination.max_page_size, pagination.page_size
    return [
        OpenApiParameter(
            "page",
            {"type": "integer", "minimum": 1},
            OpenApiParameter.QUERY,
            description="page number (default 1); 400 past the last page",
        ),
        OpenApiParameter(
            "page_size",
            {"type": "integer", "minimum": 1, "maximum": largest},
            OpenApiParameter.QUERY,
            description=f"{what} a page, 1 to {largest} (default {default})",
        ),
    ]

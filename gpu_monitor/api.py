"""The fail-closed base of every GPU API view, and the errors views raise."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import textwrap
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError
from django.http import HttpResponse, HttpResponseBase
from django.utils.html import escape
from django.utils.module_loading import import_string
from django.utils.safestring import mark_safe
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, MethodNotAllowed
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from gpu_monitor.conf import conf
from gpu_monitor.negotiation import QualityNegotiation

if TYPE_CHECKING:
    from rest_framework.permissions import _SupportsHasPermission

logger = logging.getLogger(__name__)


class ServiceUnavailable(APIException):
    """503: the service needed to answer (NVML) is not available."""

    status_code = 503
    default_detail = "Service temporarily unavailable."
    default_code = "service_unavailable"


_logged_misconfiguration: str | None = None


def configuration_error() -> str | None:
    """The 503 detail while ``GPU_MONITOR`` is misconfigured, else None.

    Logged at ERROR once per change of the problem, then at DEBUG on each request.
    """
    global _logged_misconfiguration
    problems = conf.problems()
    if not problems:
        _logged_misconfiguration = None
        return None
    what = "; ".join(problem.message for problem in problems)
    detail = f"GPU_MONITOR is misconfigured: {what}; run manage.py check"
    level = logging.DEBUG if detail == _logged_misconfiguration else logging.ERROR
    _logged_misconfiguration = detail
    logger.log(level, "%s (every GPU endpoint answers 503 until it is fixed)", detail)
    return detail


def instances(key: str) -> list[Any]:
    """Instances of the classes a GPU_MONITOR key names, or when it is unset of
    REST_FRAMEWORK's ``DEFAULT_<key>``, read on each request (DRF's own view attributes
    are fixed at import time). Only called once ``conf.problems()`` found nothing."""
    paths = conf.class_paths(key)
    if paths is None:
        classes: list[type[Any]] = getattr(api_settings, f"DEFAULT_{key}")
        return [cls() for cls in classes]
    return [import_string(path)() for path in paths]


@contextlib.contextmanager
def permission_classes_fail_closed(request: Request) -> Iterator[None]:
    """Around a call of permission classes: one that fails with anything but a refusal
    (an ``APIException``) is logged with its traceback and becomes a 503, never a 500;
    W002 reports it at ``check --deploy``."""
    try:
        yield
    except APIException:
        raise
    except Exception as exc:
        logger.exception("A permission class failed on %s", request.path)
        raise ServiceUnavailable(
            f"A permission class failed ({type(exc).__name__}); see the server log."
        ) from exc


def refused_process_permissions(request: Request, view: APIView) -> list[Any]:
    """The ``PROCESS_PERMISSION_CLASSES`` that refuse ``request`` (none: it may see
    processes). A class that fails otherwise is a ``ServiceUnavailable`` (logged): the
    process endpoints and the usage answer it as a 503, the pages show no processes."""
    with permission_classes_fail_closed(request):
        return [
            permission
            for permission in instances("PROCESS_PERMISSION_CLASSES")
            if not permission.has_permission(request, view)
        ]


def signed_out(request: Request) -> None:
    """Make ``request`` anonymous, for DRF and for Django (templates, the auth context
    processor), after its user could not be read."""
    unauthenticated: Any = api_settings.UNAUTHENTICATED_USER  # as DRF signs a request out
    user: Any = unauthenticated() if unauthenticated else None
    request.user = user
    request.auth = None


_LITERAL = re.compile(r"``(.+?)``")


def docstring_html(text: str) -> str:
    """A view's docstring (reST, dedented) as HTML: a paragraph per block, ``literals``
    as code, an indented block as preformatted text; everything else escaped."""
    parts = []
    for block in re.split(r"\n[ \t]*\n", text.strip()):
        lines = block.splitlines()
        if all(line.startswith("    ") for line in lines):
            parts.append(f"<pre>{escape(textwrap.dedent(block))}</pre>")
            continue
        words = str(escape(" ".join(line.strip() for line in lines)))
        parts.append("<p>" + _LITERAL.sub(r"<code>\1</code>", words) + "</p>")
    return mark_safe("".join(parts))  # every part escaped above


def without_body(response: HttpResponseBase) -> None:
    """Empty a rendered answer to HEAD; ``Content-Length`` keeps the length GET sends."""
    if isinstance(response, HttpResponse):
        length = len(response.content)
        response.content = b""
        response.headers["Content-Length"] = str(length)


class GPUMonitorAPIView(APIView):
    """Base view: authentication, permission and throttle classes from ``GPU_MONITOR``,
    falling back to the project's ``REST_FRAMEWORK`` defaults.

    Fails closed: while ``GPU_MONITOR`` is misconfigured every request is a 503 (in the
    negotiated format), raised before authentication, permissions and the handler.

    Otherwise a method the view has no handler for is a 405 with ``Allow`` before
    authentication runs: a write with a session cookie is not a 403 "CSRF Failed" (DRF
    authenticates, and so checks CSRF, before it looks for the handler). The format
    follows ``negotiation.QualityNegotiation`` (the client's ``q`` values decide).
    """

    content_negotiation_class = QualityNegotiation
    any_method = False  # True: a view that answers every method alike (the JSON 404s)

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        """DRF's, but an error whose negotiation failed (``force``) is rendered by
        ``Accept`` alone (``QualityNegotiation.error_renderer``), not by the first
        renderer: ``dashboard/?format=xml`` asked for JSON is a JSON 404."""
        try:
            return super().perform_content_negotiation(request)
        except Exception:
            if not force:
                raise
            return QualityNegotiation().error_renderer(request, list(self.get_renderers()))

    def get_view_description(self, html: bool = False) -> str:
        """The docstring as the project's ``VIEW_DESCRIPTION_FUNCTION`` gives it; for the
        browsable API as HTML (``docstring_html``), not as raw reST."""
        text: str = super().get_view_description(html=False)
        return docstring_html(text) if html else text

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        """DRF's, and an answer to HEAD without its body, as RFC 9110 has it (WSGI leaves
        that to the application; gunicorn drops the bytes and logs a line per request):
        ``Content-Length`` says what GET would send."""
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method != "HEAD":
            return response
        if getattr(response, "is_rendered", True):  # a plain HttpResponse is rendered
            without_body(response)
        else:
            response.add_post_render_callback(without_body)
        return response

    def allows(self, request: Request) -> bool:
        """Whether the view has a handler for the request's method (DRF's own test, which
        DRF makes only after authentication, permissions and throttles)."""
        method = (request.method or "").lower()
        return self.any_method or (method in self.http_method_names and hasattr(self, method))

    @functools.cached_property
    def configuration_error(self) -> str | None:
        """Computed once per request (DRF makes a view instance per request)."""
        return configuration_error()

    def get_authenticators(self) -> list[BaseAuthentication]:
        # Called by DRF before its error handling starts: must not raise.
        if self.configuration_error:
            return []
        return instances("AUTHENTICATION_CLASSES")

    def perform_authentication(self, request: Request) -> None:
        """A user who cannot be read (database-backed sessions or users while the
        database is away) is a 503, never a 500; the request goes on anonymous so the
        error page needs no database either. A method without a handler is a 405 first
        (after a misconfiguration's 503), before any authentication class runs."""
        if self.configuration_error:
            raise ServiceUnavailable(self.configuration_error)
        if not self.allows(request):
            signed_out(request)  # never read: the 405's page must not check CSRF
            raise MethodNotAllowed(request.method or "")
        try:
            super().perform_authentication(request)
        except DatabaseError as exc:
            # The text, not the exception: a record kept (a buffering handler) must not keep
            # its frames, and with them a connection attempt's socket, alive.
            logger.error("Reading the signed-in user of %s failed: %s", request.path, str(exc))
            signed_out(request)
            raise ServiceUnavailable(
                "Cannot tell who is signed in: the database did not answer "
                f"({type(exc).__name__}); see the server log."
            ) from exc

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        if self.configuration_error:
            raise ServiceUnavailable(self.configuration_error)
        return instances("PERMISSION_CLASSES")

    def check_permissions(self, request: Request) -> None:
        """A permission class that fails with anything but a refusal is a 503 (closed),
        never a 500; W002 reports it at ``check --deploy``."""
        with permission_classes_fail_closed(request):
            super().check_permissions(request)

    def get_throttles(self) -> list[BaseThrottle]:
        if self.configuration_error:
            raise ServiceUnavailable(self.configuration_error)
        return instances("THROTTLE_CLASSES")


class ProcessesAPIView(GPUMonitorAPIView):
    """Base of the process views: they name users and commands, so a client needs both
    ``PERMISSION_CLASSES`` and ``PROCESS_PERMISSION_CLASSES`` (default: admins only)."""

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        return [*super().get_permissions(), *instances("PROCESS_PERMISSION_CLASSES")]


class NotImplementedResponse(APIException):
    """501: an optional feature whose package is not installed."""

    status_code = 501
    default_code = "not_implemented"

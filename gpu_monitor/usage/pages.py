"""The usage page: ``GET usage/`` asked for by a browser.

``usage`` is one URL for people and programs, as ``dashboard`` is: a client that asks
for HTML (a browser's ``Accept: text/html``, or ``?format=html``) gets the page, which
fills itself from the same URL as JSON and from ``usage/idle``; every other client
(``Accept: application/json``, ``*/*`` as curl sends, none, ``?format=json``) gets the
API's ``UsageView``, unchanged. The API's one rule decides
(``negotiation.QualityNegotiation``: the client's ``q`` values, then the JSON renderer,
first, for ``*/*`` or ties), between the JSON renderer and the page's.
"""

from __future__ import annotations

import functools
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from rest_framework.exceptions import NotAcceptable, NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from gpu_monitor.conf import conf
from gpu_monitor.dashboard import DashboardRenderer, url_prefix
from gpu_monitor.negotiation import QualityNegotiation
from gpu_monitor.usage.views import UsageAPIView, UsageView

# The page's windows: (``since`` as the API takes it, the button's label).
WINDOWS = (("-7d", "7 d"), ("-30d", "30 d"), ("-90d", "90 d"))
REFRESH_S = 60  # the usage rows change once a tick at most; the page needs no faster


class UsagePageView(UsageAPIView):
    """An HTML page: the GPUs held idle now, bars of each user's active and idle
    GPU-hours over 7, 30 or 90 days, and the table of ``usage`` by user.

    The permissions of the usage API (``PROCESS_PERMISSION_CLASSES``, or
    ``USAGE_SELF_SERVICE`` for a signed-in user, who then sees their own row); the page
    holds no data itself, it reads the API from the browser.
    """

    renderer_classes = (DashboardRenderer,)  # errors: the dashboard's short error page
    template_name = "gpu_monitor/usage.html"
    schema = None  # an HTML page, not an operation of the JSON API

    def options(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:  # type: ignore[override]
        """The allowed methods (``Allow`` header) and no body, as the dashboard."""
        return HttpResponse(content_type="text/plain")

    def get(self, request: Request) -> Response:
        prefix = url_prefix(request)
        config = {
            "usage": reverse(f"{prefix}usage"),
            "idle": reverse(f"{prefix}usage-idle"),
            "window": WINDOWS[0][0],
            "idle_minutes": conf.get("USAGE_IDLE_MINUTES"),
            "interval": REFRESH_S,
        }
        idle_percent = conf.get("USAGE_IDLE_PERCENT")
        return Response({"config": config, "windows": WINDOWS, "idle_percent": idle_percent})


def wants_page(request: HttpRequest) -> bool:
    """Whether the API's content negotiation picks HTML over JSON for ``request``."""
    if request.method not in ("GET", "HEAD"):
        return False
    renderers = [JSONRenderer(), DashboardRenderer()]
    try:
        renderer, _ = QualityNegotiation().select_renderer(Request(request), renderers)
    except (NotFound, NotAcceptable):  # ``?format=`` of neither: the API answers
        return False
    return isinstance(renderer, DashboardRenderer)


def negotiated(api: Any, page: Any) -> Any:
    """One view for one URL: ``page`` for a browser, ``api`` for everyone else.

    It carries the API view's attributes (``cls``, ``initkwargs``, ``csrf_exempt``), so
    the OpenAPI schema and DRF's tools see ``api`` at this URL; ``Vary: Accept`` keeps a
    cache from handing a browser the JSON or a program the page.
    """

    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        chosen = page if wants_page(request) else api
        response: HttpResponseBase = chosen(request, *args, **kwargs)
        patch_vary_headers(response, ["Accept"])
        return response

    return functools.update_wrapper(view, api)


usage_or_page = negotiated(UsageView.as_view(), UsagePageView.as_view())

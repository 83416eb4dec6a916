"""GET api/gpu/usage and usage/idle: GPU-hours per user, host or GPU, and the GPUs held
idle now, read from the usage tables (no GPU and no NVML needed on the server)."""

from __future__ import annotations

import logging
import time

from rest_framework.exceptions import ParseError, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from gpu_monitor.api import refused_process_permissions
from gpu_monitor.conf import conf
from gpu_monitor.params import parse_window, shown, whole_number
from gpu_monitor.schema import document
from gpu_monitor.stored import StoredAPIView, known_host_parameter, name_parameter
from gpu_monitor.usage.limits import DEFAULT_SPAN_S, MAX_IDLE_MINUTES
from gpu_monitor.usage.models import MAX_USER_LENGTH, Hold, Usage
from gpu_monitor.usage.report import idle_now, usage_report
from gpu_monitor.usage.schema import idle_docs, usage_docs
from gpu_monitor.usage.types import BY, UNKNOWN_USER

logger = logging.getLogger(__name__)


def is_reserved(name: str) -> bool:
    """Whether ``name`` is one the usage writer records for a process whose owner it
    cannot name (``unknown``, a bare uid such as ``1000``, nothing): rows under it are
    nobody's, so no signed-in user is matched to them by self-service."""
    return not name or name.isdecimal() or name == UNKNOWN_USER


def recorded_host(request: Request) -> str | None:
    """``?host=``: None when absent; a 404 naming a host that never recorded usage (no
    period and no hold: a host whose GPUs no process ever used too)."""
    return known_host_parameter(request, (Usage, Hold), "GPU usage")


class UsageAPIView(StoredAPIView):
    """Base of the usage views: they name people, so a client needs
    ``PROCESS_PERMISSION_CLASSES`` as for the processes; with ``USAGE_SELF_SERVICE`` a
    signed-in user refused by them sees their own usage only (``self.only_user``)."""

    only_user: str | None = None

    database_what = "GPU usage"
    database_logger = logger

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)  # PERMISSION_CLASSES; fails closed
        refused = refused_process_permissions(request, self)  # a broken class: 503
        if not refused:
            return
        if conf.get("USAGE_SELF_SERVICE") and request.user and request.user.is_authenticated:
            name = request.user.get_username()
            if is_reserved(name):
                raise PermissionDenied(
                    f"user: {shown(name)} is a name the usage records for processes whose "
                    "owner it could not name; self-service is refused to it."
                )
            self.only_user = name
            return
        self.permission_denied(
            request,
            message=getattr(refused[0], "message", None),
            code=getattr(refused[0], "code", None),
        )

    def user_filter(self, request: Request) -> str | None:
        """``?user=``, or for a self-service client their own name (another is a 403)."""
        user = name_parameter(request, "user", MAX_USER_LENGTH)
        if self.only_user is None or user in (None, self.only_user):
            return user if self.only_user is None else self.only_user
        raise PermissionDenied("user: you may see your own usage only.")


@document("usage", usage_docs)
class UsageView(UsageAPIView):
    """GPU-hours ``?by=user|host|gpu|host,user`` over ``?since=&until=`` (default the last
    7 days), optionally of one ``?host=`` and one ``?user=``; most GPU-hours first."""

    def get(self, request: Request) -> Response:
        params = request.query_params
        now = int(time.time())
        since, until = parse_window(params, now, DEFAULT_SPAN_S)
        by = params.get("by") or "user"
        if by not in BY:
            raise ParseError(f"by: one of {', '.join(BY)}, not {shown(by)}")
        host = recorded_host(request)
        body = usage_report(
            since=since, until=until, by=by, host=host, user=self.user_filter(request)
        )
        return Response(body)


@document("usage_idle", idle_docs)
class IdleView(UsageAPIView):
    """The GPUs held now by a user whose every sample of the last ``?minutes=`` (1 to
    10080, default ``USAGE_IDLE_MINUTES``: 60 unless set) was idle, optionally of one ``?host=``."""

    def get(self, request: Request) -> Response:
        text = request.query_params.get("minutes")
        minutes = conf.get("USAGE_IDLE_MINUTES") if text is None else whole_number(text)
        if minutes is None or not 1 <= minutes <= MAX_IDLE_MINUTES:
            raise ParseError(
                f"minutes: a whole number from 1 to {MAX_IDLE_MINUTES}, not {shown(text or '')}"
            )
        host = recorded_host(request)
        return Response(idle_now(minutes=minutes, host=host, user=self.user_filter(request)))

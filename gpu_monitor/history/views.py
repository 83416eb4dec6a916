"""GET api/gpu/history (downsampled in the database) and GET api/gpu/events."""

from __future__ import annotations

import datetime
import logging
import math
import re
import socket
import time

from django.db import DatabaseError
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from gpu_monitor.api import GPUMonitorAPIView, ServiceUnavailable
from gpu_monitor.history.aggregate import (
    Totals,
    from_rollups,
    from_samples,
    merge,
    rolled_up_until,
)
from gpu_monitor.history.models import (
    ROLLUP_SECONDS,
    SECONDS_PER_UNIT,
    Event,
    Rollup,
    Sample,
)
from gpu_monitor.history.schema import events_docs, history_docs
from gpu_monitor.history.serializers import EventSerializer, HistorySerializer
from gpu_monitor.history.types import History, HistorySeries
from gpu_monitor.params import UUID_PATTERN, shown, whole_number
from gpu_monitor.schema import document

logger = logging.getLogger(__name__)
DEFAULT_SPAN_S = 3600
DEFAULT_POINTS = 300
MAX_POINTS = 2000
RELATIVE = re.compile(r"-(\d{1,9})([smhdw])")
LAST_EPOCH = 253402300799  # 9999-12-31T23:59:59Z: past it, no datetime can say it


class HistoryAPIView(GPUMonitorAPIView):
    """Base of the history views: a database that cannot answer (tables not migrated, a
    server down) is a JSON 503 that says so, never a 500."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DatabaseError):
            logger.error("GPU history query failed: %s", exc)
            exc = ServiceUnavailable(
                f"The GPU history database cannot answer ({type(exc).__name__}); "
                "run manage.py migrate, and check the database."
            )
        return super().handle_exception(exc)


def parse_time(name: str, text: str | None, now: int, default: int) -> int:
    """``text`` as Unix seconds: ISO 8601 (UTC when no offset is given), ``now`` or a
    time relative to now (``-90s``, ``-30m``, ``-1h``, ``-7d``, ``-2w``); 400 otherwise."""
    if text is None or text == "":
        return default
    match = RELATIVE.fullmatch(text)
    if match:
        epoch = now - int(match.group(1)) * SECONDS_PER_UNIT[match.group(2)]
    elif text == "now":
        epoch = now
    else:
        try:
            parsed = parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise ParseError(
                f"{name}: not an ISO 8601 time, 'now' or a relative time like -1h: {shown(text)}"
            )
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        try:
            epoch = math.floor(parsed.timestamp())
        except (OverflowError, ValueError) as exc:
            raise ParseError(f"{name}: out of range: {shown(text)}") from exc
    if not 0 <= epoch <= LAST_EPOCH:
        raise ParseError(f"{name}: before 1970 or after 9999: {shown(text)}")
    return epoch


def iso(epoch: int) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def host_of(request: Request) -> str:
    host = request.query_params.get("host") or socket.gethostname()
    if len(host) > 255:
        raise ParseError(f"host: longer than 255 characters: {shown(host)}")
    return host


def recorded_gpu(host: str, key: str | None) -> str | None:
    """The UUID of the recorded GPU ``key`` (index or UUID) on ``host``; None for every
    GPU. 404 when that host has recorded no such GPU."""
    if key is None or key == "":
        return None
    index = whole_number(key)
    samples = Sample.objects.filter(host=host)
    if index is not None:
        latest = samples.filter(gpu_index=index).order_by("-epoch")
        uuid = latest.values_list("gpu_uuid", flat=True).first()
        if uuid is None:
            raise NotFound(f"No GPU with index {shown(key)} recorded on host {host!r}.")
        return uuid
    if UUID_PATTERN.fullmatch(key) and samples.filter(gpu_uuid=key).exists():
        return key
    raise NotFound(
        f"No GPU {shown(key)} recorded on host {host!r}: use an index or a UUID (GPU-...)."
    )


def plan_buckets(since: int, until: int, points: int) -> tuple[int, int, int]:
    """The step (seconds) and the first and last bucket numbers: at most ``points``
    buckets of ``step`` seconds, aligned on multiples of the step, cover the range."""
    step = max(1, math.ceil((until - since) / points))
    while (until - 1) // step - since // step + 1 > points:
        step += 1
    return step, since // step, (until - 1) // step


@document("history", history_docs)
class HistoryView(HistoryAPIView):
    """Downsampled history of a host's GPUs, columnar; gaps are null, never interpolated.

    ``?gpu=<index|uuid>&since=&until=&points=&host=``: ``since``/``until`` ISO 8601 or
    relative (``-1h``, ``-7d``), default the last hour; ``points`` 1 to 2000 (default
    300); ``host`` default this server's host name. Buckets are grouped in the database.
    """

    def get(self, request: Request) -> Response:
        params = request.query_params
        now = int(time.time())
        until = parse_time("until", params.get("until"), now, now)
        since = parse_time("since", params.get("since"), now, until - DEFAULT_SPAN_S)
        if since >= until:
            raise ParseError(f"since: must be before until ({iso(since)} >= {iso(until)})")
        points_text = params.get("points")
        points = DEFAULT_POINTS if points_text is None else whole_number(points_text)
        if points is None or not 1 <= points <= MAX_POINTS:
            raise ParseError(
                f"points: a whole number from 1 to {MAX_POINTS}, not {shown(points_text or '')}"
            )
        host = host_of(request)
        uuid = recorded_gpu(host, params.get("gpu"))
        step, series = series_of(host, uuid, since, until, points)
        history = History(
            host=host, since=iso(since), until=iso(until), step_seconds=step, series=series
        )
        return Response(HistorySerializer(history).data)


def series_of(
    host: str, uuid: str | None, since: int, until: int, points: int
) -> tuple[int, list[HistorySeries]]:
    """The step and one series per GPU, aggregated by the database.

    Buckets of at least ``ROLLUP_SECONDS`` read the rollups ``gpu_record`` wrote for the
    periods that are over (the step rounded up to whole periods), and the samples only
    after the last rollup; shorter buckets read the samples.
    """
    step, first, last = plan_buckets(since, until, points)
    samples = Sample.objects.filter(host=host)
    rollups = Rollup.objects.filter(host=host)
    if uuid is not None:
        samples, rollups = samples.filter(gpu_uuid=uuid), rollups.filter(gpu_uuid=uuid)
    boundary = rolled_up_until(host) if step >= ROLLUP_SECONDS else None
    if boundary is None or boundary <= since:
        totals = from_samples(samples.filter(epoch__gte=since, epoch__lt=until), step)
    else:
        step = math.ceil(step / ROLLUP_SECONDS) * ROLLUP_SECONDS
        first, last = since // step, (until - 1) // step
        # Whole periods: the rollup of a period that starts before ``since`` covers
        # samples before it too, as the bucket it falls in does.
        totals = from_rollups(
            rollups.filter(epoch__gte=since // step * step, epoch__lt=until), step
        )
        merge(totals, from_samples(samples.filter(epoch__gte=boundary, epoch__lt=until), step))
    by_gpu: dict[str, dict[int, Totals]] = {}
    for (gpu, bucket), values in totals.items():  # one row per GPU and bucket
        by_gpu.setdefault(gpu, {})[bucket] = values
    buckets = range(first, last + 1)
    t = [b * step for b in buckets]
    identities = identities_of(host, list(by_gpu))
    series = []
    empty = [None] * 8
    for gpu, found in by_gpu.items():
        rows = [found.get(b, empty) for b in buckets]
        index, name = identities[gpu]
        series.append(
            HistorySeries(
                gpu_uuid=gpu,
                gpu_index=index,
                name=name,
                t=t,
                utilization_percent=[round(r[0] / r[1], 1) if r[1] else None for r in rows],
                utilization_percent_max=[r[2] for r in rows],
                used_memory_mb=[r[3] for r in rows],
                total_memory_mb=[r[4] for r in rows],
                temperature_c=[r[5] for r in rows],
                power_draw_w=[round(r[6] / r[7], 2) if r[7] else None for r in rows],
            )
        )
    series.sort(key=lambda s: (s.gpu_index, s.gpu_uuid))
    return step, series


def identities_of(host: str, uuids: list[str]) -> dict[str, tuple[int, str]]:
    """The index and name of each GPU at its latest sample: one query for the GPUs of
    the host's latest tick, one more for each GPU that was not in it."""
    samples = Sample.objects.filter(host=host)
    latest = samples.order_by("-epoch").values_list("epoch", flat=True).first() or 0
    found = {
        uuid: (index, name)
        for uuid, index, name in samples.filter(epoch=latest, gpu_uuid__in=uuids).values_list(
            "gpu_uuid", "gpu_index", "name"
        )
    }
    for uuid in set(uuids) - set(found):
        last = samples.filter(gpu_uuid=uuid).order_by("-epoch").values_list("gpu_index", "name")
        found[uuid] = last.first() or (0, "")
    return found


class EventPagination(PageNumberPagination):
    """100 events a page (``?page=``), up to 1000 with ``?page_size=``."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


@document("events", events_docs)
class EventListView(HistoryAPIView):
    """Recorded events, newest first, paginated: ``?since=&kind=&gpu=&host=``."""

    pagination_class = EventPagination

    def get(self, request: Request) -> Response:
        params = request.query_params
        host = host_of(request)
        events = Event.objects.filter(host=host).order_by("-epoch", "-id")
        if params.get("since"):
            now = int(time.time())
            events = events.filter(epoch__gte=parse_time("since", params["since"], now, 0))
        kind = params.get("kind")
        if kind is not None:
            if kind not in Event.Kind.values:
                raise ParseError(f"kind: one of {', '.join(Event.Kind.values)}, not {shown(kind)}")
            events = events.filter(kind=kind)
        gpu = params.get("gpu")
        if gpu:
            events = events.filter(gpu_uuid=recorded_event_gpu(host, gpu))
        paginator = EventPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        assert page is not None  # a pagination class is set
        return paginator.get_paginated_response(EventSerializer(page, many=True).data)


def recorded_event_gpu(host: str, key: str) -> str:
    """The UUID of GPU ``key`` as the events or samples of ``host`` know it; 404 if none."""
    index = whole_number(key)
    if index is not None:
        events = Event.objects.filter(host=host, gpu_index=index).exclude(gpu_uuid="")
        uuid = events.order_by("-epoch").values_list("gpu_uuid", flat=True).first()
        if uuid is not None:
            return uuid
    elif UUID_PATTERN.fullmatch(key) and Event.objects.filter(host=host, gpu_uuid=key).exists():
        return key
    found = recorded_gpu(host, key)
    assert found is not None
    return found

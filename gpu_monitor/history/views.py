"""GET api/gpu/history (downsampled in the database) and GET api/gpu/events."""

from __future__ import annotations

import functools
import logging
import math
import operator
import socket
import time
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

from django.db import connections, router
from django.db.models import Q
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.request import Request
from rest_framework.response import Response

from gpu_monitor.history.aggregate import (
    Row,
    keyed,
    merge,
    quoted,
    rolled_up_until,
    totals,
)
from gpu_monitor.history.limits import DEFAULT_POINTS, DEFAULT_SPAN_S, MAX_INDEX, MAX_POINTS
from gpu_monitor.history.models import ROLLUP_SECONDS, Event, Rollup, Sample
from gpu_monitor.history.schema import events_docs, history_docs
from gpu_monitor.history.serializers import EventSerializer, HistorySerializer
from gpu_monitor.history.types import History, HistorySeries
from gpu_monitor.manager import GPUNotFoundError, get_manager
from gpu_monitor.params import (
    UUID_PATTERN,
    iso,
    moment,
    parse_time,
    parse_window,
    shown,
    whole_number,
)
from gpu_monitor.schema import document
from gpu_monitor.stored import PagePagination, StoredAPIView, known_host_parameter

logger = logging.getLogger(__name__)


class HistoryAPIView(StoredAPIView):
    """Base of the history views: a database that cannot answer (tables not migrated, a
    server down) is a JSON 503 that says so, never a 500."""

    database_what = "GPU history"
    database_logger = logger


def host_of(request: Request) -> str:
    """The recorded host a request asks about (``?host=``), this server's by default; a
    404 naming a ``?host=`` that never recorded a sample, a rollup or an event."""
    host = known_host_parameter(request, (Sample, Rollup, Event), "GPU history")
    return host or socket.gethostname()


@dataclass(frozen=True)
class RecordedGPU:
    """A GPU that ``host`` recorded samples or events of: its UUID (None when only events
    recorded without one name it: a GPU lost before the recorder read its UUID) and its
    latest recorded index."""

    uuid: str | None
    index: int | None

    def events(self) -> Q:
        """Its events: by UUID, and those recorded with its index but no UUID."""
        by_uuid = Q(gpu_uuid=self.uuid) if self.uuid else Q(pk__in=[])
        return by_uuid if self.index is None else by_uuid | Q(gpu_uuid="", gpu_index=self.index)


def recorded_gpu(host: str, key: str | None) -> RecordedGPU | None:
    """The GPU ``key`` (an index, a GPU UUID or a MIG device's UUID) as ``host`` recorded
    it; None (every GPU) without a key. 404 when that host has recorded no such GPU.

    An index, a UUID and the UUID of one of its MIG devices name the same GPU: each is
    turned into the GPU's UUID (the latest one recorded at that index), and the UUID into
    the GPU's latest recorded index.
    """
    if key is None or key == "":
        return None
    index, uuid = whole_number(key), None
    if index is None and UUID_PATTERN.fullmatch(key):
        gpu = gpu_holding(key)
        index, uuid = (gpu, None) if isinstance(gpu, int) else (None, gpu)
    if index is not None and index <= MAX_INDEX:
        latest = latest_recorded(host, gpu_index=index)
        if latest is not None:
            uuid = latest[0]
        elif Event.objects.filter(host=host, gpu_index=index).exists():
            return RecordedGPU(uuid=None, index=index)
    if uuid is not None:
        latest = latest_recorded(host, gpu_uuid=uuid)
        if latest is not None:
            return RecordedGPU(uuid=uuid, index=latest[1])
    if whole_number(key) is not None:
        raise NotFound(f"No GPU with index {shown(key)} recorded on host {host!r}.")
    raise NotFound(
        f"No GPU {shown(key)} recorded on host {host!r}: use an index or a UUID "
        "(GPU-..., or MIG-... for the GPU holding that MIG device)."
    )


def latest_recorded(host: str, **match: object) -> tuple[str, int | None] | None:
    """The UUID and index of ``host``'s latest sample or event that names a GPU by UUID
    and matches ``match``; None when there is none."""
    found = []
    for model in (Sample, Event):
        rows = model.objects.filter(host=host, **match).exclude(gpu_uuid="")
        row = rows.order_by("-epoch").values_list("epoch", "gpu_uuid", "gpu_index").first()
        if row is not None:
            found.append(row)
    if not found:
        return None
    _, uuid, index = max(found, key=lambda row: row[0])
    return uuid, index


def gpu_holding(uuid: str) -> str | int:
    """The UUID of the GPU ``uuid`` names: itself, or for a MIG device its GPU's (its
    index where NVML cannot read the GPU's UUID, a lost GPU). Samples and events are
    recorded per GPU, never per MIG device, so only NVML on this server knows which GPU
    holds a MIG device: 404 where it does not (no NVML, or a MIG device of another host).
    """
    if not uuid.startswith("MIG-"):
        return uuid
    try:
        device = get_manager().get_device_by_uuid(uuid)
    except GPUNotFoundError as exc:
        raise NotFound(
            f"No GPU of this server holds MIG device {shown(uuid)} ({exc}): the history "
            "is recorded per GPU; use the GPU's index or UUID."
        ) from exc
    return device.uuid or device.index


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
        since, until = parse_window(params, now, DEFAULT_SPAN_S)
        points_text = params.get("points")
        points = DEFAULT_POINTS if points_text is None else whole_number(points_text)
        if points is None or not 1 <= points <= MAX_POINTS:
            raise ParseError(
                f"points: a whole number from 1 to {MAX_POINTS}, not {shown(points_text or '')}"
            )
        host = host_of(request)
        gpu = recorded_gpu(host, params.get("gpu"))
        step, series = series_of(host, gpu, since, until, points)
        history = History(
            host=host, since=iso(since), until=iso(until), step_seconds=step, series=series
        )
        return Response(HistorySerializer(history).data)


def series_of(
    host: str, gpu: RecordedGPU | None, since: int, until: int, points: int
) -> tuple[int, list[HistorySeries]]:
    """The step and one series per GPU (every GPU, or ``gpu``), aggregated by the database.

    Buckets of at least ``ROLLUP_SECONDS`` read the rollups ``gpu_record`` wrote for the
    periods that are over (the step rounded up to whole periods), and the samples only
    from the end of the last rollup; shorter buckets read the samples.
    """
    step, first, last = plan_buckets(since, until, points)
    uuid = None if gpu is None else gpu.uuid
    boundary = rolled_up_until(host) if step >= ROLLUP_SECONDS else None
    if gpu is not None and not uuid:
        rows: list[Row] = []  # a GPU known only from events has no samples
    elif boundary is None or boundary <= since:
        rows = totals(Sample, host, since, until, step, uuid)
    else:
        step = math.ceil(step / ROLLUP_SECONDS) * ROLLUP_SECONDS
        first, last = since // step, (until - 1) // step
        # Whole periods: the rollup of a period that starts before ``since`` covers
        # samples before it too, as the bucket it falls in does. Only the rollups below
        # the boundary read above: a period rolled up since then is read from its
        # samples, never from both.
        periods = totals(Rollup, host, since // step * step, min(boundary, until), step, uuid)
        found = keyed(periods)
        merge(found, keyed(totals(Sample, host, boundary, until, step, uuid)))
        rows = [(*key, *values) for key, values in found.items()]
    buckets = last - first + 1
    uuids, columns = columns_of(rows, first, buckets)
    identities = identities_of(host, uuids)
    t = list(range(first * step, (last + 1) * step, step))
    _, _, u_sum, u_count, u_max, memory, total, temperature, p_sum, p_count = columns or [()] * 10
    utilization, power = averages(u_sum, u_count, 1), averages(p_sum, p_count, 2)
    series = []
    for start in range(0, len(uuids) * buckets, buckets):
        uuid, end = uuids[start // buckets], start + buckets
        index, name = identities[uuid]
        series.append(
            HistorySeries(
                gpu_uuid=uuid,
                gpu_index=index,
                name=name,
                t=t,
                utilization_percent=utilization[start:end],
                utilization_percent_max=list(u_max[start:end]),
                used_memory_mb=list(memory[start:end]),
                total_memory_mb=list(total[start:end]),
                temperature_c=list(temperature[start:end]),
                power_draw_w=power[start:end],
            )
        )
    series.sort(key=lambda s: (s.gpu_index, s.gpu_uuid))
    return step, series


def columns_of(rows: list[Row], first: int, buckets: int) -> tuple[list[str], list[Row]]:
    """The GPUs, and the columns of their rows (UUID, bucket, the Totals positions):
    ``buckets`` rows per GPU from bucket ``first``, one GPU after the other, ``EMPTY``
    rows in the gaps. One transposition by ``zip`` for every GPU; rows that come complete
    and in order (SQLite groups them so) are not put in place one by one first."""
    gpus = len(rows) // buckets
    if rows and len(rows) == gpus * buckets and rows[0][1] == first:
        columns = list(zip(*rows, strict=True))
        uuids = list(columns[0][::buckets])
        in_place = (
            columns[1] == tuple(range(first, first + buckets)) * gpus
            and columns[0] == tuple(chain.from_iterable(map(repeat, uuids, repeat(buckets))))
            and len(set(uuids)) == gpus
        )
        if in_place:
            return uuids, columns
    by_gpu = bucketed(rows, first, buckets)
    return list(by_gpu), list(zip(*chain.from_iterable(by_gpu.values()), strict=True))


# The row of a bucket no sample fell in: every value null, every count 0.
EMPTY: Row = (None, None, None, 0, None, None, None, None, None, 0)


def bucketed(rows: list[Row], first: int, buckets: int) -> dict[str, list[Row]]:
    """Per GPU (in the order they first come), its row of each bucket from ``first``:
    ``EMPTY`` where it has none. A GPU keeps its place even when none of its rows falls
    in the range (SQL's division truncates where Python's floors: before 1970)."""
    by_gpu: dict[str, list[Row]] = {}
    for row in rows:
        found = by_gpu.get(row[0])
        if found is None:
            found = by_gpu[row[0]] = [EMPTY] * buckets
        position = row[1] - first
        if 0 <= position < buckets:
            found[position] = row
    return by_gpu


def averages(sums: tuple[Any, ...], counts: tuple[Any, ...], digits: int) -> list[Any]:
    """``sums[i] / counts[i]`` rounded to ``digits``, None where the count is 0.

    Without a gap the work is done by ``map`` (no Python code per value), and a column
    of whole numbers (one sample per bucket: ``n / 1``) is its own rounding: ``round``
    with digits is not called for it (docs/benchmarks.md has its cost).
    """
    if not all(counts):
        return [round(s / c, digits) if c else None for s, c in zip(sums, counts, strict=True)]
    quotients = list(map(operator.truediv, sums, counts))
    try:
        whole = all(map(float.is_integer, quotients))
    except TypeError:  # a Decimal: PostgreSQL's sum of a bigint column (rollups)
        whole = False
    return quotients if whole else list(map(round, quotients, repeat(digits)))


@functools.lru_cache(maxsize=32)
def identities_sql(alias: str, gpus: int) -> str:
    """The statement of ``identities_of`` for ``gpus`` GPUs on ``alias``: parameters
    host and UUID, once per GPU."""
    table, columns = quoted(Sample, alias)
    pk, uuid, index, name, host, epoch = (
        columns[field] for field in ("id", "gpu_uuid", "gpu_index", "name", "host", "epoch")
    )
    newest = (
        f"(SELECT U0.{pk} FROM {table} U0 WHERE (U0.{host} = %s AND U0.{uuid} = %s) "
        f"ORDER BY U0.{epoch} DESC LIMIT 1)"
    )
    return (
        f"SELECT {uuid}, {index}, {name} FROM {table} WHERE {pk} IN ({', '.join([newest] * gpus)})"
    )


def identities_of(host: str, uuids: list[str]) -> dict[str, tuple[int, str]]:
    """The index and name of each GPU at its latest sample, in one query: each GPU's
    latest sample is one lookup in the (host, GPU, epoch) index, then by primary key
    (with a host filter too, SQLite walks every row of the host)."""
    if not uuids:
        return {}
    alias = router.db_for_read(Sample)
    with connections[alias].cursor() as cursor:
        params = [value for uuid in uuids for value in (host, uuid)]
        cursor.execute(identities_sql(alias, len(uuids)), params)
        found = {uuid: (index, name) for uuid, index, name in cursor.fetchall()}
    # A GPU with rollups but no sample left (retention) has no identity to show.
    return {uuid: found.get(uuid, (0, "")) for uuid in uuids}


def events_host(request: Request) -> str | None:
    """The host whose events a request asks for: ``?host=``; without it every host's
    (None), unless ``?gpu=`` names a GPU: a GPU's index or UUID is looked up on a host,
    this server's by default as for the history."""
    params = request.query_params
    return host_of(request) if params.get("host") or params.get("gpu") else None


@document("events", events_docs)
class EventListView(HistoryAPIView):
    """Recorded events, newest first, paginated: ``?since=&kind=&gpu=&host=``; every
    host's without ``host`` (and without ``gpu``)."""

    pagination_class = PagePagination

    def get(self, request: Request) -> Response:
        params = request.query_params
        host = events_host(request)
        since = parse_time("since", params.get("since"), int(time.time()), 0)
        if host is None:
            # The whole fleet, read newest first along the (timestamp) index: the
            # timestamp is the epoch's moment, so the order is the same.
            events = Event.objects.order_by("-timestamp", "-id")
            if since:
                events = events.filter(timestamp__gte=moment(since))
        else:
            events = Event.objects.filter(host=host).order_by("-epoch", "-id")
            if since:
                events = events.filter(epoch__gte=since)
        kind = params.get("kind")
        if kind is not None:
            if kind not in Event.Kind.values:
                raise ParseError(f"kind: one of {', '.join(Event.Kind.values)}, not {shown(kind)}")
            events = events.filter(kind=kind)
        if host is not None:
            gpu = recorded_gpu(host, params.get("gpu"))
            if gpu is not None:
                events = events.filter(gpu.events())
        paginator = PagePagination()
        page = paginator.page_of(events, request, self)
        return paginator.get_paginated_response(EventSerializer(page, many=True).data)

"""What the ingest tests share: a host token, ticks sampled from the fake NVML as
``gpu_record --push`` samples them, and a POST of their body."""

from __future__ import annotations

import gzip
import json
from typing import Any

from django.test import Client
from django.urls import reverse

from gpu_monitor.fleet import tokens
from gpu_monitor.history import wire
from gpu_monitor.history.buffer import Tick
from gpu_monitor.history.sampler import Sampler
from gpu_monitor.manager import GPUManager

HOST = "node-1"


def sampler(host: str = HOST, interval: int = 10, processes: bool = False) -> Sampler:
    return Sampler(GPUManager(), host=host, interval=interval, processes=processes, push=True)


def ticks(*epochs: int, host: str = HOST) -> list[Tick]:
    read = sampler(host)
    return [read.snapshot(epoch) for epoch in epochs]


def body(read: list[Tick], host: str = HOST, dropped: int = 0) -> dict[str, Any]:
    """The JSON body of ``read`` as the node sends it."""
    encoded = json.dumps(wire.encode(host, 10, False, read, dropped))
    parsed: dict[str, Any] = json.loads(encoded)
    return parsed


def token_for(host: str = HOST) -> str:
    return tokens.create(host)[1]


def post(
    data: dict[str, Any] | bytes,
    token: str | None,
    *,
    compress: bool = False,
    content_type: str = "application/json",
    **headers: str,
) -> Any:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    if compress:
        raw = gzip.compress(raw)
        headers.setdefault("HTTP_CONTENT_ENCODING", "gzip")
    if token is not None:
        headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {token}")
    return Client().post(reverse("gpu_monitor:ingest"), raw, content_type=content_type, **headers)

"""fleet.ingest.read_body: a body that a server's stream gives a little at a time is
read whole, and never past the limit."""

from __future__ import annotations

import gzip
import io

import pytest
from django.core.handlers.wsgi import WSGIRequest
from django.test import RequestFactory

from gpu_monitor.fleet.ingest import TooLarge, read_body


class Trickle(io.BytesIO):
    """A stream that gives at most 100 bytes a read."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(100 if size is None or size < 0 else min(size, 100))


def request_of(raw: bytes, **headers: str) -> tuple[WSGIRequest, Trickle]:
    stream = Trickle(raw)
    request = RequestFactory().post("/", content_type="application/json", **headers)
    request.META["wsgi.input"] = stream
    request.META["CONTENT_LENGTH"] = str(len(raw))
    return WSGIRequest(request.META), stream


def test_a_body_given_a_little_at_a_time_is_read_whole() -> None:
    raw = b"x" * 5000
    request, _ = request_of(raw)

    assert read_body(request, 5000) == raw


def test_a_gzipped_body_given_a_little_at_a_time_is_read_whole() -> None:
    raw = b'{"a": 1}' * 500
    request, _ = request_of(gzip.compress(raw), HTTP_CONTENT_ENCODING="gzip")

    assert read_body(request, 5000) == raw


def test_a_content_length_over_the_limit_reads_nothing() -> None:
    request, stream = request_of(b"x" * 1000)

    with pytest.raises(TooLarge):
        read_body(request, 999)

    assert stream.tell() == 0

"""POST api/gpu/ingest's refusals: each fault its status and a detail that says it,
never a 500 (interfaces of issue 30; docs/api.md)."""

from __future__ import annotations

import gzip
import json
import zlib
from types import ModuleType

import pytest
from django.core.cache import cache
from django.db import OperationalError
from django.test import Client, override_settings
from django.urls import reverse

from gpu_monitor.fleet import tokens
from gpu_monitor.history import store
from gpu_monitor.history.models import Sample
from tests.fleet.ingest_helpers import HOST, body, post, ticks, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_throttle_history() -> None:
    cache.clear()


def test_no_token_is_a_401_that_asks_for_a_bearer_token(fake_nvml: ModuleType) -> None:
    response = post(body(ticks(1000)), None)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert not Sample.objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        "Bearer gpumon_not-a-token",
        "Bearer something-else",
        "Bearer " + "x" * 5000,
        "Bearer two words",
    ],
)
def test_a_wrong_token_is_a_401(fake_nvml: ModuleType, header: str) -> None:
    token_for()

    response = post(body(ticks(1000)), None, HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["detail"] in (
        "Unknown host token.",
        "Authorization must be 'Bearer' and one host token.",
    )
    assert not Sample.objects.exists()


def test_a_revoked_token_is_a_401_that_says_revoked(fake_nvml: ModuleType) -> None:
    token = token_for()
    tokens.revoke(host=HOST)

    response = post(body(ticks(1000)), token)

    assert response.status_code == 401
    assert "was revoked at" in response.json()["detail"]
    assert not Sample.objects.exists()


def test_another_hosts_body_is_a_403(fake_nvml: ModuleType) -> None:
    token = token_for("node-2")

    response = post(body(ticks(1000)), token)

    assert response.status_code == 403
    assert response.json() == {"detail": "This token writes host 'node-2' only, not 'node-1'."}
    assert not Sample.objects.exists()


def test_a_get_is_a_405(fake_nvml: ModuleType) -> None:
    response = Client().get(reverse("gpu_monitor:ingest"))

    assert response.status_code == 405


def test_a_body_that_is_not_json_by_its_type_is_a_415(fake_nvml: ModuleType) -> None:
    response = post(b"epoch=1000", token_for(), content_type="text/plain")

    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]


def test_an_encoding_other_than_gzip_is_a_415(fake_nvml: ModuleType) -> None:
    response = post(body(ticks(1000)), token_for(), HTTP_CONTENT_ENCODING="br")

    assert response.status_code == 415
    assert response.json()["detail"] == "Content-Encoding 'br' is not supported: gzip or none."


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"{not json", "The body is not JSON: "),
        (b"\xff\xfe", "The body is not JSON: "),
        (b" ", "The body is not JSON: "),
    ],
)
def test_a_body_that_is_not_json_is_a_400(fake_nvml: ModuleType, raw: bytes, says: str) -> None:
    response = post(raw, token_for())

    assert response.status_code == 400
    assert response.json()["detail"].startswith(says)


def test_bad_gzip_is_a_400(fake_nvml: ModuleType) -> None:
    whole = gzip.compress(json.dumps(body(ticks(1000))).encode())
    for raw in (b"not gzip at all", whole[: len(whole) // 2], whole + b"trailing"):
        response = post(raw, token_for(), HTTP_CONTENT_ENCODING="gzip")

        assert response.status_code == 400, raw[:20]
        assert response.json()["detail"].startswith("The body is not valid gzip")
    assert not Sample.objects.exists()


def test_a_gzipped_body_is_written(fake_nvml: ModuleType) -> None:
    response = post(body(ticks(1000)), token_for(), compress=True)

    assert response.status_code == 200
    assert response.json()["written"] == 1


def test_an_invalid_field_is_a_400_naming_its_place(fake_nvml: ModuleType) -> None:
    sent = body(ticks(1000, 1010))
    sent["ticks"][1]["devices"][0]["temperature_c"] = "hot"

    response = post(sent, token_for())

    assert response.status_code == 400
    assert response.json()["detail"].startswith("ticks[1].devices[0].temperature_c: ")
    assert not Sample.objects.exists()  # nothing of the body is written


@override_settings(GPU_MONITOR={"INGEST_MAX_BYTES": 4096})
def test_a_body_over_the_limit_is_a_413_by_its_content_length(fake_nvml: ModuleType) -> None:
    response = post(b"{}", token_for(), CONTENT_LENGTH="4097")

    assert response.status_code == 413
    assert response.json() == {
        "detail": "The body is 4097 bytes, over the limit of 4096 (INGEST_MAX_BYTES)."
    }


@override_settings(GPU_MONITOR={"INGEST_MAX_BYTES": 4096})
def test_a_body_over_the_limit_is_a_413_compressed_or_not(fake_nvml: ModuleType) -> None:
    sent = body(ticks(*range(1000, 1100, 10)))
    raw = json.dumps(sent).encode()
    assert len(raw) > 4096 >= len(gzip.compress(raw))

    plain = post(raw, token_for())
    compressed = post(raw, token_for(), compress=True)

    assert plain.status_code == compressed.status_code == 413
    assert "over the limit of 4096" in plain.json()["detail"]
    assert compressed.json()["detail"] == (
        "The body decompresses to over the limit of 4096 bytes (INGEST_MAX_BYTES)."
    )


def test_a_gzip_bomb_stops_at_the_limit(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = gzip.compress(b"0" * 10_000_000)  # 10 MB of zeros, about 10 kB compressed
    sizes: list[int] = []
    real = zlib.decompressobj

    class Counted:
        def __init__(self, *args: int) -> None:
            self.inner = real(*args)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self.inner.decompress(data, max_length)
            sizes.append(len(out))
            return out

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

    monkeypatch.setattr(zlib, "decompressobj", Counted)

    response = post(bomb, token_for(), HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 413
    assert "decompresses to over the limit of 8388608" in response.json()["detail"]
    assert sizes == [8 * 1024 * 1024 + 1]  # never the whole 10 MB


def test_a_body_without_content_length_is_a_411(fake_nvml: ModuleType) -> None:
    response = post(b"{}", token_for(), CONTENT_LENGTH="")

    assert response.status_code == 411


@pytest.mark.parametrize(
    "failure",
    [OperationalError("database is locked"), OperationalError("connection refused")],
)
def test_a_database_that_cannot_write_is_a_503_with_retry_after(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    token = token_for()

    def down(host: str, using: str) -> int:
        raise failure

    monkeypatch.setattr(store, "newest_epoch", down)

    response = post(body(ticks(1000)), token)

    assert response.status_code == 503
    assert response.json() == {
        "detail": "The GPU fleet database did not answer (OperationalError); see the server log."
    }
    assert 5 <= int(response["Retry-After"]) <= 15
    assert not Sample.objects.exists()


def test_a_database_down_while_reading_the_token_is_a_503_with_retry_after(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = token_for()

    def down(token: str) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(tokens, "find", down)

    response = post(body(ticks(1000)), token)

    assert response.status_code == 503
    assert 5 <= int(response["Retry-After"]) <= 15


def test_a_misconfigured_site_is_a_503_with_retry_after(fake_nvml: ModuleType) -> None:
    token = token_for()
    with override_settings(GPU_MONITOR={"INGEST_RATE": "often"}):
        response = post(body(ticks(1000)), token)

    assert response.status_code == 503
    assert response.json()["detail"].startswith("GPU_MONITOR is misconfigured: ")
    assert "Retry-After" in response


@override_settings(GPU_MONITOR={"INGEST_RATE": "2/min"})
def test_past_the_rate_a_host_is_throttled_with_retry_after(fake_nvml: ModuleType) -> None:
    token, other = token_for(), token_for("node-2")
    answers = [post(body(ticks(1000 + 10 * n)), token).status_code for n in range(3)]

    assert answers == [200, 200, 429]
    throttled = post(body(ticks(2000)), token)
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert throttled.json()["detail"].startswith("Request was throttled.")
    # another host has its own count; a second token of the host shares the host's
    assert post(body(ticks(1000, host="node-2"), host="node-2"), other).status_code == 200
    assert post(body(ticks(3000)), token_for()).status_code == 429


@override_settings(GPU_MONITOR={"INGEST_RATE": None})
def test_a_rate_of_none_throttles_nothing(fake_nvml: ModuleType) -> None:
    token = token_for()
    answers = {post(body(ticks(1000 + 10 * n)), token).status_code for n in range(5)}

    assert answers == {200}


def test_last_used_is_set_at_most_once_a_minute(fake_nvml: ModuleType) -> None:
    import datetime

    from gpu_monitor.fleet.models import HostToken

    token = token_for()
    post(body(ticks(1000)), token)
    first = HostToken.objects.get().last_used
    assert first is not None
    post(body(ticks(1010)), token)
    assert HostToken.objects.get().last_used == first
    HostToken.objects.update(last_used=first - datetime.timedelta(seconds=61))

    post(body(ticks(1020)), token)

    assert HostToken.objects.get().last_used > first

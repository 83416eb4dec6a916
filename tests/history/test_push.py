"""The pusher (history/push.py) against a small HTTP server on 127.0.0.1 in a thread:
what it sends, which answers are outages (kept, retried later) and which are refusals
(said once, the recorder stops), and the backoff. No sleeps: the server answers what the
test scripted, and the pusher's write() runs in the test's thread."""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
import shutil
import socket
import ssl
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gpu_monitor.history import push, wire
from gpu_monitor.history.buffer import Tick, TickBuffer
from gpu_monitor.history.push import Pusher, Site
from gpu_monitor.history.tick_writers import TickContext
from gpu_monitor.types import GPUDevice

TOKEN = "gpumon_test-token"
RECORDER = "gpu_monitor.history.recorder"


@dataclass
class Answer:
    status: int = 200
    body: bytes | None = None  # None: the ingest's answer for the ticks posted
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # wait until the test ends, answering nothing


class FakeSite:
    """An HTTP server that answers each POST with the next scripted ``Answer`` (or
    ``answer(body)``), and keeps what it was sent."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.script: list[Answer] = []
        self.answer: Callable[[dict[str, Any]], Answer] | None = None
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.released = threading.Event()
        self.early = False
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if site.early:  # answered from the headers, the body left unread
                    self.send_response(413)
                    self.send_header("Content-Length", "2")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(b"{}")
                    self.close_connection = True
                    return
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(gzip.decompress(raw))
                site.requests.append((dict(self.headers), body))
                answer = site.answer(body) if site.answer else site.script.pop(0)
                if answer.hang:
                    site.released.wait(30)
                    return
                text = answer.body
                if text is None:
                    text = json.dumps({"host": body["host"], "written": len(body["ticks"])})
                    text = text.encode()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/api/gpu/ingest"
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.02,), name="test-site"
        )
        self.thread.start()

    def epochs(self) -> list[list[int]]:
        """The ticks' epochs of each body posted."""
        return [[tick["epoch"] for tick in body["ticks"]] for _, body in self.requests]

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy of this machine's: not for it
    made = FakeSite()
    yield made
    made.close()


def tick(epoch: int) -> Tick:
    device = GPUDevice(index=0, name="NVIDIA H100", uuid="GPU-0", temperature_c=40)
    made = Tick(epoch, found={0: "GPU-0"})
    made.context = TickContext("node-1", epoch, 10, [device], None, None)
    return made


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pusher(
    url: str, ticks: int = 1, capacity: int = 360, jitter: float = 1.0, interval: int = 10
) -> Pusher:
    buffer = TickBuffer(capacity, target="the site")
    for n in range(ticks):
        buffer.add(tick(1000 + 10 * n))
    made = Pusher(
        buffer,
        host="node-1",
        interval=interval,
        processes_recorded=False,
        site=Site(url, TOKEN),
        on_failure=lambda: stopped.append(made),
        random=lambda: jitter,
        clock=Clock(),
    )
    stopped: list[Pusher] = []
    made.stopped = stopped  # type: ignore[attr-defined]
    return made


def refused_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/gpu/ingest"


def test_the_ticks_go_oldest_first_in_one_gzipped_body_with_the_token(site: FakeSite) -> None:
    site.script = [Answer()]
    sending = pusher(site.url, ticks=3)
    sending.write()

    ((headers, body),) = site.requests
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert (headers["Content-Type"], headers["Content-Encoding"]) == ("application/json", "gzip")
    assert headers["User-Agent"].startswith("gpu-monitor/")
    batch = wire.decode(body)
    assert [t.epoch for t in batch.ticks] == [1000, 1010, 1020]
    assert (batch.host, batch.interval, batch.dropped) == ("node-1", 10, 0)
    assert len(sending.buffer) == 0 and sending.failure is None and sending.retry_at is None


def test_more_ticks_than_a_batch_go_in_several_bodies(site: FakeSite) -> None:
    site.answer = lambda body: Answer()
    sending = pusher(site.url, ticks=5)
    sending.batch_ticks = 2
    sending.write()
    assert site.epochs() == [[1000, 1010], [1020, 1030], [1040]]
    assert len(sending.buffer) == 0


@pytest.mark.parametrize(
    ("status", "detail", "said"),
    [
        (
            401,
            "Invalid token.",
            "The site refused the token (HTTP 401: Invalid token.): give a valid one in",
        ),
        (401, "This token was revoked.", "(HTTP 401: This token was revoked.)"),
        (
            403,
            "The token is for host 'other'.",
            "(HTTP 403: The token is for host 'other'.): give --host the host the token is for",
        ),
        (
            400,
            "ticks[0].epoch: an integer, not null",
            "The site refused the ticks (HTTP 400: ticks[0].epoch: an integer, not null)",
        ),
        (404, None, "The site refused the ticks (HTTP 404: Not Found)"),
    ],
)
def test_a_4xx_is_a_refusal_said_once_and_the_recorder_stops(
    site: FakeSite, caplog: pytest.LogCaptureFixture, status: int, detail: str | None, said: str
) -> None:
    body = b"" if detail is None else json.dumps({"detail": detail}).encode()
    site.script = [Answer(status, body)]
    sending = pusher(site.url, ticks=2)
    with caplog.at_level(logging.DEBUG, RECORDER):
        sending.write()
        sending.write()  # refused: nothing more is sent

    assert sending.failure is not None and said in sending.failure
    assert TOKEN not in sending.failure
    assert len(site.requests) == 1 and len(sending.buffer) == 2
    assert sending.stopped == [sending]  # type: ignore[attr-defined]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [sending.failure]


def test_a_url_http_client_will_not_send_is_a_refusal_not_a_dead_thread() -> None:
    sending = pusher("http://127.0.0.1:1/api/gpu/ingest with a space")
    sending.write()
    assert sending.failure is not None
    assert sending.failure.startswith("Cannot post to 'http://127.0.0.1:1/api/gpu/ingest with")
    assert sending.stopped == [sending]  # type: ignore[attr-defined]


def test_a_redirect_is_a_refusal_naming_where_it_points(site: FakeSite) -> None:
    site.script = [Answer(308, b"", {"Location": "https://gpus.example.org/api/gpu/ingest"})]
    sending = pusher(site.url)
    sending.write()
    assert sending.failure is not None
    assert "HTTP 308" in sending.failure
    assert "a redirect to 'https://gpus.example.org/api/gpu/ingest': give --push" in sending.failure
    assert len(site.requests) == 1


def test_a_200_that_is_not_the_ingest_answer_is_a_refusal(site: FakeSite) -> None:
    site.script = [Answer(200, b"<html>Welcome to the portal</html>")]
    sending = pusher(site.url)
    sending.write()
    assert sending.failure == (
        "The site answered HTTP 200, not as api/gpu/ingest answers (<html>Welcome to the "
        "portal</html>): give --push the URL of the site's api/gpu/ingest"
    )
    assert len(sending.buffer) == 1


def test_a_413_halves_the_batch_until_the_site_takes_it(
    site: FakeSite, caplog: pytest.LogCaptureFixture
) -> None:
    site.answer = lambda body: Answer(413, b"") if len(body["ticks"]) > 2 else Answer()
    sending = pusher(site.url, ticks=5)
    with caplog.at_level(logging.INFO, RECORDER):
        sending.write()
    assert site.epochs() == [
        [1000, 1010, 1020, 1030, 1040],
        [1000, 1010],
        [1020, 1030],
        [1040],
    ]
    assert sending.failure is None and len(sending.buffer) == 0 and sending.batch_ticks == 2
    assert "The site refused 5 ticks as too large: 2 a body from now on" in caplog.text


def test_a_413_of_one_tick_is_a_refusal(site: FakeSite) -> None:
    site.answer = lambda body: Answer(413, json.dumps({"detail": "Over 8 MiB."}).encode())
    sending = pusher(site.url, ticks=2)
    sending.write()
    assert site.epochs() == [[1000, 1010], [1000]]
    assert sending.failure == (
        "The site refused a tick as too large (HTTP 413: Over 8 MiB.): raise its INGEST_MAX_BYTES"
    )


@pytest.mark.parametrize("status", [429, 503, 500, 502, 408])
def test_shedding_load_is_an_outage_retried_not_before_retry_after(
    site: FakeSite, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    site.script = [Answer(status, b'{"detail": "Busy."}', {"Retry-After": "120"})]
    sending = pusher(site.url, ticks=2, jitter=0.0)
    with caplog.at_level(logging.DEBUG, RECORDER):
        sending.write()
    assert sending.failure is None and len(sending.buffer) == 2
    assert sending.last_error == f"HTTP {status}: Busy."
    assert sending.retry_at == 1000.0 + 120  # the jitter said 0 s: Retry-After wins
    (error,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.getMessage() == (
        f"Site unreachable, keeping up to 360 tick(s) in memory: HTTP {status}: Busy."
    )


def test_retry_after_as_a_date_and_a_later_jitter_both_hold(site: FakeSite) -> None:
    site.script = [
        Answer(503, b"", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),  # past: 0 s
        Answer(503, b"", {"Retry-After": "5"}),
    ]
    sending = pusher(site.url, jitter=1.0)
    sending.write()
    assert sending.retry_at == 1000.0 + 10  # the jitter's ceiling, the interval
    sending.write()
    assert sending.retry_at == 1000.0 + 20  # doubled, later than Retry-After's 5 s
    assert push.retry_after(None) is None
    assert push.retry_after({"Retry-After": "soon"}) is None  # type: ignore[arg-type]
    assert push.retry_after({"Retry-After": "999999"}) == push.MAX_RETRY_AFTER_S  # type: ignore[arg-type]


def test_the_outage_is_said_once_then_the_return_with_the_count(
    site: FakeSite, caplog: pytest.LogCaptureFixture
) -> None:
    site.script = [Answer(503, b""), Answer(503, b""), Answer()]
    sending = pusher(site.url, ticks=2)
    with caplog.at_level(logging.DEBUG, RECORDER):
        sending.write()
        sending.buffer.add(tick(1020))
        sending.write()
        sending.write()
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert said == [
        (
            "ERROR",
            "Site unreachable, keeping up to 360 tick(s) in memory: HTTP 503: Service Unavailable",
        ),
        ("WARNING", "Site reachable again: 3 buffered tick(s) written"),
    ]
    assert "Site still unreachable: HTTP 503" in caplog.text  # at DEBUG
    assert site.epochs()[-1] == [1000, 1010, 1020]
    assert (sending.failures, sending.retry_at, len(sending.buffer)) == (0, None, 0)


def test_connection_refused_is_an_outage() -> None:
    sending = pusher(refused_port())
    sending.write()
    assert sending.failure is None and len(sending.buffer) == 1
    assert "Connection refused" in sending.last_error
    assert sending.retry_at is not None


def test_a_site_that_does_not_answer_is_an_outage_after_the_timeout(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(push, "TOTAL_TIMEOUT_S", 0.3)
    site.script = [Answer(hang=True)]
    sending = pusher(site.url)
    sending.write()
    assert sending.last_error == "no answer in time (timed out)"
    assert sending.failure is None and len(sending.buffer) == 1 and sending.writing_since is None


def test_dropped_ticks_are_sent_once_with_the_first_tick_after(
    site: FakeSite, caplog: pytest.LogCaptureFixture
) -> None:
    site.script = [Answer(), Answer()]
    sending = pusher(site.url, ticks=5, capacity=3)  # 2 dropped
    with caplog.at_level(logging.WARNING, RECORDER):
        sending.write()
    assert [body["dropped"] for _, body in site.requests] == [2]
    assert site.epochs() == [[1020, 1030, 1040]]
    assert sending.buffer.dropped_count() == 0
    assert (
        "2 tick(s) dropped: the site was unreachable for longer than the buffer of 3 tick(s)"
        in caplog.text
    )
    assert "dropping the oldest tick while the site is unreachable" in caplog.text


def test_ticks_dropped_while_their_post_was_in_flight_count_as_written() -> None:
    buffer = TickBuffer(3)
    for epoch in (1, 2, 3):
        buffer.add(tick(epoch))
    taken = buffer.oldest_ticks(2)
    assert [t.epoch for t in taken] == [1, 2]
    for epoch in (4, 5):  # drop 1 and 2 while they are posted
        buffer.add(tick(epoch))
    assert buffer.dropped_count() == 2
    buffer.accept_all(taken, 0)
    assert buffer.dropped_count() == 0
    assert [t.epoch for t in buffer.oldest_ticks(10)] == [3, 4, 5]


def test_the_backoff_doubles_from_the_interval_up_to_300_s() -> None:
    sending = pusher("http://127.0.0.1:1/", jitter=1.0, interval=10)
    delays = []
    for _ in range(8):
        sending.back_off(None)
        assert sending.retry_at is not None
        delays.append(sending.retry_at - 1000.0)
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]


def test_the_backoff_is_full_jitter_bounded_and_spread() -> None:
    """10,000 nodes after the same outage: every wait within its ceiling, and spread
    over it rather than bunched (full jitter: uniform from 0 to the ceiling)."""
    sending = pusher("http://127.0.0.1:1/", interval=10)
    sending.random = random.Random(30).random
    waits = []
    for _ in range(10_000):
        sending.failures = 2  # the third outage in a row: a ceiling of 40 s
        sending.back_off(None)
        assert sending.retry_at is not None
        waits.append(sending.retry_at - 1000.0)
    assert min(waits) >= 0 and max(waits) <= 40
    assert 18 < statistics.mean(waits) < 22
    per_second = [sum(int(w) == s for w in waits) for s in range(40)]
    assert max(per_second) < 2 * 10_000 / 40  # no second with twice its share


def test_the_thread_waits_out_the_backoff_but_not_past_the_finish(site: FakeSite) -> None:
    site.script = [Answer()]
    sending = pusher(site.url)
    sending.clock = time.monotonic
    sending.retry_at = time.monotonic() + 60  # an outage's backoff, longer than the test
    thread = threading.Thread(target=sending.write_until_finished, name="test-push")
    thread.start()
    sending.wake.set()  # a new tick during the backoff: no post
    sending.finish()  # the last try, at once
    thread.join(5)
    assert not thread.is_alive()
    assert len(site.requests) == 1 and len(sending.buffer) == 0


def test_the_thread_posts_each_tick_as_it_comes(site: FakeSite) -> None:
    posted = threading.Semaphore(0)

    def answer(body: dict[str, Any]) -> Answer:
        posted.release()
        return Answer()

    site.answer = answer
    sending = pusher(site.url)
    thread = threading.Thread(target=sending.write_until_finished, name="test-push")
    thread.start()
    sending.wake.set()
    assert posted.acquire(timeout=5)
    sending.buffer.add(tick(2000))
    sending.wake.set()
    assert posted.acquire(timeout=5)
    sending.finish()
    thread.join(5)
    assert not thread.is_alive()
    assert site.epochs()[:2] == [[1000], [2000]]


def test_an_answer_sent_before_the_body_was_read_is_read(site: FakeSite) -> None:
    """A site refuses a body from its Content-Length and closes: the client's send
    fails (a broken pipe, a reset), and the answer is read all the same (else a body
    too large would be an outage retried for ever, never halved)."""
    site.early = True
    request = urllib.request.Request(site.url, data=os.urandom(16 * 1024 * 1024), method="POST")
    with pytest.raises(urllib.error.HTTPError) as raised:
        push.build_opener().open(request, timeout=10)
    with raised.value:
        assert raised.value.code == 413


def test_https_is_verified_and_ssl_cert_file_names_a_private_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site whose certificate no system CA signed is an outage that says so; with the
    certificate in SSL_CERT_FILE (a private CA's bundle) the ticks go."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is missing: install Debian's openssl package"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    made = FakeSite(tls)
    try:
        made.answer = lambda body: Answer()
        sending = pusher(made.url)
        sending.write()
        assert "CERTIFICATE_VERIFY_FAILED" in sending.last_error
        assert made.requests == [] and len(sending.buffer) == 1

        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        sending.write()
        assert made.epochs() == [[1000]] and len(sending.buffer) == 0
    finally:
        made.close()


def test_ticks_the_site_had_already_are_said_at_warning(
    site: FakeSite, caplog: pytest.LogCaptureFixture
) -> None:
    """Duplicates are not silent: a replay after a lost answer, or two recorders under
    one host name (the site keeps the first and drops the other's ticks)."""
    site.script = [Answer(body=b'{"host": "node-1", "written": 1, "duplicates": 2}'), Answer()]
    sending = pusher(site.url, ticks=3)
    with caplog.at_level(logging.WARNING, RECORDER):
        sending.write()
    (said,) = [r.getMessage() for r in caplog.records]
    assert said.startswith("The site had 2 of 3 tick(s) of host 'node-1' already")
    assert "another recorder posting under this host name" in said
    assert len(sending.buffer) == 0


def test_no_duplicates_no_warning(site: FakeSite, caplog: pytest.LogCaptureFixture) -> None:
    site.script = [Answer(body=b'{"host": "node-1", "written": 2, "duplicates": 0}')]
    sending = pusher(site.url, ticks=2)
    with caplog.at_level(logging.WARNING, RECORDER):
        sending.write()
    assert caplog.records == []


def test_a_revoked_token_says_how_to_make_one_once(site: FakeSite) -> None:
    detail = (
        "This host token (ab12) was revoked: create a new one with manage.py gpu_host_token create."
    )
    site.script = [Answer(401, json.dumps({"detail": detail}).encode())]
    sending = pusher(site.url)
    sending.write()
    assert sending.failure is not None
    assert sending.failure.count("gpu_host_token create") == 1

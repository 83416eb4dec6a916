"""Notify fixtures: ``webhook``, a receiver of webhook POSTs on 127.0.0.1 that records
each one and answers as a test tells it (200, a status, or not at all)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.history.conftest import pytest_collection_modifyitems  # noqa: F401 (postgres tests)


@dataclass(frozen=True)
class Received:
    """One POST the receiver got: its path, headers (names in lower case) and JSON body."""

    path: str
    headers: dict[str, str]
    body: Any


class Webhook:
    """The receiver a test posts to: ``url``; ``received``, each POST in order.

    ``answer(500, 200)``: the statuses of the next POSTs, in order (then 200 again); 0
    closes the connection with no answer at all;
    ``hang()``: every later POST is read, recorded and never answered: its handler waits on
    an event that the fixture sets at teardown (the client's timeout ends the wait for
    it).
    """

    def __init__(self, server: ThreadingHTTPServer, release: threading.Event) -> None:
        host, port = server.server_address[:2]
        self.url = f"http://{host!s}:{port}/services/T000/B000/secret"
        self.received: list[Received] = []
        self.statuses: list[int] = []
        self.hanging = False
        self.release = release
        self.lock = threading.Lock()

    def answer(self, *statuses: int) -> None:
        with self.lock:
            self.statuses.extend(statuses)

    def hang(self) -> None:
        self.hanging = True

    def _take(self, received: Received) -> int | None:
        """Record ``received``; the status to answer, or None to hang."""
        with self.lock:
            self.received.append(received)
            if self.hanging:
                return None
            return self.statuses.pop(0) if self.statuses else 200


def _handler(webhook: Webhook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status = webhook._take(Received(self.path, headers, json.loads(raw.decode())))
            if status is None:
                webhook.release.wait()
            if not status:
                self.close_connection = True
                return
            text = b"ok" if status < 400 else b"no"
            self.send_response(status)
            if 300 <= status < 400:  # a redirect to itself
                self.send_header("Location", self.path)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a test's stderr stays clean."""

    return Handler


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A webhook receiver on 127.0.0.1 (a free port), served by a thread; at teardown
    released (a hanging handler returns), shut down and closed."""
    release = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    receiver = Webhook(server, release)
    server.RequestHandlerClass = _handler(receiver)
    thread = threading.Thread(target=server.serve_forever, name="webhook", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        release.set()
        server.shutdown()
        server.server_close()  # joins the handlers' threads (block_on_close)
        thread.join()

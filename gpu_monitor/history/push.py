"""The recorder's pushing side (``gpu_record --push``): the buffered ticks go to the
site's ``POST api/gpu/ingest`` instead of a database, so that a node holds a token for
its own host and no database role.

The ``Pusher`` stands in for the ``Writer`` in the recorder (the same thread, the same
attributes): it posts the oldest buffered ticks, up to ``batch_ticks`` in one gzipped
body (``wire.encode``). A site that cannot be reached, does not answer in time, or sheds
load (429, 5xx) is an outage: the ticks stay buffered and the next try comes after an
exponential backoff with full jitter (from the interval up to ``MAX_BACKOFF_S``; never
before a ``Retry-After``), so that nodes coming back after a site's outage spread out.
Any other refusal (401, 403, 400, a 413 of a single tick, a redirect) is permanent: said
once, and the recorder stops.
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any

from gpu_monitor import __version__
from gpu_monitor.history import wire
from gpu_monitor.history.buffer import Tick, TickBuffer

# The recorder's parts log as one logger, the recorder's (docs/history.md).
logger = logging.getLogger("gpu_monitor.history.recorder")

CONNECT_TIMEOUT_S = 5  # to connect (and the TLS handshake)
TOTAL_TIMEOUT_S = 30  # a post, from connecting to the answer's status
ONCE_WITHIN_S = TOTAL_TIMEOUT_S  # gpu_record --once: time for its one post
BATCH_TICKS = 100  # ticks in one body at most; a 413 halves it
MAX_BACKOFF_S = 300  # the longest wait between tries, before a Retry-After
MAX_RETRY_AFTER_S = 3600  # a Retry-After longer than this is read as this
ANSWER_BYTES = 65536  # of an answer, read at most this


@dataclass(frozen=True)
class Site:
    """Where to push (the ingest endpoint's URL) and the host's token."""

    url: str
    token: str


class Pusher:
    """Posts ``buffer``'s ticks of ``host`` to ``site``; calls ``on_failure`` (the
    recorder's stop) on a permanent refusal. ``random`` and ``clock`` (monotonic) are
    the backoff's, ``opener`` the HTTP client's (tests give their own)."""

    def __init__(
        self,
        buffer: TickBuffer,
        *,
        host: str,
        interval: int,
        processes_recorded: bool,
        site: Site,
        on_failure: Callable[[], None],
        random: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        opener: urllib.request.OpenerDirector | None = None,
    ) -> None:
        self.buffer = buffer
        self.host = host
        self.interval = interval
        self.processes_recorded = processes_recorded
        self.site = site
        self.on_failure = on_failure
        self.random = random
        self.clock = clock
        self.opener = opener or build_opener()
        self.wake = threading.Event()  # a tick is waiting
        self.finishing = threading.Event()  # sampling is over: the last try
        self.lock = threading.Lock()  # ``site_down``: outage() runs in both threads
        self.site_down = False
        self.failure: str | None = None  # a permanent refusal, said to the user
        self.last_error = ""  # the reason of the last outage
        self.writing_since: float | None = None  # monotonic start of the post in flight
        self.batch_ticks = BATCH_TICKS
        self.failures = 0  # outages in a row: the backoff's exponent
        self.duplicates = 0  # ticks the site had already, over every post
        self.retry_at: float | None = None  # after an outage: when to try again (clock)

    def finish(self) -> None:
        """Sampling is over: post what is buffered once more, then end."""
        self.finishing.set()
        self.wake.set()

    def write_until_finished(self) -> None:
        """Thread: post whenever a tick waits (after an outage: when the backoff is
        over), until the sampling is over, then try once more."""
        while self.failure is None:
            if self.retry_at is None:
                self.wake.wait()
            else:
                self.finishing.wait(max(0.0, self.retry_at - self.clock()))
            self.wake.clear()
            finishing = self.finishing.is_set()
            self.write()
            if finishing:
                break

    def write(self) -> None:
        """Post the buffered ticks, oldest first; an outage keeps them and sets the next
        try, a permanent refusal stops the recorder."""
        if self.failure is not None:
            return
        self.writing_since = time.monotonic()
        written = 0
        try:
            while ticks := self.buffer.oldest_ticks(self.batch_ticks):
                sent = self.post(ticks)
                if sent is None:
                    return
                written += sent
        finally:
            self.writing_since = None
        self.failures, self.retry_at = 0, None
        with self.lock:
            back, self.site_down = self.site_down, False
        if back:
            logger.warning("Site reachable again: %d buffered tick(s) written", written)

    def post(self, ticks: list[Tick]) -> int | None:
        """Post ``ticks``: how many were taken out of the buffer (0: the batch was too
        large and is halved), None after an outage or a refusal."""
        dropped = self.buffer.dropped_count()
        body = wire.encode(self.host, self.interval, self.processes_recorded, ticks, dropped)
        try:
            status, headers, answer = self.send(gzip.compress(json.dumps(body).encode()))
        except (ValueError, http.client.InvalidURL) as exc:  # a URL it will not send
            self.refused(f"Cannot post to {self.site.url!r}: {exc}")
            return None
        except (OSError, http.client.HTTPException) as exc:
            self.outage(reason_of(exc))
            self.back_off(None)
            return None
        detail = detail_of(answer, status)
        if 200 <= status < 300:
            if not ingested(answer):
                self.refused(
                    f"The site answered HTTP {status}, not as api/gpu/ingest answers "
                    f"({detail}): give --push the URL of the site's api/gpu/ingest"
                )
                return None
            self.buffer.accept_all(ticks, dropped)
            if dropped:
                logger.warning(
                    "%d tick(s) dropped: the site was unreachable for longer than the "
                    "buffer of %d tick(s)",
                    dropped,
                    self.buffer.capacity,
                )
            logger.debug("Pushed %d tick(s): %s", len(ticks), detail)
            repeated = duplicates(answer)
            self.duplicates += repeated
            if repeated:
                logger.warning(
                    "The site had %d of %d tick(s) of host %r already, at or after their "
                    "time: not written again (a body posted again after a lost answer, or "
                    "another recorder posting under this host name)",
                    repeated,
                    len(ticks),
                    self.host,
                )
            return len(ticks)
        if status == 413 and len(ticks) > 1:
            self.batch_ticks = max(1, len(ticks) // 2)
            logger.info(
                "The site refused %d ticks as too large: %d a body from now on",
                len(ticks),
                self.batch_ticks,
            )
            return 0
        if status in (408, 429) or status >= 500:
            self.outage(f"HTTP {status}: {detail}")
            self.back_off(retry_after(headers))
            return None
        self.refused(refusal(status, detail, headers))
        return None

    def send(self, body: bytes) -> tuple[int, Message, bytes]:
        """POST ``body`` (gzipped JSON): the answer's status, headers and (the start of)
        its body."""
        request = urllib.request.Request(
            self.site.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "Accept": "application/json",
                "Authorization": f"Bearer {self.site.token}",
                "User-Agent": f"gpu-monitor/{__version__} gpu_record",
            },
        )
        try:
            with self.opener.open(request, timeout=CONNECT_TIMEOUT_S) as response:
                return response.status, response.headers, response.read(ANSWER_BYTES)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.headers, exc.read(ANSWER_BYTES)

    def back_off(self, retry_after: float | None) -> None:
        """Set the next try: at random up to the interval doubled at each outage in a
        row (at most MAX_BACKOFF_S), never before ``retry_after`` seconds."""
        ceiling = min(MAX_BACKOFF_S, self.interval * 2 ** min(self.failures, 16))
        self.failures += 1
        delay = self.random() * ceiling
        if retry_after is not None:
            delay = max(delay, retry_after)
        self.retry_at = self.clock() + delay
        logger.debug("Next try in %.1f s", delay)

    def refused(self, failure: str) -> None:
        self.failure = failure
        logger.error("%s", failure)
        self.on_failure()

    def outage(self, reason: str) -> None:
        self.last_error = reason
        with self.lock:
            first, self.site_down = not self.site_down, True
        if first:
            logger.error(
                "Site unreachable, keeping up to %d tick(s) in memory: %s",
                self.buffer.capacity,
                reason,
            )
        else:
            logger.debug("Site still unreachable: %s", reason)


def refusal(status: int, detail: str, headers: Message) -> str:
    """What to say (and do) about a permanent refusal."""
    said = f"HTTP {status}: {detail}"
    if 300 <= status < 400:
        return (
            f"The site answered {said}, a redirect to {headers.get('Location')!r}: give "
            "--push that URL"
        )
    if status == 401:
        made = (
            ""
            if "gpu_host_token" in detail
            else " (manage.py gpu_host_token create HOST on the site)"
        )
        return (
            f"The site refused the token ({said}): give a valid one in --token-file or "
            f"GPU_MONITOR_TOKEN{made}"
        )
    if status == 403:
        return f"The site refused the ticks ({said}): give --host the host the token is for"
    if status == 413:
        return f"The site refused a tick as too large ({said}): raise its INGEST_MAX_BYTES"
    return f"The site refused the ticks ({said})"


def detail_of(answer: bytes, status: int) -> str:
    """The answer's ``detail`` (or its text, cut short)."""
    try:
        data: Any = json.loads(answer)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        text = data["detail"]
    elif isinstance(data, dict) and status < 300:
        text = ", ".join(f"{key} {value}" for key, value in data.items() if key != "host")
    else:
        text = answer.decode("utf-8", "replace")
    text = " ".join(text.split()) or http.client.responses.get(status, "no answer")
    return text if len(text) <= 300 else f"{text[:297]}..."


def ingested(answer: bytes) -> bool:
    """Whether ``answer`` is the ingest endpoint's (``{"written": 2, ...}``)."""
    try:
        data = json.loads(answer)
    except ValueError:
        return False
    return isinstance(data, dict) and type(data.get("written")) is int


def duplicates(answer: bytes) -> int:
    """How many of the posted ticks the ingest's answer counts as duplicates."""
    data = json.loads(answer)  # ``ingested``: a JSON object
    count = data.get("duplicates")
    return count if type(count) is int else 0


def retry_after(headers: Message | None) -> float | None:
    """The answer's ``Retry-After`` in seconds (given in seconds or as a date)."""
    text = (headers.get("Retry-After") if headers is not None else None) or ""
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            seconds = email.utils.parsedate_to_datetime(text).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)


def reason_of(exc: BaseException) -> str:
    """What went wrong with a post, for the log and the final message."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, str):
        exc = exc.reason
    if isinstance(exc, TimeoutError):
        return "no answer in time (timed out)"
    return str(exc).strip() or type(exc).__name__


# -- the HTTP client: urllib with two timeouts, no redirects -----------------------------


class TimedHTTPConnection(http.client.HTTPConnection):
    """Gives up connecting after ``timeout`` (CONNECT_TIMEOUT_S), then waits for the
    answer at most what is left of TOTAL_TIMEOUT_S. A server that answers before it has
    read the whole body (a 413 from the Content-Length) and closes: its answer is read,
    not the failed send reported."""

    deadline = 0.0
    unsent: OSError | None = None

    def connect(self) -> None:
        self.deadline = time.monotonic() + TOTAL_TIMEOUT_S
        self.unsent = None
        super().connect()
        self.sock.settimeout(self.left())

    def send(self, data: Any) -> None:
        if self.unsent is not None:
            return
        try:
            super().send(data)
        except (BrokenPipeError, ConnectionResetError) as exc:
            self.unsent = exc

    def getresponse(self) -> http.client.HTTPResponse:
        if self.sock is not None:
            self.sock.settimeout(self.left())
        try:
            return super().getresponse()
        except (OSError, http.client.HTTPException):
            if self.unsent is not None:
                raise self.unsent from None
            raise

    def left(self) -> float:
        return max(0.1, self.deadline - time.monotonic())


class TimedHTTPSConnection(TimedHTTPConnection, http.client.HTTPSConnection):
    """The same over TLS, verified against the system's CAs (``SSL_CERT_FILE`` names
    another bundle: a private CA)."""


class TimedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(TimedHTTPConnection, req)


class TimedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(TimedHTTPSConnection, req)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer (a POST is not sent on elsewhere): the refusal says to
    give --push the URL it names."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def build_opener() -> urllib.request.OpenerDirector:
    """urllib's opener (proxies from the environment too) with those parts."""
    return urllib.request.build_opener(TimedHTTPHandler, TimedHTTPSHandler, NoRedirect)

"""How a message goes out: e-mail through Django's mail, and a JSON POST to a webhook
(Slack's incoming webhooks, or any receiver of the same shape).

Every failure is a ``SendError`` whose text says why, fit to record per recipient: it
names a status or an error, never a webhook URL's path or query (a Slack webhook URL's
path is its secret).
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from gpu_monitor.notify.messages import Message

logger = logging.getLogger(__name__)

USER_AGENT = "gpu_monitor-notify"
ATTEMPTS = 2  # one retry after a timeout, a connection error or a 5xx


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not followed: urllib would resend a POST as a GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class SendError(Exception):
    """A message could not be sent; ``str(exc)`` says why."""


def send_email(addresses: Sequence[str], message: Message) -> None:
    """Send ``message`` to ``addresses`` (one mail, plain text with an HTML alternative,
    from ``DEFAULT_FROM_EMAIL``)."""
    mail = EmailMultiAlternatives(
        subject=message.subject,
        body=message.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(addresses),
    )
    mail.attach_alternative(message.html, "text/html")
    try:
        mail.send(fail_silently=False)
    except Exception as exc:  # any backend: SMTP, socket, a bad header, a custom one
        raise SendError(f"e-mail not sent: {type(exc).__name__}: {exc}") from exc


def webhook_address(url: str) -> str:
    """``host[:port]`` of ``url``: what a notice records of a webhook (never its path)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname or ""
    return f"{host}:{port}" if port else host


def post_webhook(url: str, payload: dict[str, Any], timeout: float) -> None:
    """POST ``payload`` as JSON to ``url``, ``timeout`` seconds per attempt; a timeout, a
    connection error or a 5xx is tried once more, a 4xx is not (nor a redirect: not
    followed)."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
    where = webhook_address(url) or "(no host)"
    for attempt in range(1, ATTEMPTS + 1):
        try:
            request = urllib.request.Request(url, data=body, method="POST", headers=headers)
            with _OPENER.open(request, timeout=timeout) as response:
                response.read()
            return
        except urllib.error.HTTPError as exc:
            exc.close()
            reason = f"HTTP {exc.code} {exc.reason}".rstrip()
            again = exc.code >= 500
        except http.client.HTTPException as exc:  # closed, or no HTTP, before an answer
            reason, again = f"no valid answer ({type(exc).__name__})", True
        except ValueError:  # its text names the URL
            reason, again = "not a valid http(s) URL", False
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out, TLS
            cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(cause, TimeoutError):
                reason = f"no answer in {timeout:g} s"
            elif isinstance(cause, OSError):
                reason = f"{type(cause).__name__}: {cause.strerror or cause}"
            else:  # urllib's own words: "unknown url type: gopher", "no host given"
                reason = str(cause)
            again = isinstance(cause, OSError)
        logger.info("webhook %s, attempt %d of %d: %s", where, attempt, ATTEMPTS, reason)
        if not again:
            break
    raise SendError(f"webhook {where}: {reason}")

"""notify.channels: e-mail through Django's mail, the webhook POST and its one retry,
and the errors a notice records (never a webhook URL's path)."""

from __future__ import annotations

import socket
import time
from typing import Any

import django
import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import override_settings

from gpu_monitor.notify.channels import SendError, post_webhook, send_email, webhook_address
from gpu_monitor.notify.messages import Message
from tests.notify.conftest import Webhook

MESSAGE = Message(subject="[GPU monitor] You hold 1 idle GPU", text="plain", html="<p>html</p>")
PAYLOAD = {"text": "You hold 1 idle GPU: host gpu-a GPU 3, ünïcode", "user": "bob", "gpus": []}


class Refusing(BaseEmailBackend):
    """A mail backend whose server is away."""

    def send_messages(self, email_messages: Any) -> int:
        raise ConnectionRefusedError(111, "Connection refused")


def email_backend(path: str) -> override_settings:
    """The project's e-mail backend for a test: Django 6.1's MAILERS, or EMAIL_BACKEND
    before (deprecated in 6.1)."""
    if django.VERSION >= (6, 1):
        return override_settings(MAILERS={"default": {"BACKEND": path}})
    return override_settings(EMAIL_BACKEND=path)


class Odd(BaseEmailBackend):
    """A project's own backend, failing its own way."""

    def send_messages(self, email_messages: Any) -> int:
        raise RuntimeError("relay said no")


def test_send_email_text_and_html_alternative(settings: Any) -> None:
    settings.DEFAULT_FROM_EMAIL = "gpus@example.org"
    send_email(["bob@example.org", "eve@example.org"], MESSAGE)
    [sent] = mail.outbox
    assert sent.subject == MESSAGE.subject
    assert sent.body == "plain"
    assert sent.alternatives == [("<p>html</p>", "text/html")]
    assert sent.to == ["bob@example.org", "eve@example.org"]
    assert sent.from_email == "gpus@example.org"


@pytest.mark.parametrize(
    ("backend", "error"),
    [
        ("Refusing", "e-mail not sent: ConnectionRefusedError: [Errno 111] Connection refused"),
        ("Odd", "e-mail not sent: RuntimeError: relay said no"),
    ],
)
def test_send_email_backend_error_is_send_error(backend: str, error: str) -> None:
    with (
        email_backend(f"tests.notify.test_channels.{backend}"),
        pytest.raises(SendError) as caught,
    ):
        send_email(["bob@example.org"], MESSAGE)
    assert str(caught.value) == error


def test_webhook_posts_json_utf8_with_a_user_agent(webhook: Webhook) -> None:
    post_webhook(webhook.url, PAYLOAD, timeout=5)
    [got] = webhook.received
    assert got.body == PAYLOAD
    assert got.headers["content-type"] == "application/json; charset=utf-8"
    assert got.headers["user-agent"].startswith("gpu_monitor")
    assert got.path == "/services/T000/B000/secret"


def test_webhook_5xx_is_retried_once(webhook: Webhook) -> None:
    webhook.answer(500, 200)
    post_webhook(webhook.url, PAYLOAD, timeout=5)
    assert len(webhook.received) == 2


def test_webhook_5xx_twice_fails_naming_the_status_not_the_path(webhook: Webhook) -> None:
    webhook.answer(503, 503, 200)
    with pytest.raises(SendError) as caught:
        post_webhook(webhook.url, PAYLOAD, timeout=5)
    assert len(webhook.received) == 2
    assert "HTTP 503" in str(caught.value)
    assert "127.0.0.1" in str(caught.value)
    assert "secret" not in str(caught.value) and "services" not in str(caught.value)


def test_webhook_closed_without_an_answer_is_retried(webhook: Webhook) -> None:
    webhook.answer(0, 200)
    post_webhook(webhook.url, PAYLOAD, timeout=5)
    assert len(webhook.received) == 2
    webhook.answer(0, 0)
    with pytest.raises(SendError) as caught:
        post_webhook(webhook.url, PAYLOAD, timeout=5)
    assert (
        str(caught.value)
        == f"webhook {webhook_address(webhook.url)}: no valid answer (RemoteDisconnected)"
    )
    assert len(webhook.received) == 4


def test_webhook_4xx_is_not_retried(webhook: Webhook) -> None:
    webhook.answer(404)
    with pytest.raises(SendError, match="HTTP 404"):
        post_webhook(webhook.url, PAYLOAD, timeout=5)
    assert len(webhook.received) == 1


def test_webhook_redirect_is_not_followed(webhook: Webhook) -> None:
    webhook.answer(302)
    with pytest.raises(SendError, match="HTTP 302 Found"):
        post_webhook(webhook.url, PAYLOAD, timeout=5)
    assert len(webhook.received) == 1


def test_webhook_that_hangs_fails_after_two_timeouts(webhook: Webhook) -> None:
    webhook.hang()
    started = time.monotonic()
    with pytest.raises(SendError, match=r"no answer in 0.5 s") as caught:
        post_webhook(webhook.url, PAYLOAD, timeout=0.5)
    took = time.monotonic() - started
    assert len(webhook.received) == 2
    assert 0.9 < took < 2 * 0.5 + 5
    assert "secret" not in str(caught.value)


def test_webhook_connection_refused_is_retried_then_fails() -> None:
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hooks/secret?token=hidden"
    with pytest.raises(SendError) as caught:
        post_webhook(url, PAYLOAD, timeout=2)
    why = "ConnectionRefusedError: Connection refused"
    assert str(caught.value) == f"webhook 127.0.0.1:{port}: {why}"
    assert "secret" not in str(caught.value) and "hidden" not in str(caught.value)


@pytest.mark.parametrize("url", ["not a url/secret", "gopher://example.org/secret"])
def test_webhook_bad_url_fails_without_naming_it(url: str) -> None:
    with pytest.raises(SendError) as caught:
        post_webhook(url, PAYLOAD, timeout=1)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("https://hooks.slack.com/services/T0/B0/XYZ", "hooks.slack.com"),
        ("http://127.0.0.1:8123/hook?token=x", "127.0.0.1:8123"),
        ("http://user:pw@example.org/x", "example.org"),
        ("http://[::1]:99999/x", ""),  # a port out of range
    ],
)
def test_webhook_address_is_host_and_port_only(url: str, address: str) -> None:
    assert webhook_address(url) == address

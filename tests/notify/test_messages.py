"""notify.messages: the notice a holder reads (text, HTML, subject), its webhook form and
the admins' digest."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gpu_monitor.notify.messages import IdleHold, Outcome, digest, idle_for, notice, webhook_payload

NOW = 1_796_634_600 + 7_500  # 2026-12-07 11:15 UTC
SINCE = 1_796_634_600  # 2026-12-07 09:10 UTC: 2 h 5 min before NOW

H100 = IdleHold("gpu-a", 3, "GPU-aaa", "bob", "NVIDIA H100 80GB HBM3", SINCE, 1234, 0)
OTHER = IdleHold("gpu-b", 0, "GPU-bbb", "bob", "", SINCE - 86_400 - 600, 500, 0)


def reminder(hold: IdleHold, step: int) -> IdleHold:
    return dataclasses.replace(hold, step=step)


def test_notice_lists_host_gpu_model_since_idle_for_and_memory() -> None:
    message = notice("bob", [H100], NOW)
    line = (
        "host gpu-a GPU 3 (NVIDIA H100 80GB HBM3), idle since 2026-12-07 09:10 UTC "
        "(2 h 5 min), 1,234 MiB held"
    )
    assert line in message.text
    assert "Hello bob," in message.text
    assert "You hold 1 GPU that has been idle" in message.text
    assert "end the job, or the process" in message.text
    assert message.text.endswith("\n--\nGPU monitor, 2026-12-07 11:15 UTC\n")
    assert "reminder" not in message.text.lower()
    assert message.subject == "[GPU monitor] You hold 1 idle GPU (gpu-a)"


def test_notice_lists_every_gpu_of_the_person_in_one_message() -> None:
    message = notice("bob", [OTHER, H100], NOW)
    assert "You hold 2 GPUs that have been idle" in message.text
    assert message.text.index("host gpu-a GPU 3") < message.text.index("host gpu-b GPU 0,")
    assert "idle since 2026-12-06 09:00 UTC (1 d 2 h)" in message.text
    assert "500 MiB held" in message.text
    assert message.subject == "[GPU monitor] You hold 2 idle GPUs (gpu-a, gpu-b)"
    assert message.html.count("<tr><td>") == 2


def test_reminder_says_which_of_how_many(settings: Any) -> None:
    settings.GPU_MONITOR = {"NOTIFY_MAX_REMINDERS": 3}
    message = notice("bob", [reminder(H100, 2)], NOW)
    assert message.subject.startswith("[GPU monitor] Reminder 2 of 3: you hold 1 idle GPU")
    assert "This is reminder 2 of 3." in message.text
    assert "reminder 2 of 3" in message.html


def test_mixed_notice_marks_each_reminder_line() -> None:
    message = notice("bob", [reminder(H100, 1), OTHER], NOW)
    assert not message.subject.startswith("[GPU monitor] Reminder")
    assert "1,234 MiB held (reminder 1 of 2)" in message.text
    assert "500 MiB held\n" in message.text


def test_html_escapes_names_and_text_keeps_them() -> None:
    evil = IdleHold("<b>host</b>", 1, "GPU-x", "<script>x</script>", "A&B", SINCE, 1, 0)
    message = notice(evil.user, [evil], NOW)
    assert "<script>" not in message.html and "<b>host" not in message.html
    assert "&lt;script&gt;x&lt;/script&gt;" in message.html
    assert "&lt;b&gt;host&lt;/b&gt;" in message.html and "A&amp;B" in message.html
    assert "Hello <script>x</script>," in message.text  # plain text: not HTML-escaped
    assert "host <b>host</b> GPU 1 (A&B)" in message.text


def test_subject_is_one_line_whatever_the_names() -> None:
    sneaky = IdleHold("gpu-a\r\nBcc: x@example.org", 0, "GPU-x", "bob", "", SINCE, 1, 0)
    message = notice("bob", [sneaky], NOW)
    assert "\n" not in message.subject and "\r" not in message.subject
    digested = digest([sneaky], [], NOW)
    assert "\n" not in digested.subject and "\r" not in digested.subject


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "0 min"),
        (59, "0 min"),
        (60, "1 min"),
        (3600, "1 h"),
        (7500, "2 h 5 min"),
        (86_400, "1 d"),
        (93_600 + 59, "1 d 2 h"),
    ],
)
def test_idle_for_whole_minutes_hours_days(seconds: int, text: str) -> None:
    assert idle_for(seconds) == text


def test_webhook_payload_shape_and_slack_text() -> None:
    payload = webhook_payload("bob", [reminder(H100, 1), OTHER], NOW)
    assert set(payload) == {"text", "user", "gpus"}
    assert payload["user"] == "bob"
    assert payload["text"].startswith("[GPU monitor] You hold 2 idle GPUs")
    assert "host gpu-a GPU 3 (NVIDIA H100 80GB HBM3)" in payload["text"]
    assert "<" not in payload["text"]
    assert payload["gpus"][0] == {
        "host": "gpu-a",
        "gpu_index": 3,
        "gpu_uuid": "GPU-aaa",
        "model": "NVIDIA H100 80GB HBM3",
        "idle_since": "2026-12-07T09:10:00Z",
        "idle_minutes": 125,
        "memory_mb": 1234,
        "step": 1,
        "due": True,
    }
    assert payload["gpus"][1]["host"] == "gpu-b"
    assert payload["gpus"][1]["step"] == 0


def test_webhook_text_escaped_for_slack_data_as_it_is() -> None:
    odd = IdleHold("gpu-a", 0, "GPU-x", "<!channel>", "A&B", SINCE, 1, 0)
    payload = webhook_payload(odd.user, [odd], NOW)
    assert "Hello &lt;!channel&gt;," in payload["text"]
    assert "GPU 0 (A&amp;B)" in payload["text"]
    assert "<" not in payload["text"]
    assert payload["user"] == "<!channel>"
    assert payload["gpus"][0]["model"] == "A&B"


def test_digest_lists_idle_gpus_told_failed_and_excluded(settings: Any) -> None:
    settings.GPU_MONITOR = {"NOTIFY_EXCLUDE": ["root"]}
    eve = IdleHold("gpu-c", 2, "GPU-ccc", "eve", "", SINCE, 10, 0)
    root = IdleHold("gpu-c", 5, "GPU-ddd", "root", "", SINCE, 20, 0)
    outcomes = [
        Outcome("bob", (H100,), "email", "bob@example.org", True, ""),
        Outcome("bob", (H100,), "webhook", "hooks.example.org", False, "webhook x: HTTP 500"),
        Outcome("eve", (eve,), "email", "", False, "no address: no Django user 'eve'"),
    ]
    message = digest([root, eve, H100], outcomes, NOW)
    assert message.subject == (
        "[GPU monitor] 3 idle GPUs held by 3 users: 1 notice sent, 2 not sent"
    )
    text = message.text
    assert "host gpu-a GPU 3 (NVIDIA H100 80GB HBM3), user bob, idle since" in text
    assert "host gpu-c GPU 5, user root" in text
    assert "- bob by e-mail (bob@example.org), 1 GPU" in text
    assert "- bob by webhook (hooks.example.org): webhook x: HTTP 500" in text
    assert "- eve by e-mail: no address: no Django user 'eve'" in text
    assert "Never told (excluded): root" in text
    assert "root" not in text.split("Could not be told")[1].split("Never told")[0]
    assert "no address: no Django user &#x27;eve&#x27;" in message.html


def test_digest_of_nothing_says_none() -> None:
    message = digest([], [], NOW)
    assert "GPUs held idle at 2026-12-07 11:15 UTC: 0\n(none)" in message.text
    assert "Told in this run: 0\n\nCould not be told: 0\n" in message.text

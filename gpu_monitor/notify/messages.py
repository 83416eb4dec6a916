"""What ``gpu_notify`` says: the notice to a person who holds GPUs idle, its webhook form,
and the digest to the admins.

Every text comes from a template (``gpu_monitor/notify/*.txt``, ``*.html``), which a
project overrides as any other. The clock is the ``now`` argument: nothing here reads the
time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string

from gpu_monitor import params
from gpu_monitor.conf import conf
from gpu_monitor.notify import recipients

SOURCE = "GPU monitor"  # who speaks, in every message


@dataclass(frozen=True)
class IdleHold:
    """One idle-held GPU as a notice lists it."""

    host: str
    gpu_index: int
    gpu_uuid: str
    user: str
    model: str  # the GPU's name; "" when unknown
    idle_since: int  # Unix seconds: the episode's start
    memory_mb: int  # held by the user's processes on it
    step: int  # 0: the first notice, n: the n-th reminder
    due: bool = True  # False: listed with the due ones, told about before (no step now)


@dataclass(frozen=True)
class Message:
    """A message ready to send: a one-line subject, a plain text and an HTML body."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Outcome:
    """One person's notice through one channel in this run."""

    user: str
    holds: tuple[IdleHold, ...]
    channel: str  # "email" or "webhook"
    address: str  # "" when there was nobody to send to
    ok: bool
    error: str  # "" when ok; else why (no address: ..., the send's error)
    # A failure said before: a retry that failed again, or one not tried after the
    # channel failed for someone else (no new digest for it).
    repeated: bool = False


def idle_for(seconds: int) -> str:
    """A span in whole minutes, hours and days: ``"45 min"``, ``"2 h 5 min"``,
    ``"3 d 4 h"`` (a negative span is ``"0 min"``)."""
    minutes = max(seconds, 0) // 60
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def when(epoch: int) -> str:
    """Unix seconds as ``2026-12-07 09:10 UTC``: what a person reads."""
    return params.moment(epoch).strftime("%Y-%m-%d %H:%M UTC")


def mib(memory_mb: int) -> str:
    """Memory as ``1,234 MiB``."""
    return f"{memory_mb:,} MiB"


def _row(hold: IdleHold, now: int) -> dict[str, Any]:
    return {
        "hold": hold,
        "gpu": f"GPU {hold.gpu_index}" + (f" ({hold.model})" if hold.model else ""),
        "since": when(hold.idle_since),
        "idle_for": idle_for(now - hold.idle_since),
        "memory": mib(hold.memory_mb),
    }


def _one_line(text: str) -> str:
    """A subject on one line: no newline reaches a mail header."""
    return " ".join(text.split())


def _text(text: str) -> str:
    """A plain body: no blank lines at its end, one newline."""
    return text.rstrip() + "\n"


def _context(user: str, holds: Sequence[IdleHold], now: int) -> dict[str, Any]:
    ordered = sorted(holds, key=lambda hold: (hold.host, hold.gpu_index, hold.gpu_uuid))
    steps = {hold.step for hold in ordered if hold.due}
    return {
        "user": user,
        "rows": [_row(hold, now) for hold in ordered],
        "count": len(ordered),
        "hosts": sorted({hold.host for hold in ordered}),
        # a reminder when every due GPU's notice is (and none is listed as told
        # before); "mixed": each line says which it is
        "step": max(steps) if len(steps) == 1 and all(h.due for h in ordered) else 0,
        "mixed": len(steps) > 1 or not all(hold.due for hold in ordered),
        "max_reminders": conf.get("NOTIFY_MAX_REMINDERS"),
        "source": SOURCE,
        "now": when(now),
    }


def notice(user: str, holds: Sequence[IdleHold], now: int) -> Message:
    """The message to ``user`` listing all their idle GPUs ``holds``: host, GPU index and
    model, idle since (and for how long at ``now``), memory held; a reminder says so (a
    hold's ``step`` above 0), and a GPU told about before and not due now (``due``
    False) says that."""
    context = _context(user, holds, now)
    return Message(
        subject=_one_line(render_to_string("gpu_monitor/notify/notice_subject.txt", context)),
        text=_text(render_to_string("gpu_monitor/notify/notice.txt", context)),
        html=render_to_string("gpu_monitor/notify/notice.html", context),
    )


def slack_text(text: str) -> str:
    """``text`` as Slack reads it: ``&``, ``<`` and ``>`` escaped (nothing else), so that
    no name becomes a link or a mention such as ``<!channel>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_payload(user: str, holds: Sequence[IdleHold], now: int) -> dict[str, Any]:
    """The JSON a webhook gets: ``text`` (the notice's subject and plain text, escaped as
    Slack's incoming webhooks want), ``user`` and ``gpus``, one object per idle GPU (the
    data as it is)."""
    message = notice(user, holds, now)
    ordered = sorted(holds, key=lambda hold: (hold.host, hold.gpu_index, hold.gpu_uuid))
    return {
        "text": slack_text(f"{message.subject}\n\n{message.text}".strip()),
        "user": user,
        "gpus": [
            {
                "host": hold.host,
                "gpu_index": hold.gpu_index,
                "gpu_uuid": hold.gpu_uuid,
                "model": hold.model,
                "idle_since": params.iso(hold.idle_since),
                "idle_minutes": max(now - hold.idle_since, 0) // 60,
                "memory_mb": hold.memory_mb,
                "step": hold.step,
                "due": hold.due,
            }
            for hold in ordered
        ],
    }


def gpu_count(holds: Sequence[IdleHold]) -> int:
    """The GPUs of ``holds``: one two users hold counts once."""
    return len({(hold.host, hold.gpu_uuid) for hold in holds})


def channel_name(channel: str) -> str:
    """``e-mail`` or ``webhook``, as the admin and the command name them."""
    return "e-mail" if channel == "email" else channel


def digest(idle: Sequence[IdleHold], outcomes: Sequence[Outcome], now: int) -> Message:
    """The message to the admins: every GPU held idle at ``now`` (``idle``), whom this
    run told and through what, whom it could not and why."""
    ordered = sorted(idle, key=lambda hold: (hold.host, hold.gpu_index, hold.user))
    context = {
        "rows": [_row(hold, now) for hold in ordered],
        "count": gpu_count(ordered),  # GPUs: two users holding one count once
        "users": len({hold.user for hold in ordered}),
        "told": [(o, channel_name(o.channel)) for o in outcomes if o.ok],
        "failed": [(o, channel_name(o.channel)) for o in outcomes if not o.ok],
        "excluded": sorted({hold.user for hold in ordered if recipients.excluded(hold.user)}),
        "source": SOURCE,
        "now": when(now),
    }
    return Message(
        subject=_one_line(render_to_string("gpu_monitor/notify/digest_subject.txt", context)),
        text=_text(render_to_string("gpu_monitor/notify/digest.txt", context)),
        html=render_to_string("gpu_monitor/notify/digest.html", context),
    )

"""The record of every notice ``gpu_notify`` sends (or could not send).

An idle episode is one idle run of one hold: ``(host, gpu_uuid, user, idle_since)``, where
``idle_since`` is the usage hold's ``idle_since`` (Unix seconds). A hold that stops being
idle and goes idle again, or ends and starts again, has a new ``idle_since``: a new
episode. ``step`` 0 is the first notice of an episode, 1 to ``NOTIFY_MAX_REMINDERS`` its
reminders.

One row per episode, step and channel, claimed (INSERT, status ``sending``) before the
message goes out: the unique constraint ``gpu_notify_once`` lets one ``gpu_notify`` of
two running at once claim it, so nothing is sent twice for one episode and step. A run
that dies between the claim and the send leaves the row ``sending``: that notice is never
sent (at most once, see docs/notify.md).
"""

from __future__ import annotations

from django.db import models


class Notice(models.Model):
    """One notice about one idle-held GPU to its holder, through one channel. A message
    to a person lists all their idle GPUs: one row per GPU, the same ``created``."""

    class Channel(models.TextChoices):
        EMAIL = "email", "e-mail"
        WEBHOOK = "webhook", "webhook"

    class Status(models.TextChoices):
        SENDING = "sending", "sending"  # claimed; still so after a run that died
        SENT = "sent", "sent"
        FAILED = "failed", "failed"  # ``error`` says why; retried by the next run
        NO_ADDRESS = "no_address", "no address"  # nobody to send it to (the digest says)

    host = models.CharField(max_length=255)
    gpu_uuid = models.CharField(max_length=96)
    gpu_index = models.PositiveSmallIntegerField()
    user = models.CharField(max_length=255)  # the holder
    idle_since = models.BigIntegerField()  # Unix seconds: the episode
    step = models.PositiveSmallIntegerField()  # 0: the first notice; n: the n-th reminder
    channel = models.CharField(max_length=16, choices=Channel.choices)
    address = models.CharField(max_length=254, blank=True)  # e-mail, or the webhook's host
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SENDING)
    error = models.TextField(blank=True)
    created = models.BigIntegerField()  # Unix seconds: claimed
    sent = models.BigIntegerField(null=True)  # Unix seconds: sent (status "sent")
    memory_mb = models.BigIntegerField(default=0)  # held by the user when told

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["host", "gpu_uuid", "user", "idle_since", "step", "channel"],
                name="gpu_notify_once",
            ),
        )
        indexes = (
            models.Index(fields=["-created"], name="gpu_notify_created"),  # the admin
            # summary.notified: the notices of the episodes since the oldest asked about.
            models.Index(fields=["idle_since"], name="gpu_notify_idle_since"),
        )
        ordering = ("-created", "host", "gpu_index", "user")

    def __str__(self) -> str:
        return f"{self.channel} to {self.user} about {self.host} GPU {self.gpu_index}"

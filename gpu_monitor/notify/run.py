"""One run of ``gpu_notify``: tell each holder of an idle GPU, once per idle episode and
step, and the admins what this run did.

``notify(now=None, dry_run=False)`` reads the GPUs held idle for ``NOTIFY_IDLE_MINUTES``
(``usage.report.idle_now``), finds each episode's due step from its ``Notice`` rows (per
channel), and sends every person ONE message per channel listing all their due GPUs.

At most once: each row is claimed before its message goes out (an INSERT with status
``sending`` in its own transaction; the unique constraint ``gpu_notify_once`` lets one of
two runs have it, the other skips it; a failed row is taken back by a conditional
UPDATE), then set ``sent`` or ``failed``. A run that dies between the claim and the send
leaves the row ``sending``: that notice is never sent (docs/notify.md says why).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, router, transaction
from django.db.models import Exists, Max, OuterRef

from gpu_monitor.conf import conf
from gpu_monitor.history.models import Sample
from gpu_monitor.notify import channels, messages, recipients
from gpu_monitor.notify.messages import IdleHold, Outcome
from gpu_monitor.notify.models import Notice
from gpu_monitor.usage.models import Hold
from gpu_monitor.usage.report import idle_now

logger = logging.getLogger(__name__)
EMAIL = Notice.Channel.EMAIL.value
WEBHOOK = Notice.Channel.WEBHOOK.value
MODEL_WINDOW = 3600  # seconds of samples searched for a GPU's name (its newest)
Key = tuple[str, str, str, int, str]  # host, gpu_uuid, user, idle_since, channel


@dataclass(frozen=True)
class Due:
    """A step of one episode due through one channel; ``retry``: the failed row's id."""

    hold: IdleHold
    retry: int | None = None


@dataclass
class Result:
    """What one run did (with ``dry_run``: would do).

    ``idle``: every GPU held idle now (the excluded users' too); ``outcomes``: each
    person's notice through each channel; ``excluded``: the users never told;
    ``digest_to``: the admins the digest went to (with ``dry_run``: would go to);
    ``digest_error``: why it could not go ("" when it went or was not due);
    ``no_admins``: a digest was due and nobody to get it; ``news``: what makes a digest
    due (a notice sent, a send that failed for the first time, a person found with
    nobody to send to): a retry that fails again is said on stderr, not mailed to the
    admins at every run of an outage.
    """

    idle: list[IdleHold] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    digest_to: list[str] = field(default_factory=list)
    digest_error: str = ""
    no_admins: bool = False
    news: int = 0  # notices this run sent, first failures, and new "no address" rows

    @property
    def failed(self) -> list[Outcome]:
        """The notices whose send failed (not those with nobody to send to)."""
        return [o for o in self.outcomes if not o.ok and o.address]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.digest_error


def idle_minutes() -> int:
    minutes = conf.get("NOTIFY_IDLE_MINUTES")
    return int(conf.get("USAGE_IDLE_MINUTES") if minutes is None else minutes)


def epoch(iso: str) -> int:
    """An API time (``2026-12-07T09:10:00Z``) as Unix seconds."""
    return int(datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def gpu_models(gpus: Sequence[dict[str, Any]], now: int) -> dict[tuple[str, str], str]:
    """``{(host, gpu_uuid): name}`` from each GPU's newest sample of the last
    ``MODEL_WINDOW`` seconds, one query; a GPU without one is absent."""
    keys = {(gpu["host"], gpu["gpu_uuid"]) for gpu in gpus}
    if not keys:
        return {}
    rows = (
        Sample.objects.using(router.db_for_read(Sample))
        .filter(
            host__in={host for host, _ in keys},
            gpu_uuid__in={uuid for _, uuid in keys},
            epoch__gte=now - MODEL_WINDOW,
            epoch__lte=now,
        )
        .exclude(name="")
        .order_by()
        .values("host", "gpu_uuid", "name")
        .annotate(last=Max("epoch"))
    )
    newest: dict[tuple[str, str], tuple[int, str]] = {}
    for row in rows:
        key = (row["host"], row["gpu_uuid"])
        if key in keys and (key not in newest or row["last"] > newest[key][0]):
            newest[key] = (row["last"], row["name"])
    return {key: name for key, (_, name) in newest.items()}


def recorded(holds: Sequence[IdleHold], using: str) -> dict[Key, dict[int, Notice]]:
    """The notices of the episodes of ``holds``, ``{(episode, channel): {step: row}}``:
    one query, of the episodes since the oldest of ``holds`` (an OR per episode would
    pass SQLite's expression depth limit with a thousand), matched here."""
    if not holds:
        return {}
    wanted = {(h.host, h.gpu_uuid, h.user, h.idle_since) for h in holds}
    since = min(hold.idle_since for hold in holds)
    found: dict[Key, dict[int, Notice]] = defaultdict(dict)
    for row in Notice.objects.using(using).filter(idle_since__gte=since).order_by():
        if (row.host, row.gpu_uuid, row.user, row.idle_since) in wanted:
            found[(row.host, row.gpu_uuid, row.user, row.idle_since, row.channel)][row.step] = row
    return found


def due_step(rows: dict[int, Notice], now: int) -> tuple[int, int | None] | None:
    """The step of an episode due through a channel whose rows are ``rows``, and the id of
    the failed row to retry (None: a new row); None when nothing is due: the last step is
    being sent (or its run died), it went less than ``NOTIFY_REPEAT`` ago, or it was the
    last reminder."""
    if not rows:
        return 0, None
    last = max(rows)
    row = rows[last]
    if row.status == Notice.Status.FAILED:
        return last, row.pk
    if row.status == Notice.Status.SENDING:
        return None
    told = row.sent if row.sent is not None else row.created  # sent, or no address
    if last < conf.get("NOTIFY_MAX_REMINDERS") and now >= told + conf.get("NOTIFY_REPEAT"):
        return last + 1, None
    return None


def claim(due: Due, channel: str, address: str, error: str, now: int, using: str) -> int | None:
    """Take the row of ``due`` for this run: status ``sending`` (``no_address`` with
    ``error`` when ``address`` is empty); its id, or None when another run has it."""
    status = Notice.Status.SENDING if address else Notice.Status.NO_ADDRESS
    rows = Notice.objects.using(using)
    if due.retry is not None:
        # ``created`` stays the first claim, ``error`` the last failure (the admin's record)
        taken = rows.filter(pk=due.retry, status=Notice.Status.FAILED).update(
            status=status, address=address, sent=None
        )
        return due.retry if taken else None
    hold = due.hold
    try:
        with transaction.atomic(using=using):
            row = rows.create(
                host=hold.host,
                gpu_uuid=hold.gpu_uuid,
                gpu_index=hold.gpu_index,
                user=hold.user,
                idle_since=hold.idle_since,
                step=hold.step,
                channel=channel,
                address=address,
                status=status,
                error=error,
                created=now,
                memory_mb=hold.memory_mb,
            )
    except IntegrityError:
        return None
    return int(row.pk)


def deliver(
    user: str,
    dues: list[Due],
    channel: str,
    address: str,
    why: str,
    send: Callable[[Sequence[IdleHold]], None],
    context: tuple[int, str, bool],
) -> Outcome | None:
    """Claim ``dues``' rows, send the message listing those this run got (``send``, given
    their holds), record how it went; None when another run had them all. ``context``:
    now, the database, and whether this is a dry run (nothing claimed, sent or recorded)."""
    now, using, dry_run = context
    if dry_run:
        holds = tuple(due.hold for due in dues)
        return Outcome(user, holds, channel, address, bool(address), "" if address else why)
    with transaction.atomic(using=using):  # one commit a person (each claim a savepoint)
        claimed = [(due, claim(due, channel, address, why, now, using)) for due in dues]
    mine = [(due, pk) for due, pk in claimed if pk is not None]
    if not mine:
        return None
    holds = tuple(due.hold for due, _ in mine)
    if not address:
        return Outcome(user, holds, channel, "", False, why)
    rows = Notice.objects.using(using).filter(pk__in=[pk for _, pk in mine])
    try:
        send(holds)
    except channels.SendError as exc:
        rows.update(status=Notice.Status.FAILED, error=str(exc))
        logger.info("%s to %s (%s) failed: %s", channel, user, address, exc)
        retried = all(due.retry is not None for due, _ in mine)
        return Outcome(user, holds, channel, address, False, str(exc), repeated=retried)
    rows.update(status=Notice.Status.SENT, sent=now)
    logger.info("%s to %s (%s): %d GPU(s)", channel, user, address, len(holds))
    return Outcome(user, holds, channel, address, True, "")


def notify(now: int | None = None, dry_run: bool = False) -> Result:
    """One run (see the module's docstring); ``now``: Unix seconds (default the time)."""
    at = int(time.time()) if now is None else now
    using = router.db_for_write(Notice)
    gpus = idle_now(minutes=idle_minutes(), now=at)["gpus"]
    names = gpu_models(gpus, at)
    holds = [
        IdleHold(
            host=gpu["host"],
            gpu_index=gpu["gpu_index"],
            gpu_uuid=gpu["gpu_uuid"],
            user=gpu["user"],
            model=names.get((gpu["host"], gpu["gpu_uuid"]), ""),
            idle_since=epoch(gpu["idle_since"]),
            memory_mb=gpu["memory_mb"],
            step=0,
        )
        for gpu in gpus
    ]
    result = Result(excluded=sorted({h.user for h in holds if recipients.excluded(h.user)}))
    url = conf.get("NOTIFY_WEBHOOK_URL")
    wanted = [EMAIL, WEBHOOK] if url else [EMAIL]
    rows = recorded(holds, using)
    due: dict[str, dict[str, list[Due]]] = {channel: defaultdict(list) for channel in wanted}
    for hold in holds:
        steps = []  # per channel: the step due, else the last one recorded
        for channel in wanted:
            key = (hold.host, hold.gpu_uuid, hold.user, hold.idle_since, channel)
            found = due_step(rows.get(key, {}), at)
            steps.append(max(rows[key]) if found is None else found[0])
            if found is not None and hold.user not in result.excluded:
                step, retry = found
                due[channel][hold.user].append(Due(dataclasses.replace(hold, step=step), retry))
        result.idle.append(dataclasses.replace(hold, step=steps[0]))
    context = (at, using, dry_run)
    mine: dict[str, list[IdleHold]] = defaultdict(list)  # each person's idle GPUs
    for hold in result.idle:
        mine[hold.user].append(hold)
    for user, dues in sorted(due[EMAIL].items()):
        address, why = recipients.address(user)
        send = _email(user, address, at, mine[user])
        outcome = deliver(user, dues, EMAIL, address or "", why, send, context)
        if outcome is not None:
            result.outcomes.append(outcome)
    if url:
        _webhooks(url, due[WEBHOOK], result, context, mine)
    result.news = sum(1 for outcome in result.outcomes if not outcome.repeated)
    if result.news:
        _digest(result, at, dry_run)
    return result


def listed(holds: Sequence[IdleHold], idle: Sequence[IdleHold]) -> list[IdleHold]:
    """What a message lists: the due ``holds``, and the person's other idle GPUs of
    ``idle`` (told before, not due now: ``due`` False), so it names all of them."""
    told = {(hold.host, hold.gpu_uuid) for hold in holds}
    others = [h for h in idle if (h.host, h.gpu_uuid) not in told]
    return [*holds, *(dataclasses.replace(hold, due=False) for hold in others)]


def _email(
    user: str, address: str | None, at: int, idle: Sequence[IdleHold]
) -> Callable[[Sequence[IdleHold]], None]:
    def send(holds: Sequence[IdleHold]) -> None:
        message = messages.notice(user, listed(holds, idle), at)
        channels.send_email([address or ""], message)

    return send


def _post(
    url: str, user: str, at: int, idle: Sequence[IdleHold]
) -> Callable[[Sequence[IdleHold]], None]:
    timeout = float(conf.get("NOTIFY_WEBHOOK_TIMEOUT"))

    def send(holds: Sequence[IdleHold]) -> None:
        payload = messages.webhook_payload(user, listed(holds, idle), at)
        channels.post_webhook(url, payload, timeout)

    return send


def _webhooks(
    url: str,
    due: dict[str, list[Due]],
    result: Result,
    context: tuple[int, str, bool],
    mine: dict[str, list[IdleHold]],
) -> None:
    """Each person's payload to the webhook. After one failure the rest are not tried
    (nor claimed: the next run has them): a webhook that hangs costs a run at most its
    timeout twice (one retry)."""
    at = context[0]
    address = channels.webhook_address(url)
    broken = ""
    for user, dues in sorted(due.items()):
        holds = [d.hold for d in dues]
        if broken:
            error = f"not tried: the webhook failed for an earlier person in this run ({broken})"
            skipped = Outcome(user, tuple(holds), WEBHOOK, address, False, error, repeated=True)
            result.outcomes.append(skipped)
            continue
        send = _post(url, user, at, mine[user])
        outcome = deliver(user, dues, WEBHOOK, address, "", send, context)
        if outcome is not None:
            result.outcomes.append(outcome)
            broken = outcome.error


def _digest(result: Result, at: int, dry_run: bool) -> None:
    """The digest to the admins: this run sent, failed or had nobody to send to
    (``dry_run``: only whom it would go to)."""
    admins = recipients.admins()
    if not admins:
        result.no_admins = True
        return
    if dry_run:
        result.digest_to = admins
        return
    try:
        channels.send_email(admins, messages.digest(result.idle, result.outcomes, at))
    except channels.SendError as exc:
        result.digest_error = str(exc)
        return
    result.digest_to = admins


def prune_notices(now: int, using: str) -> str:
    """``gpu_history_maintain``'s upkeep: delete the notices claimed more than
    ``USAGE_RETENTION`` days before ``now``, except those of an episode still held idle
    (deleting them would tell its holder again from the first notice)."""
    days = conf.get("USAGE_RETENTION")
    ongoing = Hold.objects.using(using).filter(
        host=OuterRef("host"),
        gpu_uuid=OuterRef("gpu_uuid"),
        user=OuterRef("user"),
        idle_since=OuterRef("idle_since"),
        ended_epoch__isnull=True,
    )
    old = Notice.objects.using(using).filter(created__lt=now - days * 86400)
    deleted, _ = old.exclude(Exists(ongoing)).delete()
    return f"notify: deleted {deleted} notice(s) older than {days} day(s)"

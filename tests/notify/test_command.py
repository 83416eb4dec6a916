"""manage.py gpu_notify: what it says per person, --dry-run, --verbosity, --loop, and its
exit codes (0; 1 when a send failed; 2 on bad arguments or a bad setting)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import DatabaseError

from gpu_monitor.notify import channels
from gpu_monitor.notify import run as notify_run
from gpu_monitor.notify.models import Notice
from tests.notify.holds import NOW, hold

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def settings_for_notify(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.GPU_MONITOR = {"NOTIFY_ADDRESSES": {"alice": "alice@example.org"}}
    settings.ADMINS = [("GPU admins", "gpu-admins@example.org")]
    monkeypatch.setattr(notify_run, "time", SimpleNamespace(time=lambda: NOW))


def gpu_notify(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("gpu_notify", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_says_per_person_what_was_sent_and_the_digest() -> None:
    hold()
    hold(user="bob", gpu=1)

    out, err = gpu_notify()

    assert out.splitlines() == [
        "Told alice <alice@example.org> by e-mail: node-1 GPU 0 (first notice).",
        "Could not tell bob (no address: no Django user 'bob' with an e-mail, not in "
        "NOTIFY_ADDRESSES, no NOTIFY_EMAIL_DOMAIN): node-1 GPU 1 (first notice).",
        "Digest sent to gpu-admins@example.org.",
    ]
    assert err == ""


def test_nothing_new_is_said_and_nothing_sent() -> None:
    out, err = gpu_notify()

    assert (out, err, mail.outbox) == (
        "Nothing new to tell: 0 GPU(s) held idle for 60 min or more.\n",
        "",
        [],
    )


def test_dry_run_says_what_it_would_send_and_sends_and_records_nothing() -> None:
    hold()
    hold(user="bob", gpu=1)

    out, _ = gpu_notify("--dry-run")

    assert out.splitlines() == [
        "Would tell alice <alice@example.org> by e-mail: node-1 GPU 0 (first notice).",
        "Would not tell bob: no address: no Django user 'bob' with an e-mail, not in "
        "NOTIFY_ADDRESSES, no NOTIFY_EMAIL_DOMAIN: node-1 GPU 1 (first notice).",
        "Would send the digest to gpu-admins@example.org.",
    ]
    assert (mail.outbox, Notice.objects.count()) == ([], 0)


def test_verbosity_0_says_nothing_on_stdout() -> None:
    hold()

    assert gpu_notify("--verbosity", "0") == ("", "")
    assert len(mail.outbox) == 2  # alice's, and the digest


def test_no_admins_is_said_once_on_stdout(settings: Any) -> None:
    settings.ADMINS = []
    hold()

    out, err = gpu_notify()

    assert out.splitlines()[-1] == (
        "No digest: neither NOTIFY_ADMINS nor ADMINS names anyone to send it to."
    )
    assert err == ""


def test_a_failed_send_is_said_per_recipient_on_stderr_the_rest_sent_exit_1(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.GPU_MONITOR = {"NOTIFY_ADDRESSES": {"alice": "a@x.org", "bob": "b@x.org"}}
    hold()
    hold(user="bob", gpu=1)
    real = channels.send_email

    def refuse_alice(addresses: list[str], message: Any) -> None:
        if addresses == ["a@x.org"]:
            raise channels.SendError("SMTP 550 mailbox unavailable")
        real(addresses, message)

    monkeypatch.setattr(channels, "send_email", refuse_alice)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="could not be sent") as raised:
        call_command("gpu_notify", stdout=out, stderr=err)

    assert raised.value.returncode == 1
    assert err.getvalue() == (
        "Failed to tell alice <a@x.org> by e-mail: SMTP 550 mailbox unavailable\n"
    )
    assert "Told bob <b@x.org> by e-mail: node-1 GPU 1 (first notice)." in out.getvalue()
    assert [m.to for m in mail.outbox] == [["b@x.org"], ["gpu-admins@example.org"]]


def test_a_bad_setting_is_refused_with_the_problem_exit_2(settings: Any) -> None:
    settings.GPU_MONITOR = {"NOTIFY_REPEAT": 0}
    hold()

    with pytest.raises(CommandError, match=r"NOTIFY_REPEAT'\] must be a whole number") as raised:
        gpu_notify()

    assert raised.value.returncode == 2
    assert mail.outbox == []


@pytest.mark.parametrize("loop", ["0", "2d", "x"])
def test_a_bad_loop_is_an_argument_error(loop: str) -> None:
    with pytest.raises(CommandError, match="--loop"):
        gpu_notify("--loop", loop)


def test_loop_runs_until_sigterm_then_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[bool] = []

    def one_run(now: int | None = None, dry_run: bool = False) -> Any:
        runs.append(dry_run)
        if len(runs) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives during the second run
        return notify_run.Result()

    monkeypatch.setattr("gpu_monitor.notify.management.commands.gpu_notify.notify", one_run)
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))  # in the wait
    timer.start()
    try:
        out, err = gpu_notify("--loop", "1s", "--dry-run")
    finally:
        timer.cancel()

    assert out.startswith("Telling the holders of idle GPUs every 1 s; SIGTERM or Ctrl-C stops.")
    assert err == ""
    assert runs == [True]  # SIGINT in the first wait ended it before a second run
    assert signal.getsignal(signal.SIGTERM) is before


def test_loop_ends_after_the_run_a_signal_arrived_in(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []

    def one_run(now: int | None = None, dry_run: bool = False) -> Any:
        runs.append(1)
        os.kill(os.getpid(), signal.SIGTERM)
        return notify_run.Result()

    monkeypatch.setattr("gpu_monitor.notify.management.commands.gpu_notify.notify", one_run)

    gpu_notify("--loop", "600")  # no wait: the signal came during the run

    assert runs == [1]


def manage(*args: str, database: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DJANGO_SQLITE_PATH": str(database),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bad_arguments_exit_2_with_the_error_on_stderr(tmp_path: Path) -> None:
    result = manage("gpu_notify", "--loop", "soon", database=tmp_path / "db.sqlite3")

    assert (result.returncode, result.stdout) == (2, "")
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "manage.py gpu_notify: error: argument --loop: a duration is a positive whole number"
    )


def test_without_the_tables_it_says_to_migrate_exit_1(tmp_path: Path) -> None:
    result = manage("gpu_notify", database=tmp_path / "db.sqlite3")

    assert result.returncode == 1
    assert result.stderr.startswith(
        "CommandError: The usage or notice tables cannot be read or written (no such table: "
    )
    assert result.stderr.endswith("run manage.py migrate.\n")


def test_loop_says_a_database_error_and_runs_again(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []

    def one_run(now: int | None = None, dry_run: bool = False) -> Any:
        runs.append(1)
        if len(runs) == 1:
            raise DatabaseError("server closed the connection unexpectedly")
        os.kill(os.getpid(), signal.SIGTERM)
        return notify_run.Result()

    monkeypatch.setattr("gpu_monitor.notify.management.commands.gpu_notify.notify", one_run)
    monkeypatch.setattr(threading.Event, "wait", lambda self, timeout=None: self.is_set())

    out, err = gpu_notify("--loop", "600", "--verbosity", "0")

    assert runs == [1, 1]
    assert (out, err) == (
        "",
        "The usage or notice tables cannot be read or written (server closed the connection "
        "unexpectedly): run manage.py migrate.\n",
    )

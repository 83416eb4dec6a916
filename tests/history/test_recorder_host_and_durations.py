"""``gpu_record --host``: only names that the fleet's URLs can open; and the one duration
grammar (``gpu_monitor.params``) that gpu_record and gpu_history_maintain both read."""

from __future__ import annotations

import argparse
from urllib.parse import unquote

import pytest
from django.core.management import ManagementUtility
from django.urls import NoReverseMatch, resolve, reverse

from gpu_monitor import params
from gpu_monitor.history.management.commands import gpu_history_maintain, gpu_record
from gpu_monitor.history.models import Sample

pytestmark = pytest.mark.django_db(transaction=True)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """A command as from a shell: its exit status, stdout and stderr."""
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", *args]).execute()
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("rack-1/node-7", "argument --host: --host must not contain '/'"),
        ("/", "argument --host: --host must not contain '/'"),
        ("node\n7", "argument --host: --host must not contain a control character ('\\n')"),
        ("node\x007", "argument --host: --host must not contain a control character ('\\x00')"),
        ("node\x7f", "argument --host: --host must not contain a control character ('\\x7f')"),
        (".", "argument --host: --host cannot be '.'"),
        ("..", "argument --host: --host cannot be '..'"),
    ],
)
def test_a_host_the_fleet_urls_cannot_name_is_exit_2(
    capsys: pytest.CaptureFixture[str], host: str, says: str
) -> None:
    code, out, err = run(capsys, "gpu_record", "--once", "--host", host)

    assert code == 2, err
    assert says in err
    assert out == ""
    assert not Sample.objects.exists()


@pytest.mark.parametrize("host", ["node-7", "gpu node #1?", "50%", "nœud-ü", "a.b:8000", "h" * 255])
def test_every_host_the_option_takes_opens_at_its_fleet_url(host: str) -> None:
    assert gpu_record.host_name(host) == host
    url = reverse("gpu_monitor:host", kwargs={"host": host})
    assert unquote(url).endswith(f"/hosts/{host}")  # one path segment, as the pattern reads
    assert resolve(unquote(url)).kwargs == {"host": host}


def test_a_host_with_a_slash_has_no_fleet_url_hence_the_refusal() -> None:
    """Why "/" is refused: no URL of the fleet's names such a host."""
    with pytest.raises(argparse.ArgumentTypeError):
        gpu_record.host_name("rack-1/node-7")
    with pytest.raises(NoReverseMatch):
        reverse("gpu_monitor:host", kwargs={"host": "rack-1/node-7"})


def test_both_commands_read_durations_with_the_params_grammar() -> None:
    record = gpu_record.Command().create_parser("manage.py", "gpu_record")
    maintain = gpu_history_maintain.Command().create_parser("manage.py", "gpu_history_maintain")
    taken = {
        name: {action.dest: action.type for action in parser._actions}
        for name, parser in (("record", record), ("maintain", maintain))
    }

    assert taken["record"]["retention"] is params.retention
    assert taken["maintain"]["retention"] is params.retention
    assert gpu_record.interval("1d") == 86400  # the interval is params.duration, capped at 1d
    with pytest.raises(argparse.ArgumentTypeError, match="the maximum is 1d"):
        gpu_record.interval("25h")


def test_gpu_history_maintain_no_longer_imports_from_gpu_record() -> None:
    source = gpu_history_maintain.__file__
    with open(source, encoding="utf-8") as file:
        text = file.read()

    assert "commands.gpu_record" not in text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0", "a duration is a positive whole number with s, m, h, d or w (7d, 12h), not '0'"),
        ("3651d", "'3651d' is too large: the maximum is 3650d (315360000 s)"),
        ("9" * 50, f"'{'9' * 20}...' is too large: the maximum is 3650d (315360000 s)"),
    ],
)
def test_the_duration_messages_are_the_params_grammar_s(text: str, says: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as raised:
        params.duration(text)

    assert str(raised.value) == says


def test_retention_off_in_any_case_is_none_and_otherwise_a_duration() -> None:
    assert params.retention(" Off ") is None
    assert params.retention("2w") == 2 * 604800

"""gpu_record --push in this process, against the test's HTTP server: the token from a
file or the environment (never said back), the options that do not go with it, and the
site's answers as the command's. No test here may touch the database (pytest-django
refuses it without the django_db mark): a pushing node has none."""

from __future__ import annotations

import io
from pathlib import Path
from types import ModuleType

import pytest
from django.core.management import CommandError, call_command

from tests.history import test_push
from tests.history.test_push import TOKEN, Answer, FakeSite, refused_port

site = test_push.site  # the fixture: the test's HTTP server

SECRET = "gpumon_s3cret-Never-Said"


def record(*args: str) -> str:
    out = io.StringIO()
    call_command("gpu_record", "--host", "node-1", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(f"{TOKEN}\n")
    return path


def test_once_pushes_one_tick_with_its_processes(
    fake_nvml: ModuleType, site: FakeSite, token_file: Path
) -> None:
    site.script = [Answer()]
    said = record("--push", site.url, "--token-file", str(token_file), "--once")

    assert said.startswith("Recorded host 'node-1' at ") and said.endswith(": 2 GPU(s).\n")
    ((headers, body),) = site.requests
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    (tick,) = body["ticks"]
    assert len(tick["devices"]) == 2 and tick["processes"] is not None
    assert tick["driver"]["driver_version"] == "580.159.04"


def test_the_token_comes_from_the_environment_without_a_file(
    fake_nvml: ModuleType, site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPU_MONITOR_TOKEN", f" {SECRET} ")
    site.script = [Answer()]
    record("--push", site.url, "--once")
    assert site.requests[0][0]["Authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "cannot read it (No such file or directory)."),
        ("\n  \n", "is empty: it holds the host's token."),
        (f"{SECRET} more", "is not one: a token is one word of printable ASCII."),
        (f"{SECRET}é", "is not one: a token is one word of printable ASCII."),
        (b"\xff\xfe", "cannot read it (not UTF-8 text)."),
    ],
)
def test_a_token_file_that_is_no_use_is_named_and_its_content_never_said(
    fake_nvml: ModuleType, tmp_path: Path, content: str | bytes | None, said: str
) -> None:
    path = tmp_path / "token"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(CommandError) as raised:
        record("--push", refused_port(), "--token-file", str(path), "--once")
    assert str(path) in str(raised.value) and said in str(raised.value)
    assert SECRET not in str(raised.value)


def test_no_token_at_all_is_said_before_sampling(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GPU_MONITOR_TOKEN", raising=False)
    with pytest.raises(CommandError, match="--push needs the host's token: in a file"):
        record("--push", refused_port(), "--once")
    assert fake_nvml.CALLS["nvmlDeviceGetCount"] == 0


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--push", "ftp://gpus.example.org/"], "an http or https URL, such as"),
        (["--push", "gpus.example.org/api/gpu/ingest"], "an http or https URL"),
        (["--push", "https://user:pw@gpus.example.org/"], "must not hold a user or password"),
        (["--push", "https://gpus.example.org:99999/"], "not a URL (Port out of range"),
        (["--push", "https://gpus.example.org/a b"], "a URL has no space or control character"),
        (["--token-file", "/nowhere"], "--token-file is for --push"),
        (["--push", "http://127.0.0.1:1/", "--retention", "1d"], "--retention is the site's"),
        (["--push", "http://127.0.0.1:1/", "--retention", "off"], "--retention is the site's"),
    ],
)
def test_options_that_do_not_go_together_are_refused(
    fake_nvml: ModuleType, token_file: Path, args: list[str], said: str
) -> None:
    if "--push" in args and "--token-file" not in args:
        args = [*args, "--token-file", str(token_file)]
    with pytest.raises(CommandError, match=said.replace("(", r"\(")):
        record(*args, "--once")  # --once: a mistake that lets it run ends all the same


def test_a_refusal_is_the_command_s_error_with_the_site_s_detail(
    fake_nvml: ModuleType, site: FakeSite, token_file: Path
) -> None:
    site.script = [Answer(401, b'{"detail": "This token was revoked."}')]
    with pytest.raises(CommandError) as raised:
        record("--push", site.url, "--token-file", str(token_file), "--once")
    assert str(raised.value) == (
        "The site refused the token (HTTP 401: This token was revoked.): give a valid one in "
        "--token-file or GPU_MONITOR_TOKEN (manage.py gpu_host_token create HOST on the "
        "site) (1 tick(s) not written)."
    )


def test_an_unreachable_site_leaves_the_tick_unwritten(
    fake_nvml: ModuleType, token_file: Path
) -> None:
    with pytest.raises(CommandError) as raised:
        record("--push", refused_port(), "--token-file", str(token_file), "--once")
    assert str(raised.value).startswith("1 tick(s) could not be written: the site is unreachable (")
    assert "Connection refused" in str(raised.value)


def test_no_option_is_taken_by_its_abbreviation(fake_nvml: ModuleType) -> None:
    """``--token TOKEN`` is not ``--token-file``: no abbreviation passes, so no token
    lands on the command line as a file name (and in the error that names it)."""
    with pytest.raises(CommandError, match="unrecognized arguments: --token gpumon_x"):
        record("--push", "http://127.0.0.1:1/api/gpu/ingest", "--token", "gpumon_x", "--once")
    with pytest.raises(CommandError, match="unrecognized arguments: --proc"):
        record("--proc", "--once")


def test_once_says_when_the_site_had_the_tick_already(
    fake_nvml: ModuleType, site: FakeSite, token_file: Path
) -> None:
    """Two --once of one host in one second: the second is not "Recorded"."""
    site.script = [Answer(body=b'{"host": "node-1", "written": 0, "duplicates": 1}')]
    said = record("--push", site.url, "--token-file", str(token_file), "--once")

    assert said.startswith("Host 'node-1' at ")
    assert said.endswith(": the site had this tick already, not written again.\n")

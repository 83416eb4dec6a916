"""Host tokens: ``manage.py gpu_host_token create|list|revoke`` (the token once on stdout,
nothing else there, stderr clean), stored as their SHA-256 only, and the admin's
read-only list with its revoke action."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from gpu_monitor.fleet import tokens
from gpu_monitor.fleet.models import HostToken
from gpu_monitor.params import iso

pytestmark = pytest.mark.django_db
PAGE = "/admin/gpu_monitor_fleet/hosttoken/"


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("gpu_host_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_prints_the_token_once_and_stores_its_digest_only() -> None:
    out, err = run("create", "node-1")

    token = out.strip()
    assert out == token + "\n" and err == ""
    assert token.startswith("gpumon_") and len(token) == len("gpumon_") + 43
    row = HostToken.objects.get()
    assert (row.host, row.key) == ("node-1", token[7:15])
    assert row.digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(list(HostToken.objects.values()))
    assert tokens.find(token) == row


def test_create_says_more_on_stderr_only_when_asked() -> None:
    out, err = run("create", "node-1", "--verbosity", "2")

    assert out.count("\n") == 1
    assert "shown once" in err and "node-1" in err


@pytest.mark.parametrize(
    ("host", "says"), [("a/b", "must not contain '/'"), (" ", "cannot be empty"), ("..", "..")]
)
def test_a_host_name_that_gpu_record_refuses_is_refused(host: str, says: str) -> None:
    with pytest.raises(CommandError, match="argument HOST") as refused:
        run("create", host)

    assert says in str(refused.value)
    assert not HostToken.objects.exists()


def test_list_shows_every_token_but_never_the_token() -> None:
    _, first = tokens.create("node-1")
    tokens.create("node-2")
    tokens.revoke(host="node-2")

    out, err = run("list")
    one, _ = run("list", "node-1")

    lines = out.splitlines()
    assert lines[0].split() == ["Host", "Id", "Created", "Last", "used", "Revoked"]
    assert [line.split()[0] for line in lines[1:]] == ["node-1", "node-2"]
    assert lines[1].split()[3] == "-" and lines[2].split()[4].endswith("Z")
    assert first not in out and err == ""
    assert [line.split()[0] for line in one.splitlines()[1:]] == ["node-1"]
    assert run("list", "node-9") == ("No host tokens of that host.\n", "")


def test_revoke_a_host_or_one_token_by_id() -> None:
    one, _ = tokens.create("node-1")
    tokens.create("node-1")
    third, _ = tokens.create("node-1")

    assert run("revoke", "--id", one.key) == (f"Revoked 1 token(s) of id {one.key}.\n", "")
    assert run("revoke", "node-1") == ("Revoked 2 token(s) of host node-1.\n", "")
    assert run("revoke", "node-1") == ("Revoked 0 token(s) of host node-1.\n", "")
    assert not HostToken.objects.filter(revoked__isnull=True).exists()
    with pytest.raises(CommandError, match="No host token has the id 'nope'"):
        run("revoke", "--id", "nope")
    with pytest.raises(CommandError, match=r"Host nosuch has no token \(see gpu_host_token list"):
        run("revoke", "nosuch")  # a typo is not "Revoked 0 token(s)", exit 0
    with pytest.raises(CommandError, match="revoke needs a HOST"):
        run("revoke")
    with pytest.raises(CommandError, match="create needs a HOST"):
        run("create")
    with pytest.raises(CommandError, match="--id goes with revoke, without HOST"):
        run("list", "--id", one.key)
    assert third.key


def test_a_database_that_does_not_answer_is_a_command_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db import OperationalError

    def down(host: str) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(tokens, "create", down)

    with pytest.raises(CommandError, match="did not answer or refused"):
        run("create", "node-1")


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "x"))
    return client


def test_the_admin_lists_tokens_read_only_and_revokes(admin_client: Client) -> None:
    row, token = tokens.create("node-1")

    listed = admin_client.get(PAGE).content.decode()
    assert "node-1" in listed and row.key in listed and token not in listed
    assert '<th scope="col" class="sortable column-token_id">' in listed  # "Id", as the CLI
    assert row.digest not in listed
    assert admin_client.get(f"{PAGE}add/").status_code == 403
    detail = admin_client.get(f"{PAGE}{row.pk}/change/").content.decode()
    assert row.digest not in detail and 'name="host"' not in detail
    # The list's columns, as the list shows them: "id" (not "Key"), times in ISO.
    assert "<label>Id:</label>" in detail and "<label>Key:</label>" not in detail
    assert iso(row.created.timestamp()) in detail

    answer = admin_client.post(
        PAGE, {"action": "revoke", "_selected_action": [row.pk]}, follow=True
    )

    assert answer.status_code == 200
    assert "Revoked 1 host token(s)." in answer.content.decode()
    assert HostToken.objects.get().revoked is not None

"""notify.recipients: a holder's address in its order (Django user, NOTIFY_ADDRESSES, the
domain, nobody), the users never told, and the digest's admins."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from gpu_monitor.notify import recipients
from gpu_monitor.notify.recipients import address, admins, excluded

pytestmark = pytest.mark.django_db


@pytest.fixture
def notify_settings(settings: Any) -> dict[str, Any]:
    settings.GPU_MONITOR = {
        "NOTIFY_ADDRESSES": {"bob": "robert@lab.example.org", "carol": "carol@home.example"},
        "NOTIFY_EMAIL_DOMAIN": "example.org",
    }
    return settings.GPU_MONITOR


def test_django_user_first_then_addresses_then_domain(notify_settings: Any) -> None:
    users = get_user_model().objects
    users.create_user("bob", email="bob@staff.example.org")
    users.create_user("carol", email="")  # no e-mail: the mapping
    users.create_user("dave", email="dave@old.example.org", is_active=False)
    assert address("bob") == ("bob@staff.example.org", "")
    assert address("carol") == ("carol@home.example", "")
    assert address("dave") == ("dave@example.org", "")  # inactive: not his account's
    assert address("erin") == ("erin@example.org", "")


def test_addresses_before_the_domain(notify_settings: Any) -> None:
    assert address("bob") == ("robert@lab.example.org", "")


def test_nobody_says_why(settings: Any) -> None:
    settings.GPU_MONITOR = {}
    get_user_model().objects.create_user("bob", email="")
    found, why = address("bob")
    assert found is None
    assert why == (
        "no address: no Django user 'bob' with an e-mail, not in NOTIFY_ADDRESSES, "
        "no NOTIFY_EMAIL_DOMAIN"
    )


def test_unknown_and_notify_exclude_are_excluded(settings: Any) -> None:
    settings.GPU_MONITOR = {"NOTIFY_EXCLUDE": ["root", "slurm"]}
    assert excluded("unknown") and excluded("root") and excluded("slurm")
    assert not excluded("bob")
    settings.GPU_MONITOR = {}
    assert excluded("unknown") and not excluded("root")


@pytest.mark.parametrize(
    "given",
    [
        [("Ada", "ada@example.org"), ("Bo", "bo@example.org")],  # Django 5: pairs
        ["ada@example.org", "bo@example.org"],  # Django 6: addresses
    ],
)
def test_admins_from_django_admins_either_form(settings: Any, given: list[Any]) -> None:
    settings.GPU_MONITOR = {}
    settings.ADMINS = given
    assert admins() == ["ada@example.org", "bo@example.org"]


def test_notify_admins_first(settings: Any) -> None:
    settings.ADMINS = [("Ada", "ada@example.org")]
    settings.GPU_MONITOR = {"NOTIFY_ADMINS": ["ops@example.org"]}
    assert admins() == ["ops@example.org"]
    settings.GPU_MONITOR = {"NOTIFY_ADMINS": []}  # nobody: no digest
    assert admins() == []


def test_user_model_without_is_active(monkeypatch: pytest.MonkeyPatch) -> None:
    """A custom user model need not have ``is_active``: a stand-in over Group, whose
    ``name`` is both the username and the e-mail field."""

    class NoActive:
        USERNAME_FIELD = "name"
        _meta = Group._meta
        _default_manager = Group.objects

        @staticmethod
        def get_email_field_name() -> str:
            return "name"

    Group.objects.create(name="ops@example.org")
    monkeypatch.setattr(recipients, "get_user_model", lambda: NoActive)
    assert address("ops@example.org") == ("ops@example.org", "")

"""notify.recipients: a holder's address in its order (Django user, NOTIFY_ADDRESSES, the
domain, nobody), the users never told, and the digest's admins."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

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

"""The NOTIFY_* keys of GPU_MONITOR: each wrong value is a system check error (E002) whose
hint names the fix; a message never shows an address or the webhook URL (the API's 503
shows messages; a Slack webhook URL's path is its secret)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

from gpu_monitor.conf import Problem, conf


def problems(setting: dict[str, Any]) -> list[Problem]:
    with override_settings(GPU_MONITOR=setting):
        return conf.problems()


@pytest.mark.parametrize(
    "setting",
    [
        {"NOTIFY_IDLE_MINUTES": None},
        {"NOTIFY_IDLE_MINUTES": 1},
        {"NOTIFY_IDLE_MINUTES": 10080},
        {"NOTIFY_REPEAT": 60},
        {"NOTIFY_MAX_REMINDERS": 0},
        {"NOTIFY_MAX_REMINDERS": 100},
        {"NOTIFY_WEBHOOK_TIMEOUT": 0.5},
        {"NOTIFY_WEBHOOK_TIMEOUT": 60},
        {"NOTIFY_ADDRESSES": {"alice": "alice@example.org"}},
        {"NOTIFY_EMAIL_DOMAIN": "lab.example.org"},
        {"NOTIFY_EXCLUDE": ("root",)},
        {"NOTIFY_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x"},
        {"NOTIFY_WEBHOOK_URL": "http://127.0.0.1:8080/hook"},
        {"NOTIFY_ADMINS": ["gpu-admins@example.org"]},
        {"NOTIFY_ADMINS": []},
    ],
)
def test_good_values_are_accepted(setting: dict[str, Any]) -> None:
    assert problems(setting) == []


@pytest.mark.parametrize(
    ("key", "value", "must"),
    [
        ("NOTIFY_IDLE_MINUTES", 0, "a whole number from 1 to 10080, not 0"),
        ("NOTIFY_IDLE_MINUTES", "60", "a whole number from 1 to 10080, not a str"),
        ("NOTIFY_REPEAT", 59, "a whole number of at least 60, not 59"),
        ("NOTIFY_REPEAT", None, "a whole number of at least 60, not a NoneType"),
        ("NOTIFY_MAX_REMINDERS", -1, "a whole number from 0 to 100, not -1"),
        ("NOTIFY_MAX_REMINDERS", 101, "a whole number from 0 to 100, not 101"),
    ],
)
def test_whole_numbers_outside_their_bounds(key: str, value: Any, must: str) -> None:
    example = {"NOTIFY_IDLE_MINUTES": 60, "NOTIFY_REPEAT": 14400, "NOTIFY_MAX_REMINDERS": 2}
    assert problems({key: value}) == [
        Problem(
            "gpu_monitor.E002",
            f"GPU_MONITOR[{key!r}] must be {must}",
            f"For example: {key!r}: {example[key]}.",
        )
    ]


@pytest.mark.parametrize(
    ("value", "shown"), [(0, "0"), (61, "61"), (True, "a bool"), ("5", "a str")]
)
def test_webhook_timeout(value: Any, shown: str) -> None:
    assert problems({"NOTIFY_WEBHOOK_TIMEOUT": value}) == [
        Problem(
            "gpu_monitor.E002",
            "GPU_MONITOR['NOTIFY_WEBHOOK_TIMEOUT'] must be a number of seconds above 0 and at "
            f"most 60, not {shown}",
            "For example: 'NOTIFY_WEBHOOK_TIMEOUT': 5 (seconds per attempt; one retry).",
        )
    ]


def test_addresses_name_the_users_to_fix_in_the_hint_only() -> None:
    (problem,) = problems(
        {"NOTIFY_ADDRESSES": {"bob": "bob-at-example.org", "alice": "a@x.org", "carol": 3}}
    )

    assert problem == Problem(
        "gpu_monitor.E002",
        "GPU_MONITOR['NOTIFY_ADDRESSES'] must be a dict of user name to e-mail address: "
        "2 value(s) are not an e-mail address",
        "Fix the address of 'bob', 'carol'. "
        "For example: 'NOTIFY_ADDRESSES': {'alice': 'alice@example.org'}.",
    )


@pytest.mark.parametrize(
    ("value", "described"), [(["a@x.org"], "a list of str"), ({1: "a@x.org"}, "a dict")]
)
def test_addresses_must_be_a_dict_by_user_name(value: Any, described: str) -> None:
    (problem,) = problems({"NOTIFY_ADDRESSES": value})

    assert problem.message == (
        "GPU_MONITOR['NOTIFY_ADDRESSES'] must be a dict of user name to e-mail address, "
        f"not {described}"
    )


@pytest.mark.parametrize(
    ("value", "described"),
    [("@example.org", "a str that does not"), ("", "a str that does not"), (3, "a int")],
)
def test_email_domain(value: Any, described: str) -> None:
    assert problems({"NOTIFY_EMAIL_DOMAIN": value}) == [
        Problem(
            "gpu_monitor.E002",
            "GPU_MONITOR['NOTIFY_EMAIL_DOMAIN'] must be None or a domain name that makes "
            f"user@domain an e-mail address, not {described}",
            "For example: 'NOTIFY_EMAIL_DOMAIN': 'example.org' (no @).",
        )
    ]


@pytest.mark.parametrize(
    ("value", "described"), [("root", "a str"), (["root", 0], "a list of int, str")]
)
def test_exclude(value: Any, described: str) -> None:
    (problem,) = problems({"NOTIFY_EXCLUDE": value})

    assert problem.message == (
        f"GPU_MONITOR['NOTIFY_EXCLUDE'] must be a list of user names, not {described}"
    )


@pytest.mark.parametrize(
    ("value", "described"),
    [
        ("ftp://hooks.example.org/T0/secret", "a str that is not one"),
        ("hooks.example.org/T0/secret", "a str that is not one"),
        (["https://hooks.example.org/"], "a list of str"),
    ],
)
def test_webhook_url_never_shown(value: Any, described: str) -> None:
    (problem,) = problems({"NOTIFY_WEBHOOK_URL": value})

    assert problem.message == (
        "GPU_MONITOR['NOTIFY_WEBHOOK_URL'] must be None or an http:// or https:// URL, "
        f"not {described}"
    )
    assert "secret" not in problem.message + problem.hint


def test_admins() -> None:
    example = "For example: 'NOTIFY_ADMINS': ['gpu-admins@example.org'] (None: ADMINS)."
    assert problems({"NOTIFY_ADMINS": ["a@x.org", "nobody", "b@x.org", "x@"]}) == [
        Problem(
            "gpu_monitor.E002",
            "GPU_MONITOR['NOTIFY_ADMINS'] must be None or a list of e-mail addresses: "
            "2 item(s) are not one",
            f"Fix the item(s) at position 1, 3. {example}",
        )
    ]
    assert problems({"NOTIFY_ADMINS": "a@x.org"}) == [
        Problem(
            "gpu_monitor.E002",
            "GPU_MONITOR['NOTIFY_ADMINS'] must be None or a list of e-mail addresses, not a str",
            example,
        )
    ]


def test_a_bad_notify_setting_is_a_system_check_error() -> None:
    with override_settings(GPU_MONITOR={"NOTIFY_ADMINS": "a@x.org"}):
        found = [c for c in checks.run_checks() if c.id == "gpu_monitor.E002"]

    assert [c.level for c in found] == [checks.ERROR]
    assert "NOTIFY_ADMINS" in found[0].msg and found[0].hint.startswith("For example: ")

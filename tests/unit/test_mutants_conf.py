"""Tests written against the mutants of ``gpu_monitor/conf.py`` that survived its tests.

Each compares the whole ``Problem`` (id, message, hint) that ``conf.problems()`` gives
for one wrong setting; the mutation run (docs/benchmarks.md, "Mutation testing") showed
that the checks' tests, which look at ids and parts of messages, let these change.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from gpu_monitor.conf import DEFAULTS, Problem, conf

KNOWN = ", ".join(DEFAULTS)


def problems(setting: Any) -> list[Problem]:
    with override_settings(GPU_MONITOR=setting):
        return conf.problems()


def test_not_a_dict() -> None:
    assert problems(["PERMISSION_CLASSES"]) == [
        Problem(
            "gpu_monitor.E002",
            "GPU_MONITOR must be a dict, not list",
            "For example: GPU_MONITOR = {'PERMISSION_CLASSES': [...]}.",
        )
    ]


def test_unknown_key_close_to_a_known_one() -> None:
    assert problems({"PERMISION_CLASSES": None}) == [
        Problem(
            "gpu_monitor.E001",
            "GPU_MONITOR has an unknown key 'PERMISION_CLASSES'",
            f"Did you mean 'PERMISSION_CLASSES'? Known keys: {KNOWN}.",
        )
    ]


def test_unknown_key_close_to_none() -> None:
    assert KNOWN.startswith("PERMISSION_CLASSES, AUTHENTICATION_CLASSES, ")
    assert problems({"ZZZ": 1}) == [
        Problem("gpu_monitor.E001", "GPU_MONITOR has an unknown key 'ZZZ'", f"Known keys: {KNOWN}.")
    ]


@pytest.mark.parametrize("key", ["PROCESS_COMMAND_LINE", "METRICS_USER_MEMORY"])
def test_boolean_keys_take_true_or_false_only(key: str) -> None:
    assert problems({key: True}) == []
    assert problems({key: False}) == []
    assert problems({key: "yes"}) == [
        Problem(
            "gpu_monitor.E002",
            f"GPU_MONITOR[{key!r}] must be True or False, not str",
            f"For example: {key!r}: False.",
        )
    ]


def test_none_means_rest_framework_s_default_only_where_that_is_the_default() -> None:
    assert problems({"PERMISSION_CLASSES": None}) == []
    # The process list is admins-only by default: None must not open it (fail closed).
    assert problems({"PROCESS_PERMISSION_CLASSES": None}) == [
        Problem(
            "gpu_monitor.E002",
            "GPU_MONITOR['PROCESS_PERMISSION_CLASSES'] must be a list of dotted paths, "
            "not a NoneType",
            "For example: 'PROCESS_PERMISSION_CLASSES': "
            "['rest_framework.permissions.IsAuthenticated'].",
        )
    ]


def test_every_unimportable_path_is_named_with_a_hint() -> None:
    found = problems({"PERMISSION_CLASSES": ["nope_a.Nope", "nope_b.Nope"]})

    assert [p.id for p in found] == ["gpu_monitor.E003", "gpu_monitor.E003"]
    assert ["nope_a" in found[0].message, "nope_b" in found[1].message] == [True, True]
    assert {p.hint for p in found} == {"Check the spelling and that the package is installed."}


def test_class_without_the_method_names_the_method() -> None:
    assert problems({"THROTTLE_CLASSES": ["collections.OrderedDict"]}) == [
        Problem(
            "gpu_monitor.E004",
            "GPU_MONITOR['THROTTLE_CLASSES'] names 'collections.OrderedDict', which is not a "
            "throttle class: it has no allow_request() method",
            "Name a class with a allow_request() method that takes no constructor "
            "arguments, like those of rest_framework.",
        )
    ]


def test_not_callable_and_failing_constructor_say_why() -> None:
    (not_callable,) = problems({"PERMISSION_CLASSES": ["gpu_monitor.conf.DEFAULTS"]})
    (needs_args,) = problems({"PERMISSION_CLASSES": ["datetime.date"]})

    assert not_callable.message.endswith(": a dict cannot be instantiated")
    assert ": instantiating it failed (TypeError: " in needs_args.message


@pytest.mark.parametrize(
    ("value", "described"),
    [
        ([], "a list of nothing"),
        ((1, 2.5, 3), "a tuple of float, int"),
        ({"a": 1}, "a dict"),
    ],
)
def test_a_wrong_value_is_described_by_its_types_never_shown(value: Any, described: str) -> None:
    (problem,) = problems({"HISTORY_BUFFER_TICKS": value})

    assert problem.message == (
        f"GPU_MONITOR['HISTORY_BUFFER_TICKS'] must be a whole number of at least 1, not {described}"
    )
